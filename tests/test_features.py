import torch
from PIL import Image

from paraclip.features import FeatureCache, encode_images_cached


def test_cache_encodes_each_image_once_and_persists(tiny_encoder, tmp_path, monkeypatch):
    encoded = []
    encode = tiny_encoder.encode_image
    monkeypatch.setattr(tiny_encoder, "encode_image", lambda images, **kw: (encoded.extend(images), encode(images, **kw))[1])

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
