"""Ctrl-C and SIGTERM for the CLI: the first stops the work soon and keeps what is finished, a second quits at once.

    with GracefulInterrupt(on_stop=backend.cancel) as interrupt:
        run(..., should_stop=interrupt.requested)
    return interrupt.exit_code or 0        # 130 after SIGINT, 143 after SIGTERM

The first SIGINT or SIGTERM sets the flag the work polls, remembers which signal it was and calls
``on_stop`` on a helper thread (it may take locks, which a signal handler must not). A second
signal exits the process at once with 128 + its number: finished records are already written and
flushed, and locks held with ``flock`` are dropped by the kernel.

Before a command installs its own handler (imports, argument parsing, setup) the CLI installs
:func:`setup_handlers`: the first signal raises :class:`~paraclip.errors.Interrupted` (the CLI turns
it into one line and exit 130/143), a second quits at once. Every signal is also recorded
(:func:`received_signal`), so one whose KeyboardInterrupt a library swallowed during an import is
still honoured: the CLI checks the record, and a GracefulInterrupt entered later starts stopped.

``PARACLIP_TEST_SIGNAL_AT=POINT:SIG`` (tests only) makes the process send itself SIG (INT or TERM)
when it reaches POINT (:func:`signal_self_at`), so a test can interrupt at an exact place
without waiting or guessing.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable

from paraclip.errors import Interrupted

HANDLED = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []  # signals seen since reset_signals(), oldest first
_fired: list[str] = []  # the test point already signalled (signal_self_at)


def received_signal() -> int | None:
    """The first signal received since :func:`reset_signals`, or None."""
    return _received[0] if _received else None


def reset_signals() -> None:
    _received.clear()


def _describe(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


_quitting = threading.Lock()


def _quit_now(signum: int, what: str) -> None:
    # once: the main thread's handler and the watcher may both get here; the second waits while the first
    # writes its line and exits (the lock is never released)
    if _quitting.acquire(blocking=False):
        which = "Ctrl-C" if signum == signal.SIGINT else f"signal ({_describe(signum)})"
        os.write(2, f"\nsecond {which}: quitting now; {what}, rerun the same command to resume.\n".encode())
    else:
        _quitting.acquire(timeout=1.0)
    os._exit(128 + signum)


def _setup_handler(signum, frame) -> None:
    _received.append(signum)
    if len(_received) > 1:
        _quit_now(signum, "finished work is kept")
    raise Interrupted(signum)


class setup_handlers:
    """Context manager: SIGINT/SIGTERM raise :class:`Interrupted` (recorded) while it is active; the
    previous handlers come back on exit. Does nothing off the main thread (signals go to the main one)."""

    def __enter__(self) -> "setup_handlers":
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in HANDLED:
                self._previous[sig] = signal.signal(sig, _setup_handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def signal_self_at(point: str) -> None:
    """If ``PARACLIP_TEST_SIGNAL_AT`` is ``point:INT`` or ``point:TERM``, send that signal to this process
    (tests interrupt at exact places with it; unset in normal use, so this is one dictionary lookup)."""
    wanted = os.environ.get("PARACLIP_TEST_SIGNAL_AT")
    if not wanted or wanted.rsplit(":", 1)[0] != point or _fired:
        return
    _fired.append(point)  # once per process: a point reached twice must not look like a second Ctrl-C
    name = wanted.rsplit(":", 1)[-1].upper()
    os.kill(os.getpid(), signal.SIGTERM if name in ("TERM", "SIGTERM") else signal.SIGINT)


class GracefulInterrupt:
    def __init__(self, on_stop: Callable[[], None] | None = None, what: str = "finished work is kept"):
        self.on_stop = on_stop
        self.what = what
        self._event = threading.Event()
        self._previous: dict[int, object] = {}
        self.signum: int | None = None

    def requested(self) -> bool:
        return self._event.is_set()

    @property
    def exit_code(self) -> int | None:
        """128 + the signal that stopped the work (130 Ctrl-C, 143 SIGTERM), or None."""
        return 128 + self.signum if self.signum is not None else None

    def _stop(self, signum: int) -> None:
        self.signum = signum
        self._event.set()
        if self.on_stop is not None:
            threading.Thread(target=self.on_stop, name="paraclip-stop", daemon=True).start()

    def _handle(self, signum, frame) -> None:
        _received.append(signum)
        if self._event.is_set():
            _quit_now(signum, self.what)
        again = "Ctrl-C again" if signum == signal.SIGINT else "a second signal"
        os.write(2, f"\n{_describe(signum)}: stopping (work in flight is abandoned, finished work is kept); "
                    f"{again} to quit at once\n".encode())
        self._stop(signum)

    def _watch(self, reader) -> None:
        """Quit at the second signal as soon as its byte arrives on the wakeup fd.

        The first signal is handled by ``_handle`` on the main thread (at once when the process signals
        itself, so the work stops exactly where it should). But CPython 3.11 can leave a signal pending on
        the main thread while other threads run (a worker thread clears the eval breaker it may not act
        on), and a second Ctrl-C then waited for the work in flight, up to minutes, instead of quitting.
        The C-level handler writes the wakeup fd from whichever thread it runs on, at once."""
        seen = 0
        while True:
            try:
                data = reader.recv(64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum in HANDLED:
                    seen += 1
                    if seen >= 2:
                        _quit_now(signum, self.what)

    def __enter__(self) -> "GracefulInterrupt":
        self._wakeup = None
        if threading.current_thread() is threading.main_thread():
            import socket

            reader, writer = socket.socketpair()
            writer.setblocking(False)
            try:
                previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
            except ValueError:  # not possible here: keep the handlers alone
                reader.close()
                writer.close()
            else:
                self._wakeup = (reader, writer, previous_fd)
                threading.Thread(target=self._watch, args=(reader,), name="paraclip-signals", daemon=True).start()
            for sig in HANDLED:
                self._previous[sig] = signal.signal(sig, self._handle)
        if received_signal() is not None:  # arrived during setup and was swallowed on the way here
            self._stop(received_signal())
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        if self._wakeup is not None:
            reader, writer, previous_fd = self._wakeup
            signal.set_wakeup_fd(previous_fd)
            writer.close()
            reader.close()  # the watcher's recv ends
            self._wakeup = None
        sys.stderr.flush()
