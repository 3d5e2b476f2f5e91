"""Fault injection for tests: a real full disk, and a write that fails without naming its file.

* :func:`tiny_disk` mounts a fresh tmpfs of a few KB on a folder under the test's tmp_path (root
  only: the test is skipped, with the reason, where mounting is not permitted) and unmounts it after.
  :func:`fill_disk` then fills it, leaving a chosen number of pages free, so the next writes hit a
  real ENOSPC from the kernel, raised by ``write()``/``fsync()`` with no file name attached.
* :func:`failing_fsync` makes ``os.fsync`` raise ENOSPC (no file name) for chosen files: the same
  kind of error, at an exact point of a run, without root.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PAGE = 4096  # tmpfs allocates whole pages


@contextmanager
def tiny_disk(tmp_path: Path, size: str = "64k") -> Iterator[Path]:
    """A folder on its own tmpfs of ``size`` (``mount -t tmpfs -o size=…``), unmounted afterwards."""
    folder = tmp_path / "tiny-disk"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs a small tmpfs, and mounting one needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or mounted.returncode})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill_disk(folder: Path, free_pages: int = 0) -> Path:
    """Fill the file system of ``folder`` with one file, then give back ``free_pages`` pages of it."""
    filler = folder / "filler.bin"
    block = b"\0" * PAGE
    with open(filler, "wb", buffering=0) as f:  # unbuffered: nothing left to flush at close
        try:
            while True:
                f.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - size % PAGE - free_pages * PAGE))
    return filler


def failing_fsync(monkeypatch: pytest.MonkeyPatch, fails: Callable[[str], bool] = lambda name: True) -> list[str]:
    """``os.fsync`` raises ENOSPC with no file name, as on a full disk, for every file whose path
    ``fails(path)``; other files are synced. Returns the paths it failed on (to see it was reached)."""
    real_fsync, failed = os.fsync, []

    def fsync(fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}")
        if fails(name):
            failed.append(name)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return failed
