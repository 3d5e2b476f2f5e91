"""Fixtures shared by the data tests: a folder holding one image of each kind a real folder may hold."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20" viewBox="0 0 40 20">
<rect x="0" y="0" width="20" height="20" fill="#ff0000"/></svg>"""


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A real 69-byte PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb):
    a 1x1 PNG with the IHDR size patched and its CRC recomputed."""
    png = bytearray(_png_bytes(Image.new("RGB", (1, 1))))
    png[16:24] = struct.pack(">II", width, height)  # IHDR data starts after signature, length and type
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    return bytes(png)


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """One file of each kind a real folder may hold, and a captions.csv listing them all."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    rgba = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (6, 6, 18, 18))  # an opaque blue square on a transparent ground
    rgba.save(folder / "cutout.png")
    Image.new("L", (20, 20), 128).save(folder / "gray.png")
    Image.fromarray(np.full((16, 16), 40000, dtype=np.uint16)).save(folder / "gray16.png")
    pal = Image.new("P", (16, 16), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.info["transparency"] = 1
    pal.save(folder / "palette.png", transparency=1)
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(folder / "cmyk.jpg")
    (folder / "drawing.svg").write_text(SVG)
    full = _png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    (folder / "truncated.png").write_bytes(full[: len(full) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notimage.png").write_text("this is text, not a PNG")
    rows = [
        ("cutout.png", "a blue square cut out", "img-cutout"),
        ("cutout.png", "a second caption of the square", "img-cutout"),
        ("gray.png", "a gray field", ""),
        ("gray16.png", "a sixteen-bit gray field", ""),
        ("palette.png", "a transparent palette image", ""),
        ("cmyk.jpg", "a red cmyk picture", ""),
        ("drawing.svg", "a red rectangle drawing", ""),
        ("truncated.png", "noise cut short", ""),
        ("empty.png", "nothing at all", ""),
        ("notimage.png", "text pretending to be an image", ""),
        ("missing.png", "a file that is not there", ""),
    ]
    lines = ["file,caption,image_id"] + [f"{f},{c},{i}" for f, c, i in rows]
    (folder / "captions.csv").write_text("\n".join(lines) + "\n")
    return folder
