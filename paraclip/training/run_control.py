"""Small pieces of a run's control: messages and progress bars, stop signals, precision, memory."""

from __future__ import annotations

import contextlib
import resource
import signal
import sys
import threading

import torch


class Console:
    """Messages and tqdm bars on stderr, only when ``verbose`` (the CLI on the main process)."""

    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.bar = None  # the training bar, once the loop starts; messages go through it

    def say(self, message: str) -> None:
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, file=sys.stderr)

    def progress_bar(self, total: int, desc: str, unit: str, initial: int = 0):
        """A tqdm bar with ETA, or None when quiet."""
        if not self.verbose:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)

    def start_training_bar(self, total: int, initial: int):
        """The training bar (None when quiet); messages go through it from now on."""
        self.bar = self.progress_bar(total, "training", "step", initial=initial)
        return self.bar

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class StopSignals:
    """Turn SIGINT/SIGTERM into a request to stop at the next step boundary (a second Ctrl-C aborts)."""

    def __init__(self):
        self.requested = False
        self.signum: int | None = None  # the first signal: the CLI exits 130 after SIGINT, 143 after SIGTERM
        self._previous = {}

    def __enter__(self):
        if on_main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = self.signum or signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def autocast(device: torch.device, precision: str):
    """bf16 autocast when asked, or by default on CUDA; fp32 otherwise."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
