"""``RunLock``: one writer per paraphrase output (a run, or a review edit)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from paraclip.errors import DataError


class RunLock:
    """An exclusive lock on ``OUT.lock`` while a run (or a review edit) writes OUT.

    ``flock`` makes taking it atomic (checking for a holder and then writing a pid let two
    processes both take it), and the kernel drops it when its process dies, kill -9 included,
    so a stale file never blocks. The file holds the holder's pid, for messages only. Two
    locks on one output in the same process also exclude each other. POSIX only.
    """

    def __init__(self, out_path: str | os.PathLike):
        self.path = Path(str(out_path) + ".lock")
        self._fd: int | None = None

    def holder(self) -> int | None:
        """The pid written by the process holding the lock; None when the lock is free."""
        if self._fd is not None:
            return os.getpid()
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                who = ("a run in this process" if pid == os.getpid() else
                       f"another paraclip process (pid {pid})" if pid else "another paraclip process")
                raise DataError(f"{self.path}: {who} is writing this output. Wait for it to finish, stop it, or "
                                f"choose another --out.") from None
            try:  # the previous holder may have removed the file between our open and flock
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: a waiter that opened it re-checks the inode
        finally:
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
