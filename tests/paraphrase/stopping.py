"""Two callers sharing one backend, one of them stopped: the per-call stop contract's test harness."""

from __future__ import annotations

import threading
from collections.abc import Callable


def stop_one_of_two(call: Callable[[str, Callable[[], bool] | None], None], stopped_join_s: float,
                    other_join_s: float, polls_before_stop: int = 3, start_timeout_s: float = 120) -> bool:
    """Run ``call("stopped", should_stop)`` and ``call("other", None)`` in two threads at once, turn the
    first one's ``should_stop`` true once the backend has polled it ``polls_before_stop`` times (it is then
    at work, whatever the machine's speed: no guessed sleep), and wait for both. Returns whether the
    other caller was still running when the stopped one had returned."""
    flag, working = threading.Event(), threading.Event()
    polls = 0

    def should_stop() -> bool:
        nonlocal polls
        polls += 1
        if polls >= polls_before_stop:
            working.set()
        return flag.is_set()

    stopped = threading.Thread(target=call, args=("stopped", should_stop))
    other = threading.Thread(target=call, args=("other", None))
    stopped.start()
    other.start()
    assert working.wait(start_timeout_s) or not stopped.is_alive(), "the stopped caller never got to work"
    flag.set()
    stopped.join(stopped_join_s)
    still_running = other.is_alive()
    other.join(other_join_s)
    return still_running
