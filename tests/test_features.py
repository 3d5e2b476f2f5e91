import pytest
import torch
from PIL import Image

from paraclip.features import FeatureCache, encode_images_cached


def test_cache_encodes_each_image_once_and_persists(tiny_encoder, tmp_path, monkeypatch):
    encoded = []
    encode = tiny_encoder.encode_image

    def counting(images, **kw):
        encoded.extend(images)
        return encode(images, **kw)

    monkeypatch.setattr(tiny_encoder, "encode_image", counting)

    def load(image_id):
        return Image.new("RGB", (32, 32), (int(image_id) * 40, 0, 0))

    cache = FeatureCache.for_encoder(tiny_encoder, tmp_path)
    first = encode_images_cached(tiny_encoder, ["1", "2", "3"], load, cache, batch_size=2)
    assert len(encoded) == 3
    again = encode_images_cached(tiny_encoder, ["3", "1", "4"], load, FeatureCache.for_encoder(tiny_encoder, tmp_path))
    assert len(encoded) == 4 and encoded[-1].getpixel((0, 0)) == (160, 0, 0)  # only the new image was encoded
    torch.testing.assert_close(again[0], first[2], atol=2e-3, rtol=0)  # fp16 storage
    direct = encode([load("2")])
    torch.testing.assert_close(first[1], direct[0], atol=2e-3, rtol=0)


def test_fingerprint_changes_when_image_tower_changes(tiny_encoder, tmp_path):
    import copy

    other = copy.deepcopy(tiny_encoder)
    key = FeatureCache.for_encoder(tiny_encoder, tmp_path).dir.name
    with torch.no_grad():
        other.model.visual.proj.add_(0.01)
    assert FeatureCache.for_encoder(other, tmp_path).dir.name != key


def test_concurrent_writers_do_not_collide(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    caches = [FeatureCache(tmp_path, "model") for _ in range(4)]

    def write(k):
        for j in range(10):
            ids = [f"{k}-{j}-{r}" for r in range(3)]
            caches[k].put(ids, torch.full((3, 8), float(k * 100 + j)))
        return k

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    fresh = FeatureCache(tmp_path, "model")
    assert len(fresh) == 4 * 10 * 3
    got = fresh.get(["2-7-1", "0-0-0", "3-9-2"])
    assert got[:, 0].tolist() == [207.0, 0.0, 309.0]
    # a cache object created before another writer added rows still finds them
    early = FeatureCache(tmp_path, "model2")
    assert early.missing(["x"]) == ["x"]
    FeatureCache(tmp_path, "model2").put(["x"], torch.ones(1, 8))
    assert early.missing(["x"]) == [] and early.get(["x"]).sum().item() == 8.0


def test_embed_images_reports_unopenable_ids_and_prefetch_changes_nothing(tiny_encoder, tmp_path):
    from paraclip.data.images import ImageLoadError
    from paraclip.features import embed_images

    def load(image_id):
        if image_id == "bad":
            raise ImageLoadError(f"{image_id}.png", "not an image PIL can read")
        return Image.new("RGB", (32, 32), (int(image_id) * 40, 0, 0))

    ids = ["1", "bad", "2", "3", "4"]
    seen = []
    key_of = "file-{}".format  # stands in for a hash of each file: "bad" has one, but does not decode
    threaded, problems = embed_images(tiny_encoder, ids, load, FeatureCache(tmp_path / "a", "m"), batch_size=2,
                                      progress=lambda done, total: seen.append((done, total)), workers=2,
                                      key_of=key_of)
    inline, same = embed_images(tiny_encoder, ids, load, FeatureCache(tmp_path / "b", "m"), batch_size=2, workers=0,
                                key_of=key_of)
    assert problems == same == {"bad": "not an image PIL can read"}
    assert threaded.shape == (4, 32) and torch.equal(threaded, inline)
    assert seen == [(2, 5), (4, 5), (5, 5)]
    torch.testing.assert_close(threaded[1], tiny_encoder.encode_image([load("2")])[0], atol=2e-3, rtol=0)


def _folder_of(root, colours):
    root.mkdir(parents=True)
    for n, colour in enumerate(colours):
        Image.new("RGB", (32, 32), colour).save(root / f"{n:04d}.png")
    return root


def test_same_ids_with_other_images_get_their_own_features(tiny_encoder, tmp_path):
    from paraclip.features import embed_images, image_file_key

    cache = FeatureCache.for_encoder(tiny_encoder, tmp_path / "cache")
    ids = ["0000", "0001"]
    got = {}
    for name, colours in {"a": ["red", "green"], "b": ["blue", "yellow"]}.items():
        folder = _folder_of(tmp_path / name, colours)
        load = lambda i, folder=folder: Image.open(folder / f"{i}.png").convert("RGB")  # noqa: E731
        got[name], problems = embed_images(tiny_encoder, ids, load, cache, key_of=lambda i, f=folder: image_file_key(
            f / f"{i}.png"), workers=0)
        assert problems == {}
        torch.testing.assert_close(got[name], tiny_encoder.encode_image([load(i) for i in ids]), atol=2e-3, rtol=0)
    assert not torch.allclose(got["a"], got["b"], atol=1e-2)
    # images given in memory are keyed by their pixels: same ids, other pixels -> other rows
    in_memory = {"0000": Image.new("RGB", (32, 32), "white"), "0001": Image.new("RGB", (32, 32), "black")}
    from_pixels = encode_images_cached(tiny_encoder, ids, in_memory.__getitem__, cache)
    torch.testing.assert_close(from_pixels, tiny_encoder.encode_image(list(in_memory.values())), atol=2e-3, rtol=0)
    assert len(cache) == 6


def test_content_key_follows_the_bytes_not_the_path(tmp_path):
    import os

    from paraclip.features import file_digest, image_file_key

    folder = _folder_of(tmp_path / "f", ["red", "red", "blue"])
    keys = [image_file_key(p) for p in sorted(folder.glob("*.png"))]
    assert keys[0] == keys[1] != keys[2]  # same content at two paths: one key
    Image.new("RGB", (32, 32), "green").save(folder / "0000.png")  # replaced in place, mtime forced back
    stat = (folder / "0001.png").stat()
    os.utime(folder / "0000.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert image_file_key(folder / "0000.png") != keys[0]
    assert file_digest(folder / "0002.png") == file_digest(folder / "0002.png")


def _damage_truncated_rows(shard_dir):
    npy = sorted(shard_dir.glob("*.npy"))[0]
    npy.write_bytes(npy.read_bytes()[:-40])


def _damage_garbage_ids(shard_dir):
    sorted(shard_dir.glob("*.ids.json"))[0].write_text("{not json")


def _damage_deep_ids(shard_dir):  # json.loads raised RecursionError, which no cache reader caught
    sorted(shard_dir.glob("*.ids.json"))[0].write_text("[" * 100_000)


def _damage_wrong_row_count(shard_dir):
    ids_file = sorted(shard_dir.glob("*.ids.json"))[0]
    ids_file.write_text('["only-one-key"]')


@pytest.mark.parametrize("damage", [_damage_truncated_rows, _damage_garbage_ids, _damage_deep_ids,
                                    _damage_wrong_row_count])
def test_a_damaged_shard_is_noted_and_rebuilt(tiny_encoder, tmp_path, damage):
    from paraclip.files import DamagedCacheWarning

    images = {str(n): Image.new("RGB", (32, 32), (n * 60, 255 - n * 60, 0)) for n in range(4)}
    ids = list(images)
    fresh = encode_images_cached(tiny_encoder, ids, images.__getitem__, FeatureCache(tmp_path / "fresh", "m"))
    encode_images_cached(tiny_encoder, ids, images.__getitem__, FeatureCache(tmp_path / "c", "m"))
    damage(tmp_path / "c" / "m")
    with pytest.warns(DamagedCacheWarning, match=r"\.npy: damaged cache .*rebuilding"):
        rebuilt = encode_images_cached(tiny_encoder, ids, images.__getitem__, FeatureCache(tmp_path / "c", "m"))
    torch.testing.assert_close(rebuilt, fresh, atol=0, rtol=0)
    assert len(list((tmp_path / "c" / "m").glob("*.npy"))) == 1  # the damaged shard is gone, a new one written


def test_a_garbage_id_record_is_noted_and_dropped(tmp_path):
    from paraclip.files import DamagedCacheWarning

    cache = FeatureCache(tmp_path, "m")
    cache.remember_ids({"a": "file-1", "b": "file-2"})
    cache.remember_ids({"b": "file-3"})  # the same id with another content: ambiguous
    (cache.dir / "by-id" / "zz-garbage.json").write_text("[1, 2")
    (cache.dir / "by-id" / "zz-nested.json").write_text("[" * 100_000)
    with pytest.warns(DamagedCacheWarning) as caught:
        assert cache.remembered_ids() == {"a": "file-1", "b": None}
    assert sorted(str(w.message).split(": damaged cache")[0].rsplit("/", 1)[-1] for w in caught) == [
        "zz-garbage.json", "zz-nested.json"]
    assert not (cache.dir / "by-id" / "zz-garbage.json").exists()
    assert not (cache.dir / "by-id" / "zz-nested.json").exists()
