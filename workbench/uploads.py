"""Checking uploaded files before anything reads them: size, format, text encoding.

Every failure becomes an :class:`UploadError` whose message is shown in the page (never a stack
trace). Accepted files are copied into the caller's session folder under the temp area.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CAPTION_SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl", ".json")


class UploadError(ValueError):
    """An upload that cannot be used; the message says why and what to do."""


def upload_path(file) -> Path | None:
    """The local path of a gr.File value (a str path in Gradio 6, or an object with ``.name``)."""
    if file is None:
        return None
    if isinstance(file, (str, Path)):
        return Path(file)
    if isinstance(file, dict):
        return Path(file.get("path") or file.get("name"))
    return Path(getattr(file, "path", None) or getattr(file, "name"))


def check_text_upload(file, dest_dir: Path, max_mb: float, suffixes=CAPTION_SUFFIXES) -> Path:
    """Validate an uploaded text file and copy it into ``dest_dir``; returns the copy."""
    src = upload_path(file)
    if src is None or not src.is_file():
        raise UploadError("The upload did not arrive; choose the file again.")
    name = src.name
    suffix = src.suffix.lower()
    if suffix not in suffixes:
        raise UploadError(f"{name}: unsupported file type {suffix or '(none)'}; upload one of "
                          f"{', '.join(suffixes)}.")
    size = src.stat().st_size
    if size > max_mb * 1024 * 1024:
        raise UploadError(f"{name}: {size / 1024 / 1024:.1f} MB is over the {max_mb:g} MB upload limit; "
                          f"upload fewer captions, or run `paraclip paraphrase` on the command line.")
    if size == 0:
        raise UploadError(f"{name}: the file is empty.")
    data = src.read_bytes()
    if b"\x00" in data[:4096]:
        raise UploadError(f"{name}: this looks like a binary file, not text; upload {', '.join(suffixes)}.")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UploadError(f"{name}: not UTF-8 text (byte {exc.start}, line {line}); save it as UTF-8 and upload "
                          f"it again.") from None
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"upload-{name}"
    shutil.copyfile(src, dest)
    return dest
