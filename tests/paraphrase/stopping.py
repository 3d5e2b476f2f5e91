"""Two callers sharing one backend, one of them stopped: the per-call stop contract's test harness."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def stop_one_of_two(call: Callable[[str, Callable[[], bool] | None], None], stop_after_s: float,
                    stopped_join_s: float, other_join_s: float) -> bool:
    """Run ``call("stopped", should_stop)`` and ``call("other", None)`` in two threads at once, turn the
    first one's ``should_stop`` true after ``stop_after_s``, and wait for both. Returns whether the
    other caller was still running when the stopped one had returned."""
    flag = threading.Event()
    stopped = threading.Thread(target=call, args=("stopped", flag.is_set))
    other = threading.Thread(target=call, args=("other", None))
    stopped.start()
    other.start()
    time.sleep(stop_after_s)
    flag.set()
    stopped.join(stopped_join_s)
    still_running = other.is_alive()
    other.join(other_join_s)
    return still_running
