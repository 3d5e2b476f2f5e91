"""Opening images: the one decoder that training and evaluation share.

* :data:`IMAGE_SUFFIXES` — the file extensions read as images (SVG included: it is rasterised).
* :func:`open_image` — a file (or bytes read from a tar shard) as an RGB PIL image, or an
  :class:`ImageLoadError` saying why not (missing, empty, truncated, not an image, a decompression
  bomb — a small file declaring more pixels than PIL will decode —, SVG without a rasteriser). Callers
  skip and count such images, so one bad file never stops a run.
* :func:`to_rgb` — the normalisation every decoded image goes through: transparent cut-outs (RGBA,
  LA, palette with transparency) are composited on white, grayscale / 16-bit / CMYK become RGB.
  White, not black, because cut-outs (clip art, stamps, product shots) are drawn to sit on a light
  page; a plain ``convert("RGB")`` would show whatever the transparent pixels happen to hold.
* :func:`svg_rasteriser` — ``cairosvg`` if importable, else ``rsvg-convert`` if on the PATH, else None.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import numpy as np

from paraclip.errors import DataError
from paraclip.files import atomic_write, cache_root, note_damaged_cache

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".svg")
SVG_RASTER_SIZE = 320  # px, longest side; CLIP preprocessing resizes to 224 anyway
NO_RASTERISER = ("SVG skipped: no SVG rasteriser (install `librsvg2-bin` with apt, "
                 "or `pip install cairosvg`)")

Rasteriser = Callable[[bytes, int], bytes]  # (SVG document, longest side in px) -> PNG bytes


class ImageLoadError(DataError, ValueError):
    """One image could not be opened; ``path`` and a short ``reason`` (first words = the kind).

    Also a :class:`ValueError`, like the decoder errors it replaces, so that code guarding a
    decode with ``except (OSError, ValueError)`` still catches it.
    """

    def __init__(self, path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}.")


def reason_kind(reason: str) -> str:
    """The kind of a skip/problem reason, for counting ("empty file (0 bytes)" -> "empty file")."""
    return reason.split(" (")[0].rstrip(".")


def is_image_name(name: str | os.PathLike) -> bool:
    """Whether a file name has one of :data:`IMAGE_SUFFIXES` (case-insensitive)."""
    return os.path.splitext(str(name))[1].lower() in IMAGE_SUFFIXES


# -- SVG -----------------------------------------------------------------------------------------

def _rsvg_rasterise(svg: bytes, size: int) -> bytes:
    return subprocess.run(["rsvg-convert", "-w", str(size), "-h", str(size), "--keep-aspect-ratio"],
                          input=svg, check=True, capture_output=True, timeout=60).stdout


def _cairosvg_rasterise(svg: bytes, size: int) -> bytes:
    import cairosvg

    return cairosvg.svg2png(bytestring=svg, output_width=size)


def svg_rasteriser() -> Rasteriser | None:
    """A function ``(SVG bytes, size) -> PNG bytes`` if cairosvg or rsvg-convert is available."""
    try:
        import cairosvg  # noqa: F401

        return _cairosvg_rasterise
    except Exception:  # noqa: BLE001 - ImportError, or OSError when libcairo is missing
        pass
    if shutil.which("rsvg-convert"):
        return _rsvg_rasterise
    return None


def default_raster_cache() -> Path:
    return cache_root() / "svg-raster"


PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


def _rasterised_png(svg: bytes, rasterise: Rasteriser, cache: Path | None) -> bytes:
    """Rasterise once; keep the PNG under the cache so each model does not pay again.

    Keyed by the document's bytes, the raster size and the rasteriser (cairosvg and rsvg-convert
    draw differently). A cached PNG that is not whole (truncated, garbage) is noted and redrawn."""
    if cache is None:
        return rasterise(svg, SVG_RASTER_SIZE)
    tag = f"|{SVG_RASTER_SIZE}|{getattr(rasterise, '__name__', rasterise)}".encode()
    target = cache / f"{hashlib.sha256(svg + tag).hexdigest()}.png"
    try:
        png = target.read_bytes()
    except FileNotFoundError:
        png = None
    if png is not None:
        if png.startswith(PNG_START) and png.endswith(PNG_END):
            return png
        note_damaged_cache(target, "cached SVG raster is not a whole PNG")
    png = rasterise(svg, SVG_RASTER_SIZE)
    atomic_write(target, lambda f: f.write(png), binary=True)
    return png


# -- decoding ------------------------------------------------------------------------------------

def to_rgb(image):
    """RGB copy of a PIL image: transparency composited on white, gray / 16-bit / CMYK converted."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            scale = 255.0 / 65535.0  # the full 16-bit range
        else:  # 32-bit int / float: stretch only when values exceed 8 bits
            scale = 255.0 / arr.max() if arr.size and arr.max() > 255 else 1.0
        image = Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def open_image(path: str | os.PathLike, rasterise: Rasteriser | None = None, raster_cache: Path | None = None,
               data: bytes | None = None):
    """Open ``path`` as an RGB PIL image; raise :class:`ImageLoadError` saying why it cannot be.

    ``data``: the file's bytes when they do not come from ``path`` itself (a member of a tar
    shard); ``path`` then only names the image in messages and gives its type by extension.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    bombs = (Image.DecompressionBombError, Image.DecompressionBombWarning)  # the warning when promoted to an error
    try:
        if (len(data) if data is not None else path.stat().st_size) == 0:
            raise ImageLoadError(path, "empty file (0 bytes)")
        if path.suffix.lower() == ".svg":
            if rasterise is None:
                raise ImageLoadError(path, NO_RASTERISER)
            svg = data if data is not None else path.read_bytes()
            image = Image.open(io.BytesIO(_rasterised_png(svg, rasterise, raster_cache)))
        else:
            image = Image.open(io.BytesIO(data) if data is not None else path)
        image.load()  # decode now, so that truncated files fail here and not inside the encoder
        return to_rgb(image)
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not an image PIL can read") from None
    except bombs as exc:
        raise ImageLoadError(path, f"decompression bomb ({exc} If the image is genuine, shrink it, or raise "
                                   f"PIL.Image.MAX_IMAGE_PIXELS before running)") from None
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip()[:200]
        raise ImageLoadError(path, f"SVG rasteriser failed ({detail})") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated data, bad headers, decoder errors
        raise ImageLoadError(path, f"unreadable image ({type(exc).__name__}: {exc})") from None


__all__ = [
    "IMAGE_SUFFIXES", "ImageLoadError", "NO_RASTERISER", "SVG_RASTER_SIZE", "default_raster_cache", "is_image_name",
    "open_image", "reason_kind", "svg_rasteriser", "to_rgb",
]
