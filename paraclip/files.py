"""Where the project keeps its files, and how it writes them.

* :func:`cache_root` — the one cache folder (``$PARACLIP_CACHE``, else ``~/.cache/paraclip``); every
  cache (image features, galleries, request cache, LLM copies, the mini-world, the app) lives below it.
* :func:`atomic_write` — write to a temporary file beside the target, fsync, then rename over it, so a
  reader (or a crash, or a full disk) never leaves a half-written file. The result gets the normal
  permissions of a new file (``0666 & ~umask``), not ``mkstemp``'s private ``0600``.
* :func:`naming_errors` — an OS error raised while writing an open file (``write()``, ``fsync()``: a
  full disk) carries no file name; inside this block it gets the name of the file being written, so
  the message says which file could not be written.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator


def cache_root() -> Path:
    """``$PARACLIP_CACHE``, else ``~/.cache/paraclip``."""
    return Path(os.environ.get("PARACLIP_CACHE") or Path.home() / ".cache" / "paraclip").expanduser()


class DamagedCacheWarning(UserWarning):
    """A cache file was found damaged (truncated, garbage); it is set aside and rebuilt, never used."""


def note_damaged_cache(path: str | os.PathLike, reason: str) -> None:
    """Say (as a :class:`DamagedCacheWarning`) which cache file is damaged and that it is being rebuilt."""
    warnings.warn(f"{path}: damaged cache ({reason}); rebuilding it.", DamagedCacheWarning, stacklevel=3)


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def naming_errors(path: str | os.PathLike) -> Iterator[None]:
    """Give ``path`` as the file name of any OSError raised inside the block that names no file."""
    try:
        yield
    except OSError as exc:
        if not exc.filename and exc.errno is not None:  # (an OSError made from a bare message has no slot to fill)
            exc.filename = str(path)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], binary: bool = False) -> None:
    """Call ``write(f)`` on a temporary file and move it over ``path`` once it is complete on disk.

    An OS error names ``path`` (not the temporary file, which is removed): that is the file the user asked for.
    """
    path = Path(path)
    with naming_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None and (not exc.filename or exc.filename == tmp):
            exc.filename, exc.filename2 = str(path), None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(text))
