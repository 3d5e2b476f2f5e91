"""``RunLock``: one writer per output — a paraphrase file, a training / evaluation / mini-world run
folder, or an app job's folder.

``flock`` makes taking the lock atomic (checking for a holder and then writing a pid let two
processes both take it), and the kernel drops it when its process dies, kill -9 included, so a
stale lock file never blocks. The lock file holds who took it (pid, host, command, start time,
as JSON) so that the process refused can name the holder. Two locks on one output in the same
process also exclude each other (the app serves several users from one process). POSIX only.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

from paraclip.errors import DataError

#: the lock file inside a locked folder (hidden: folder listings and globs for results skip it)
FOLDER_LOCK_NAME = ".paraclip.lock"


class OutputLockedError(DataError):
    """Another process (or another run in this one) is writing the same output; ``holder`` says who."""

    def __init__(self, message: str, holder: dict[str, Any] | None = None):
        self.holder = dict(holder or {})
        # the holder's command line and host are this machine's business: a hosted app hides them
        super().__init__(message, file_text=[str(self.holder.get(k) or "") for k in ("command", "host")])


class RunLock:
    """An exclusive lock on ``OUT.lock`` (or ``lock_path``) while a run writes OUT.

    ``what`` names the output in the refusal ("output", "run folder"); ``advice`` says what to do
    instead of waiting (e.g. "choose another --out-dir").
    """

    def __init__(self, out_path: str | os.PathLike, *, lock_path: str | os.PathLike | None = None,
                 what: str = "output", advice: str = "choose another --out"):
        self.target = Path(out_path)
        self.path = Path(lock_path) if lock_path is not None else Path(str(out_path) + ".lock")
        self.what, self.advice = what, advice
        self._fd: int | None = None

    @classmethod
    def for_folder(cls, folder: str | os.PathLike, what: str = "run folder",
                   advice: str = "choose another output folder") -> "RunLock":
        """The lock of a whole folder: ``FOLDER/.paraclip.lock``."""
        folder = Path(folder).expanduser()
        return cls(folder, lock_path=folder / FOLDER_LOCK_NAME, what=what, advice=advice)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder_info(self) -> dict[str, Any] | None:
        """What the holder wrote (pid, host, command, started); ``{}`` when it wrote nothing readable
        yet; None when the lock is free."""
        if self._fd is not None:
            return _read_info(self._fd)
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_info(fd)
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def holder(self) -> int | None:
        """The pid of the process holding the lock (-1 when it wrote none yet); None when the lock is free."""
        info = self.holder_info()
        return None if info is None else int(info.get("pid") or -1)

    def acquire(self, command: str | None = None) -> None:
        """Take the lock or raise :class:`OutputLockedError` naming the holder. ``command``: what to record
        as the holder's command line (default: this process's)."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _read_info(fd)
                os.close(fd)
                raise OutputLockedError(self._refusal(info), info) from None
            try:  # the previous holder may have removed the file between our open and flock
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            os.close(fd)
        self._fd = fd
        self.record(command=command)

    def record(self, pid: int | None = None, command: str | None = None) -> None:
        """(Re)write who holds the lock; a job runner names the child it hands the lock to."""
        if self._fd is None:
            raise RuntimeError("record() needs the lock held")
        info = {"pid": pid or os.getpid(), "host": socket.gethostname(),
                "command": command if command is not None else _this_command(),
                "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(info).encode(), 0)  # one write: a reader sees all of it or nothing

    def fileno(self) -> int:
        """The locked descriptor: a child process given it (``pass_fds``) keeps the lock after :meth:`detach`."""
        if self._fd is None:
            raise RuntimeError("the lock is not held")
        return self._fd

    def detach(self) -> None:
        """Close this process's descriptor but keep the lock file: a child that inherited the descriptor
        holds the lock until it (and every process it passed it to) exits."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: a waiter that opened it re-checks the inode
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _refusal(self, info: dict[str, Any]) -> str:
        pid = info.get("pid")
        if pid == os.getpid() and info.get("host") == socket.gethostname():
            who = "a run in this process"
        else:
            who = "another paraclip process"
            details = [f"pid {pid}" if pid else None, f"on host {info['host']}" if info.get("host") else None,
                       f"started {info['started']}" if info.get("started") else None,
                       f"command: {info['command']}" if info.get("command") else None]
            details = [d for d in details if d]
            who += f" ({', '.join(details)})" if details else " (it has not written its details yet)"
        return (f"{self.target}: {who} is writing this {self.what}. Wait for it to finish, stop it, or "
                f"{self.advice}. (The lock is {self.path}; it is released when that process exits, even if it "
                f"is killed, so do not delete it.)")


def _this_command() -> str:
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("paraclip", "__main__.py", "cli.py"):  # the CLI, however started
        argv[0] = "paraclip"
    return shlex.join(argv)


def _read_info(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        return {}
    if not raw:
        return {}
    try:
        info = json.loads(raw)
    except (ValueError, RecursionError):
        return {"pid": int(raw)} if raw.isdigit() else {}  # a lock file from before the details were written
    return info if isinstance(info, dict) else {}


__all__ = ["FOLDER_LOCK_NAME", "OutputLockedError", "RunLock"]
