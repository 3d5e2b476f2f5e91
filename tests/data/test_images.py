"""One image decoder for training and evaluation: modes normalised, bad files named, SVG rasterised."""

from __future__ import annotations

import tarfile
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from paraclip.data.galleries import folder_gallery
from paraclip.data.images import (
    IMAGE_SUFFIXES,
    ImageLoadError,
    is_image_name,
    open_image,
    svg_rasteriser,
)
from paraclip.errors import DataError
from paraclip.features import FeatureCache
from paraclip.training.data import ImageIndex, PixelStore

from .conftest import bomb_png


def test_image_modes_become_rgb(image_folder):
    cut = open_image(image_folder / "cutout.png")
    assert cut.mode == "RGB"
    assert cut.getpixel((0, 0)) == (255, 255, 255)  # transparency composited on white
    assert cut.getpixel((12, 12)) == (0, 0, 255)
    assert open_image(image_folder / "gray.png").getpixel((3, 3)) == (128, 128, 128)
    g16 = open_image(image_folder / "gray16.png")
    assert g16.mode == "RGB" and g16.getpixel((0, 0)) == (156, 156, 156)  # 40000/65535 of white, not clipped
    assert open_image(image_folder / "palette.png").getpixel((0, 0)) == (255, 255, 255)
    r, g, b = open_image(image_folder / "cmyk.jpg").getpixel((8, 8))
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize("name,reason", [
    ("truncated.png", "unreadable image"),
    ("empty.png", "empty file"),
    ("notimage.png", "not an image"),
    ("missing.png", "file not found"),
])
def test_bad_files_raise_a_named_reason(image_folder, name, reason):
    with pytest.raises(ImageLoadError) as info:
        open_image(image_folder / name)
    assert reason in str(info.value) and name in str(info.value)




def test_a_decompression_bomb_is_a_bad_image_not_a_crash(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png())  # 69 bytes declaring 10^10 pixels: PIL refuses it (DecompressionBombError)
    assert path.stat().st_size < 100
    with pytest.raises(ImageLoadError, match="bomb.png: decompression bomb .*MAX_IMAGE_PIXELS") as info:
        open_image(path)
    assert isinstance(info.value, ValueError) and info.value.reason.startswith("decompression bomb")
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        open_image("shard.tar/bomb.png", data=bomb_png())
    # over the warning limit only (10^8 pixels): PIL warns; promoted to an error, it is the same bad image
    (tmp_path / "big.png").write_bytes(bomb_png(10_000, 10_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageLoadError, match="big.png: decompression bomb"):
            open_image(tmp_path / "big.png")


def test_a_bomb_in_a_gallery_is_left_out_and_counted(tmp_path, tiny_encoder):
    folder = tmp_path / "g"
    folder.mkdir()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(folder / "red.png")
    (folder / "bomb.png").write_bytes(bomb_png())
    (folder / "captions.csv").write_text("file,caption\nred.png,a red square\nbomb.png,a huge picture\n")
    gallery = folder_gallery(folder)
    feats = gallery.embed(tiny_encoder, cache=FeatureCache(tmp_path / "cache", "tiny"))
    assert feats.ids == ["red.png"] and set(gallery.problems) == {"bomb.png"}
    assert "decompression bomb" in gallery.summary()


def test_bytes_decode_like_the_file_and_errors_are_value_errors(image_folder):
    path = image_folder / "cutout.png"
    from_bytes = open_image("shard.tar/cutout.png", data=path.read_bytes())
    assert np.array_equal(np.asarray(from_bytes), np.asarray(open_image(path)))
    with pytest.raises(ImageLoadError, match="shard.tar/x.png: empty file"):
        open_image("shard.tar/x.png", data=b"")
    with pytest.raises(ValueError, match="not an image PIL can read") as info:  # old `except ValueError` still works
        open_image("shard.tar/x.png", data=b"plain text")
    assert isinstance(info.value, DataError) and info.value.reason == "not an image PIL can read"


def test_one_suffix_list():
    assert ".svg" in IMAGE_SUFFIXES and ".tiff" in IMAGE_SUFFIXES
    assert is_image_name("a/B.JPG") and is_image_name("x.seg.png") and not is_image_name("captions.txt")
    assert not is_image_name("png")


def test_svg_from_bytes_matches_the_file_and_is_rasterised_once(image_folder, tmp_path):
    rasterise = svg_rasteriser()
    if rasterise is None:
        pytest.skip("no SVG rasteriser here (apt-get install librsvg2-bin, or pip install cairosvg)")
    with pytest.raises(ImageLoadError, match="no SVG rasteriser"):
        open_image(image_folder / "drawing.svg")  # no rasteriser given: a named reason, not a decoder error
    calls = []

    def counted(svg: bytes, size: int) -> bytes:
        calls.append(size)
        return rasterise(svg, size)

    cache = tmp_path / "raster"
    first = open_image(image_folder / "drawing.svg", counted, cache)
    again = open_image("elsewhere/drawing.svg", counted, cache, data=(image_folder / "drawing.svg").read_bytes())
    assert calls == [320]  # the second open, same document, came from the raster cache
    assert np.array_equal(np.asarray(first), np.asarray(again)) and first.size == (320, 160)


def _cutout(path):
    """An RGBA cut-out: opaque green square, half-transparent red band, the rest transparent (black underneath)."""
    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[8:24, 8:24] = (0, 200, 0, 255)
    rgba[0:4, :] = (255, 0, 0, 128)
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def test_rgba_decodes_the_same_for_training_and_for_a_gallery(tmp_path):
    folder = tmp_path / "world"
    folder.mkdir()
    _cutout(folder / "scene-1.png")
    (folder / "captions.csv").write_text("file,caption,image_id\nscene-1.png,a green square,scene-1\n")
    with tarfile.open(tmp_path / "shard-0.tar", "w") as tar:
        tar.add(folder / "scene-1.png", arcname="scene-1.png")
    via_gallery = np.asarray(folder_gallery(folder).load_image("scene-1"))
    via_training = np.asarray(ImageIndex.from_spec(folder).load("scene-1"))
    via_shard = np.asarray(ImageIndex.from_spec(tmp_path / "shard-0.tar").load("scene-1"))
    assert np.array_equal(via_training, via_gallery) and np.array_equal(via_shard, via_gallery)
    assert tuple(via_training[31, 31]) == (255, 255, 255)  # transparent: white, not the black stored under it
    assert tuple(via_training[16, 16]) == (0, 200, 0)
    assert tuple(via_training[1, 1]) in {(255, 127, 127), (255, 128, 128)}  # half-transparent red over white


def test_pixel_store_names_images_that_fail_to_decode(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    _cutout(folder / "good.png")
    (folder / "bad.png").write_text("not a png")
    index = ImageIndex.from_spec(folder)
    errors = []
    to_tensor = lambda im: torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)  # noqa: E731
    store, failed = PixelStore.build(["good", "bad"], index.load, to_tensor, threads=1,
                                     on_error=lambda i, e: errors.append((i, str(e))))
    assert failed == ["bad"] and errors[0][0] == "bad" and "not an image PIL can read" in errors[0][1]
    assert tuple(store.pixels[0, :, 31, 31].tolist()) == (255, 255, 255)


def test_index_reads_svg_and_folder_error_lists_the_suffixes(tmp_path, image_folder):
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"holds no images \(.png.*\.svg\)"):
        ImageIndex.from_spec(empty)
    index = ImageIndex.from_spec(image_folder)
    assert "drawing" in index
    if svg_rasteriser() is None:
        with pytest.raises(ImageLoadError, match="no SVG rasteriser"):
            index.load("drawing")
    else:
        assert index.load("drawing").size == (320, 160)


def _flat_rasteriser(colour):
    """A stand-in rasteriser that draws the whole canvas in one colour, and counts its calls."""
    import io

    def draw(svg: bytes, size: int) -> bytes:
        draw.calls += 1
        buf = io.BytesIO()
        Image.new("RGB", (size, size), colour).save(buf, format="PNG")
        return buf.getvalue()

    draw.calls = 0
    return draw


def test_svg_raster_cache_is_keyed_by_rasteriser_and_a_damaged_raster_is_redrawn(image_folder, tmp_path):
    from paraclip.files import DamagedCacheWarning

    cache = tmp_path / "raster"
    red, blue = _flat_rasteriser((255, 0, 0)), _flat_rasteriser((0, 0, 255))
    blue.__name__ = "other_rasteriser"
    assert open_image(image_folder / "drawing.svg", red, cache).getpixel((3, 3)) == (255, 0, 0)
    assert open_image(image_folder / "drawing.svg", red, cache).getpixel((3, 3)) == (255, 0, 0)
    assert red.calls == 1
    # another rasteriser draws the same document differently: its own raster, not the first one's
    assert open_image(image_folder / "drawing.svg", blue, cache).getpixel((3, 3)) == (0, 0, 255)
    for raster in cache.glob("*.png"):
        raster.write_bytes(raster.read_bytes()[:30])  # truncated
    with pytest.warns(DamagedCacheWarning, match=r"\.png: damaged cache .*rebuilding"):
        redrawn = open_image(image_folder / "drawing.svg", red, cache)
    assert redrawn.getpixel((3, 3)) == (255, 0, 0) and red.calls == 2
    assert open_image(image_folder / "drawing.svg", red, cache).getpixel((3, 3)) == (255, 0, 0) and red.calls == 2
