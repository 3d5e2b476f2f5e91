"""Checking uploaded files before anything reads them: whose they are, size, format, text encoding.

Every failure becomes an :class:`UploadError` whose message is shown in the page (never a stack
trace). Accepted files are copied into the caller's session folder under the temp area.

Gradio keeps every visitor's uploads in one shared folder, and a request may name any file in it.
In public mode a handler therefore takes only the uploads its own browser session made: the upload
event of each file box records them in that session's ``gr.State`` (:func:`remember_uploads`), and
:func:`check_text_upload` refuses any other path with the same message as a missing upload.
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


NOT_ARRIVED = "The upload did not arrive; choose the file again."


def remember_uploads(session: dict | None, files) -> dict:
    """The session state with ``files`` (a gr.File value: one or a list) recorded as its own uploads."""
    session = dict(session or {})
    paths = [upload_path(f) for f in (files if isinstance(files, (list, tuple)) else [files])]
    own = list(session.get("uploads", []))
    own += [str(p.resolve()) for p in paths if p is not None and str(p.resolve()) not in own]
    session["uploads"] = own[-200:]
    return session


def is_own_upload(session: dict | None, file) -> bool:
    path = upload_path(file)
    return path is not None and str(path.resolve()) in (session or {}).get("uploads", [])


def check_pasted_text(text: str, max_mb: float, max_lines: int | None) -> None:
    """Pasted captions obey the upload limit, and (public mode) the cap on captions per run."""
    size = len(text.encode("utf-8"))
    if size > max_mb * 1024 * 1024:
        raise UploadError(f"The pasted text is {size / 1024 / 1024:.1f} MB, over the {max_mb:g} MB limit; paste "
                          f"fewer captions.")
    if max_lines is not None:
        check_caption_count(sum(1 for line in text.splitlines() if line.strip()), max_lines)


def check_caption_count(count: int, max_lines: int) -> None:
    if count > max_lines:
        raise UploadError(f"{count} captions is over this app's limit of {max_lines} per run; paraphrase fewer at "
                          f"a time (or run `paraclip paraphrase` on your own machine).")


def check_text_upload(file, dest_dir: Path, max_mb: float, suffixes=CAPTION_SUFFIXES, session: dict | None = None,
                      max_lines: int | None = None) -> Path:
    """Validate an uploaded text file and copy it into ``dest_dir``; returns the copy. With ``session``
    (public mode), only that session's own uploads are taken; with ``max_lines``, at most that many
    non-empty lines."""
    src = upload_path(file)
    if src is None or not src.is_file() or (session is not None and not is_own_upload(session, file)):
        raise UploadError(NOT_ARRIVED)
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
    if max_lines is not None:
        check_caption_count(sum(1 for line in data.splitlines() if line.strip()), max_lines)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"upload-{name}"
    shutil.copyfile(src, dest)
    return dest
