"""Helpers shared by the bench scripts: a seeded random-init encoder, median timing, the machine's
load (every figure is quoted with it), a free local port. Imported as ``_common`` (the scripts run as
``python bench/<name>.py``, which puts this folder first on ``sys.path``)."""

from __future__ import annotations

import os
import socket
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def random_encoder(model: str):
    """``model`` with seed-0 random weights on CPU (speed does not depend on the weights' values)."""
    import torch

    from paraclip.models import load_encoder

    torch.manual_seed(0)
    return load_encoder(model, device="cpu")


def timed(fn: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Median seconds of ``repeats`` calls of ``fn``, and the last call's result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def median_and_runs(times: list[float]) -> str:
    """``median   1.23 s   runs 1.20, 1.23, 1.31``"""
    return f"median {statistics.median(times):7.2f} s   runs {', '.join(f'{x:.2f}' for x in times)}"


def machine_load() -> str:
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
