"""Images uploaded for training: a zip of images (or the image files themselves) named by image_id.

Only image files are taken, each under its own base name (no paths from inside the archive, so
nothing is written outside the target folder), within the upload size limit and a cap on the
unpacked size and count; anything else in the archive is skipped and counted.
"""

from __future__ import annotations

import shutil
import uuid
import zipfile
from pathlib import Path

from workbench.uploads import UploadError, upload_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
MAX_IMAGES = 20_000
UNPACKED_FACTOR = 4  # the unpacked images may be at most this many times the upload limit


def copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: list[int], name: str) -> None:
    """Unpack one member, counting its bytes as read against ``budget[0]`` (a header may understate the size)."""
    with archive.open(info) as src, open(target, "wb") as dst:
        while chunk := src.read(1 << 20):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise UploadError(f"{name}: the images are too large once unpacked; upload fewer or smaller ones.")
            dst.write(chunk)


def save_image_upload(files, dest_root: Path, max_mb: float) -> tuple[Path, int, int]:
    """Unpack/copy the upload into a new folder under ``dest_root``; returns (folder, images, skipped)."""
    paths = [upload_path(f) for f in (files if isinstance(files, (list, tuple)) else [files]) if f is not None]
    paths = [p for p in paths if p is not None and p.is_file()]
    if not paths:
        raise UploadError("The upload did not arrive; choose the zip (or the images) again.")
    total = sum(p.stat().st_size for p in paths)
    if total > max_mb * 1024 * 1024:
        raise UploadError(f"The upload is {total / 1024 / 1024:.1f} MB, over the {max_mb:g} MB limit; upload fewer "
                          f"or smaller images.")
    folder = dest_root / f"images-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True, exist_ok=True)
    budget = [UNPACKED_FACTOR * max_mb * 1024 * 1024]
    count = skipped = 0
    try:
        for path in paths:
            if path.suffix.lower() == ".zip":
                n, s = _unzip(path, folder, budget, MAX_IMAGES - count)
            elif path.suffix.lower() in IMAGE_SUFFIXES:
                if count >= MAX_IMAGES:
                    raise UploadError(f"Too many images (at most {MAX_IMAGES}); upload fewer.")
                shutil.copyfile(path, folder / _safe_name(path.name))
                n, s = 1, 0
            else:
                n, s = 0, 1
            count, skipped = count + n, skipped + s
    except BaseException:  # a refused upload leaves nothing behind
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if count == 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise UploadError(f"No images in the upload ({skipped} other files skipped): upload a .zip of "
                          f"{', '.join(IMAGE_SUFFIXES)} files named by image_id (e.g. 000123.jpg for image_id 000123).")
    return folder, count, skipped


def _safe_name(name: str) -> str:
    base = Path(name.replace("\\", "/")).name
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in base).lstrip(".") or f"image-{uuid.uuid4().hex[:6]}"


def _unzip(path: Path, folder: Path, budget: list[float], room: int) -> tuple[int, int]:
    count = skipped = 0
    try:
        with zipfile.ZipFile(path) as archive:
            entries = [i for i in archive.infolist() if not i.is_dir()]
            images = sum(Path(i.filename).suffix.lower() in IMAGE_SUFFIXES and not i.filename.startswith("__MACOSX")
                         for i in entries)
            if images > room:  # refused before anything is unpacked
                raise UploadError(f"{path.name}: {images} images, over the limit of {MAX_IMAGES}; upload fewer.")
            for info in entries:
                if info.is_dir():
                    continue
                if Path(info.filename).suffix.lower() not in IMAGE_SUFFIXES or info.filename.startswith("__MACOSX"):
                    skipped += 1
                    continue
                if count >= room or info.file_size > budget[0]:
                    raise UploadError(f"{path.name}: too many or too large images once unpacked (at most "
                                      f"{MAX_IMAGES} images); upload fewer.")
                target = folder / _safe_name(info.filename)
                copy_member(archive, info, target, budget, path.name)
                count += 1
    except zipfile.BadZipFile:
        raise UploadError(f"{path.name}: not a readable zip file.") from None
    return count, skipped
