"""Gallery loaders: image normalisation, bad files reported (never fatal), Tux Paint, webdataset."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from paraclip.data import galleries
from paraclip.data.galleries import folder_gallery, load_gallery, tuxpaint_gallery, wds_gallery
from paraclip.data.images import svg_rasteriser
from paraclip.data.tables import iter_table
from paraclip.errors import DataError, UnknownNameError
from paraclip.features import FeatureCache


def _encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_folder_gallery_reports_and_embeds_what_it_can(image_folder, tiny_encoder, tmp_path):
    gallery = folder_gallery(image_folder)
    # listed but unusable before decoding: the empty and the missing file (and an SVG with no rasteriser here)
    no_svg = [] if svg_rasteriser() else ["drawing.svg"]
    assert sorted(Path(p).name for p in gallery.skipped) == sorted(["empty.png", "missing.png", *no_svg])
    assert gallery.captions[gallery.ids.index("img-cutout")] == ["a blue square cut out", "a second caption of the square"]
    assert "gray.png" in gallery.ids  # no image_id -> the relative path is the id
    cache = FeatureCache(tmp_path / "cache", "tiny")
    feats = gallery.embed(tiny_encoder, cache=cache)
    # truncated and non-image files fail while loading: reported, left out, never fatal
    assert set(gallery.problems) == {"truncated.png", "notimage.png"}
    assert feats.ids == [i for i in gallery.ids if i not in gallery.problems]
    assert feats.features.shape == (len(feats.ids), 32)
    assert torch.allclose(feats.features.norm(dim=-1), torch.ones(len(feats.ids)), atol=1e-2)
    summary = gallery.summary()
    assert "empty file" in summary and "file not found" in summary and "unreadable image" in summary
    # the embeddings are in the shared feature cache: a second pass opens no image at all
    gallery.load_image = lambda image_id: (_ for _ in ()).throw(AssertionError("image opened again"))
    again = gallery.embed(tiny_encoder, cache=cache)
    assert torch.equal(again.features, feats.features)


def test_embeddings_land_in_the_default_cache_keyed_by_file(image_folder, tiny_encoder):
    gallery = folder_gallery(image_folder)
    feats = gallery.embed(tiny_encoder)
    shared = FeatureCache.for_encoder(tiny_encoder)
    keys = [gallery.cache_key(i) for i in feats.ids]
    assert shared.missing(keys) == []
    assert torch.allclose(shared.get(keys), feats.features)


def test_galleries_that_reuse_ids_never_share_cached_rows(tmp_path, tiny_encoder):
    from PIL import Image

    folders = {}
    for colour in ["red", "blue"]:
        folder = tmp_path / colour
        folder.mkdir()
        Image.new("RGB", (32, 32), colour).save(folder / "0001.png")
        (folder / "captions.csv").write_text(f"file,caption\n0001.png,a {colour} square\n")
        folders[colour] = folder_gallery(folder)
    assert folders["red"].ids == folders["blue"].ids == ["0001.png"]
    cache = FeatureCache(tmp_path / "cache", "tiny")
    red = folders["red"].embed(tiny_encoder, cache=cache).features
    blue = folders["blue"].embed(tiny_encoder, cache=cache).features
    assert not torch.allclose(red, blue)
    torch.testing.assert_close(blue, tiny_encoder.encode_image([Image.new("RGB", (32, 32), "blue")]),
                               atol=2e-3, rtol=0)  # fp16 cache rows
    # an image replaced on disk is encoded again, not served from the cache
    Image.new("RGB", (32, 32), "blue").save(tmp_path / "red" / "0001.png")
    os.utime(tmp_path / "red" / "0001.png", ns=(1, 1))
    torch.testing.assert_close(folder_gallery(tmp_path / "red").embed(tiny_encoder, cache=cache).features, blue,
                               atol=2e-3, rtol=0)


def test_svg_rasterised_when_possible(image_folder):
    if svg_rasteriser() is None:
        pytest.skip("no SVG rasteriser here (apt-get install librsvg2-bin, or pip install cairosvg)")
    gallery = folder_gallery(image_folder)
    image = gallery.load_image("drawing.svg")
    assert image.mode == "RGB" and image.width == 2 * image.height  # aspect kept
    left, right = image.getpixel((image.width // 4, image.height // 2)), image.getpixel((3 * image.width // 4, 5))
    assert left[0] > 200 and left[1] < 60 and right == (255, 255, 255)  # transparent half composited on white


def test_svg_skipped_and_counted_without_rasteriser(image_folder, monkeypatch):
    monkeypatch.setattr(galleries, "svg_rasteriser", lambda: None)
    gallery = folder_gallery(image_folder)
    assert "drawing.svg" not in gallery.ids
    assert any("SVG skipped" in reason for reason in gallery.skipped.values())
    assert "SVG skipped: no SVG rasteriser" in gallery.skipped_counts()


def test_captions_file_errors_name_file_line_and_field(tmp_path):
    (tmp_path / "a.png").write_bytes(_encoded(Image.new("RGB", (4, 4))))
    bad = tmp_path / "caps.csv"
    bad.write_text("file,text\na.png,a black square\na.png,\n")
    with pytest.raises(DataError, match=r"caps.csv:3: field 'text' is empty"):
        folder_gallery(tmp_path, bad)
    bad.write_text("name,caption\na.png,hello\n")
    with pytest.raises(DataError, match=r"caps.csv:2: no 'file' field"):
        folder_gallery(tmp_path, bad)
    jl = tmp_path / "caps.jsonl"
    jl.write_text('{"file": "a.png", "caption": "ok"}\n{"file": "a.png", caption}\n')
    with pytest.raises(DataError, match=r"caps.jsonl:2: malformed JSON"):
        list(iter_table(jl))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("file,caption\na.png,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.csv:2: not valid UTF-8"):
        list(iter_table(latin))
    with pytest.raises(DataError, match="no captions file"):
        folder_gallery(tmp_path)


def test_jsonl_captions_and_export(tmp_path):
    Image.new("RGB", (8, 8), (10, 200, 10)).save(tmp_path / "g.png")
    (tmp_path / "captions.jsonl").write_text(json.dumps({"image": "g.png", "caption": "green", "image_id": 7}) + "\n")
    gallery = load_gallery(tmp_path)
    assert gallery.ids == ["7"] and gallery.captions == [["green"]]
    out = tmp_path / "export.csv"
    assert gallery.write_captions(out) == 1
    assert out.read_text().splitlines() == ["image_id,caption", "7,green"]


def test_a_folders_captions_file_and_its_rows_as_csv(tmp_path):
    assert galleries.find_captions_file(tmp_path) is None
    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    (tmp_path / "captions.tsv").write_text("file\tcaption\na.png\ta cat, asleep\na.png\tone cat\nb.png\ta dog\n")
    assert galleries.find_captions_file(tmp_path) == tmp_path / "captions.tsv"
    (tmp_path / "captions.csv").write_text("file,caption\nb.png,a dog\n")
    assert galleries.find_captions_file(tmp_path) == tmp_path / "captions.csv"  # the first of CAPTION_FILE_NAMES
    gallery = folder_gallery(tmp_path, tmp_path / "captions.tsv")
    assert gallery.caption_rows() == [("a.png", "a cat, asleep"), ("a.png", "one cat"), ("b.png", "a dog")]
    assert gallery.caption_rows(first_only=True) == [("a.png", "a cat, asleep"), ("b.png", "a dog")]
    assert gallery.captions_csv(first_only=True) == 'image_id,caption\na.png,"a cat, asleep"\nb.png,a dog\n'


def test_registry_suggests_close_names():
    with pytest.raises(UnknownNameError, match="tuxpaint"):
        load_gallery("tuxpant")


def test_hub_gallery_offline_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="tuxpaint"):
        load_gallery("coco-karpathy-5k")


def test_webdataset_gallery(tmp_path):
    root = tmp_path / "wds_demo"
    (root / "test").mkdir(parents=True)
    with tarfile.open(root / "test" / "0.tar", "w") as tar:
        for n, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
            for name, data in [(f"{n:04d}.jpg", _encoded(Image.new("RGB", (8, 8), colour), "JPEG")),
                               (f"{n:04d}.txt", f"caption {n} one\ncaption {n} two\n".encode())]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    gallery = load_gallery(root)
    assert gallery.ids == ["wds_demo/0000", "wds_demo/0001", "wds_demo/0002"]
    assert gallery.captions[1] == ["caption 1 one", "caption 1 two"]
    assert gallery.load_image("wds_demo/0002").getpixel((4, 4))[2] > 200
    again = wds_gallery(root)  # extraction reused
    assert again.paths == gallery.paths


@pytest.fixture(scope="module")
def tux():
    if not galleries.TUXPAINT_STAMPS_DIR.is_dir():
        pytest.skip("tuxpaint-stamps-default is not installed (apt-get install -y tuxpaint-stamps-default)")
    return tuxpaint_gallery()


def test_tuxpaint_gallery(tux, tiny_encoder, tmp_path):
    assert len(tux) > 500  # about 950 captioned stamps in Debian 12's package
    assert all(caps and caps[0].strip() for caps in tux.captions)
    assert not any(p.stem.endswith(("_mirror", "_flip")) for p in tux.paths)
    assert all(i.startswith("tuxpaint/") for i in tux.ids)
    frog = next(i for i in tux.ids if i.endswith("/frog.png"))
    txt = tux.path_of(frog).with_suffix(".txt").read_text(encoding="utf-8").splitlines()[0].strip()
    assert tux.caption_of(frog) == txt
    # Tux Paint stamps are RGBA cut-outs: the corners come out white
    assert tux.load_image(frog).getpixel((0, 0)) == (255, 255, 255)
    sample = tux.subset(24)
    feats = sample.embed(tiny_encoder, cache=FeatureCache(tmp_path, "tiny"))
    assert feats.features.shape == (24, 32) and not sample.problems
    svgs = [i for i, p in zip(tux.ids, tux.paths) if p.suffix == ".svg"]
    if svg_rasteriser() is not None:
        assert svgs and tux.load_image(svgs[0]).mode == "RGB"
    else:
        assert not svgs and tux.skipped_counts()


def _write_wds(root: Path, captions: list[str], colours: list[tuple[int, int, int]]) -> Path:
    (root / "test").mkdir(parents=True)
    with tarfile.open(root / "test" / "0.tar", "w") as tar:
        for n, (caption, colour) in enumerate(zip(captions, colours)):
            for name, data in [(f"{n:04d}.png", _encoded(Image.new("RGB", (8, 8), colour))),
                               (f"{n:04d}.txt", caption.encode())]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return root


def test_two_webdatasets_in_folders_of_the_same_name_keep_their_own_images_and_captions(tmp_path):
    first = _write_wds(tmp_path / "one" / "wds", ["a red dot", "a green dot"], [(255, 0, 0), (0, 255, 0)])
    second = _write_wds(tmp_path / "two" / "wds", ["a blue dot", "a black dot"], [(0, 0, 255), (0, 0, 0)])
    a, b = load_gallery(first), load_gallery(second)  # both extracted under the default cache
    assert a.ids == b.ids == ["wds/0000", "wds/0001"]
    assert a.captions == [["a red dot"], ["a green dot"]] and b.captions == [["a blue dot"], ["a black dot"]]
    assert b.load_image("wds/0000").getpixel((4, 4)) == (0, 0, 255)
    assert a.load_image("wds/0000").getpixel((4, 4)) == (255, 0, 0)
    # a shard rewritten in place is extracted again, not served from the old extraction
    shutil.rmtree(first)
    _write_wds(first, ["a white dot", "a gray dot"], [(255, 255, 255), (128, 128, 128)])
    assert load_gallery(first).captions == [["a white dot"], ["a gray dot"]]


def _garbage_index(out: Path):
    (out / "index.json").write_text("[{\"key\": ")


def _missing_image(out: Path):
    next(out.glob("*.png")).unlink()


def _truncated_image(out: Path):
    png = next(out.glob("*.png"))
    png.write_bytes(png.read_bytes()[:10])


@pytest.mark.parametrize("damage", [_garbage_index, _missing_image, _truncated_image])
def test_a_damaged_webdataset_extraction_is_noted_and_extracted_again(tmp_path, damage):
    from paraclip.files import DamagedCacheWarning

    root = _write_wds(tmp_path / "wds", ["a cyan dot", "a pink dot"], [(0, 255, 255), (255, 128, 128)])
    fresh = wds_gallery(root, extract_to=tmp_path / "fresh")
    wds_gallery(root, extract_to=tmp_path / "out")
    damage(tmp_path / "out")
    with pytest.warns(DamagedCacheWarning, match=r"index\.json: damaged cache .*rebuilding"):
        rebuilt = wds_gallery(root, extract_to=tmp_path / "out")
    assert rebuilt.ids == fresh.ids and rebuilt.captions == fresh.captions
    for image_id in fresh.ids:
        assert rebuilt.path_of(image_id).read_bytes() == fresh.path_of(image_id).read_bytes()
    assert wds_gallery(root, extract_to=tmp_path / "out").captions == fresh.captions  # and now reused quietly


def test_a_gallerys_cache_key_is_its_files_content(image_folder, tmp_path):
    gallery = folder_gallery(image_folder)
    copy = tmp_path / "copy"
    shutil.copytree(image_folder, copy)
    moved = folder_gallery(copy)
    assert gallery.cache_key("gray.png") == moved.cache_key("gray.png")  # same bytes elsewhere: same rows
    assert gallery.cache_key("gray.png") != gallery.cache_key("gray16.png")
