"""Work for tests of :class:`workbench.runs.ProcessWorker`: module-level functions (a worker process imports
them by name) that do nothing heavy at import. Each is called as ``work(*args, stop_file, progress_file)``."""

from __future__ import annotations

import os
import time
from pathlib import Path

from workbench.runs import Stopped


def add(a: int, b: int, stop_file: str, progress_file: str) -> dict:
    Path(progress_file).write_text(f"adding {a} and {b}", encoding="utf-8")
    return {"sum": a + b, "pid": os.getpid(), "nice": os.nice(0)}


def until_stopped(started_file: str, stop_file: str, progress_file: str) -> None:
    """Goes on until the stop file appears, then raises Stopped (as the evaluations do between batches)."""
    Path(started_file).write_text(str(os.getpid()), encoding="utf-8")
    while not Path(stop_file).exists():
        time.sleep(0.01)  # the work's own between-batch check, not a test waiting
    raise Stopped("stopped by the user")


def fail(message: str, stop_file: str, progress_file: str) -> None:
    raise ValueError(message)


def die(stop_file: str, progress_file: str) -> None:
    os._exit(3)  # as a worker killed for memory: no exception crosses back
