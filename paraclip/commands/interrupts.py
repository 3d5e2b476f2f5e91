"""Ctrl-C for long commands: the first stops the work soon and keeps what is finished, a second quits at once.

    with GracefulInterrupt(on_stop=backend.cancel) as interrupt:
        run(..., should_stop=interrupt.requested)

The first SIGINT sets the flag the work polls and calls ``on_stop`` on a helper thread (it
may take locks, which a signal handler must not). A second SIGINT exits the process with
status 130 immediately: finished records are already written and flushed, and locks held
with ``flock`` are dropped by the kernel.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable


class GracefulInterrupt:
    def __init__(self, on_stop: Callable[[], None] | None = None, what: str = "finished work is kept"):
        self.on_stop = on_stop
        self.what = what
        self._event = threading.Event()
        self._previous = None

    def requested(self) -> bool:
        return self._event.is_set()

    def _handle(self, signum, frame) -> None:
        if self._event.is_set():
            os.write(2, f"\nsecond Ctrl-C: quitting now; {self.what}, rerun the same command to resume.\n".encode())
            os._exit(130)
        self._event.set()
        os.write(2, b"\nstopping (work in flight is abandoned, finished work is kept); Ctrl-C again to quit at once\n")
        if self.on_stop is not None:
            threading.Thread(target=self.on_stop, name="paraclip-stop", daemon=True).start()

    def __enter__(self) -> "GracefulInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        sys.stderr.flush()
