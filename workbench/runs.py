"""Long runs of the app (paraphrasing, comparisons): their queue lanes, stop flags, queue messages and
worker threads.

Each kind of long work has its own Gradio concurrency lane (``LANES``), so a paraphrase run never
holds up a comparison or an Explore query. A :class:`RunBoard` (one per app, in ``Services``) keeps
the runs that are queued or running, each with its own stop flag, keyed by the browser session
that started it: Stop in one tab stops that tab's run and nobody else's. It is job control (like
the training job runner), not per-user UI state: what a user sees stays in Gradio state.

A handler runs its work the same way in every tab::

    with services.runs.running(LANE, session_id) as run:      # started; stopped and finished on exit
        worker = Worker(run, "paraclip-wb-NAME").start(work, ...)  # work checks worker.should_stop
        while worker.wait(0.5):
            yield progress                                     # the page sees progress
        worker.outcome                                         # done | stopped | failed (worker.error)
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

# lane -> how many runs of it may work at once (the machine has few cores: comparisons one at a
# time; paraphrase runs mostly wait on a shared model or a remote API, so two may overlap). Explore:
# two, not four: its queries hold the GIL, so more at once only switch between each other (20 visitors
# at once, Explore p95 with 4 lanes 0.92-1.06 s, with 2 0.87-0.95 s, with 1 0.83-0.85 s, issue 22 §9);
# not one, so that a visitor whose query loads a new model or embeds a new gallery holds up no one else
LANES = {"paraphrase": 2, "compare": 1, "explore": 2, "explore-llm": 1}
NOUNS = {"paraphrase": "paraphrase run", "compare": "comparison", "explore-llm": "paraphrase"}
QUEUED_TTL_S = 3600.0  # a queued run whose page went away never starts; forget it after this


@dataclass
class Run:
    """One queued or running piece of long work."""

    lane: str
    session: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: float = field(default_factory=time.monotonic)
    state: str = "queued"  # queued | running | done
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def stopped(self) -> bool:
        return self.stop.is_set()


class RunBoard:
    """Queued and running runs per lane; thread-safe."""

    def __init__(self, limits: dict[str, int] | None = None):
        self.limits = dict(limits or LANES)
        self._runs: list[Run] = []
        self._lock = threading.Lock()

    def _prune(self) -> None:
        now = time.monotonic()
        self._runs = [r for r in self._runs if r.state != "done"
                      and not (r.state == "queued" and now - r.created > QUEUED_TTL_S)]

    def enqueue(self, lane: str, session: str) -> Run:
        """Note a run the user just asked for (before Gradio's queue starts it)."""
        with self._lock:
            self._prune()
            self._runs = [r for r in self._runs if not (r.lane == lane and r.session == session
                                                        and r.state == "queued")]
            run = Run(lane, session)
            self._runs.append(run)
            return run

    def start(self, lane: str, session: str) -> Run:
        """The run a handler is starting: the session's queued one (possibly already stopped), or a new one."""
        with self._lock:
            self._prune()
            run = next((r for r in self._runs if r.lane == lane and r.session == session and r.state == "queued"),
                       None)
            if run is None:
                run = Run(lane, session)
                self._runs.append(run)
            run.state = "running"
            return run

    def finish(self, run: Run) -> None:
        with self._lock:
            run.state = "done"
            self._prune()

    @contextlib.contextmanager
    def running(self, lane: str, session: str) -> Iterator[Run]:
        """The run a handler starts (:meth:`start`); when the handler ends — finished, failed, or its page
        went away (Gradio closes the generator) — the run's stop flag is set, so its worker stops at its
        next check and keeps what it finished, and the run leaves the board."""
        run = self.start(lane, session)
        try:
            yield run
        finally:
            run.stop.set()
            self.finish(run)

    def stop(self, lane: str, session: str) -> list[Run]:
        """Set the stop flag of this session's queued and running runs in ``lane``; returns them."""
        with self._lock:
            runs = [r for r in self._runs if r.lane == lane and r.session == session and r.state != "done"]
            for r in runs:
                r.stop.set()
            return runs

    def ahead(self, run: Run) -> int:
        """How many runs of other sessions must end before ``run`` can start (0 = it starts now)."""
        with self._lock:
            self._prune()
            before = [r for r in self._runs if r.lane == run.lane and r is not run and r.created <= run.created
                      and r.session != run.session]
        return max(0, len(before) - self.limits.get(run.lane, 1) + 1)

    def waiting_message(self, run: Run) -> str:
        n = self.ahead(run)
        noun = NOUNS.get(run.lane, run.lane)
        if n == 0:
            return f"⏳ starting the {noun} …"
        others = f"another user's {noun}" if n == 1 else f"other users' {noun}s"
        return f"⏳ queued: waiting for {others} to finish ({n} ahead); yours starts right after."


def session_key(request: Any) -> str:
    """The browser session a request comes from (a page load); API calls without one share ``"api"``."""
    return str(getattr(request, "session_hash", None) or "api")


class Stopped(Exception):
    """Raised inside a worker thread when its run's stop flag is set."""


class Worker:
    """A run's work in a daemon thread, stopped by the run's own stop flag.

    :meth:`start` calls ``work(*args)`` in a thread named ``name``. The work checks :meth:`should_stop`
    (the flag Stop sets, and :meth:`RunBoard.running` sets when the handler ends) between pieces of
    work and then returns what it has or raises :class:`Stopped`. :attr:`outcome` says how it ended:
    ``running``, ``done`` (returned; :attr:`result`), ``stopped`` (raised Stopped) or ``failed``
    (raised anything else; :attr:`error`, for the handler to show)."""

    def __init__(self, run: Run, name: str):
        self.run = run
        self.stop = run.stop  # the run's flag: Stop in the page, or the handler ending, sets it
        self.name = name
        self.outcome = "new"
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def should_stop(self) -> bool:
        return self.stop.is_set()

    def start(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> "Worker":
        self.outcome = "running"
        self._thread = threading.Thread(target=self._main, args=(work, args, kwargs), name=self.name, daemon=True)
        self._thread.start()
        return self

    def _main(self, work, args, kwargs) -> None:
        try:
            self.result = work(*args, **kwargs)
            self.outcome = "done"
        except Stopped:
            self.outcome = "stopped"
        except Exception as exc:  # noqa: BLE001 - the handler shows it to the user
            self.error, self.outcome = exc, "failed"

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the work to end; True while it is still going."""
        if self._thread is None:
            return False
        self._thread.join(seconds)
        return self._thread.is_alive()

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    @property
    def stopped(self) -> bool:
        return self.outcome == "stopped"


class ProcessWorker(Worker):
    """A run's work in a worker process (:class:`WorkerProcesses`), with :class:`Worker`'s interface.

    The run's stop flag cannot cross a process boundary, so a watcher thread turns it into a file
    (``stop_file``) that the work checks between batches; the work's progress messages come back
    through ``progress_file`` (:attr:`message`). ``work`` is called as ``work(*args, stop_file,
    progress_file)`` and must be a module-level function of a module that does not import gradio."""

    def __init__(self, run: Run, name: str, processes: "WorkerProcesses", scratch: Path):
        super().__init__(run, name)
        self.processes = processes
        scratch.mkdir(parents=True, exist_ok=True)
        self.stop_file, self.progress_file = scratch / "stop", scratch / "progress"
        self._future = None

    def start(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> "ProcessWorker":
        self.outcome = "running"
        self._future = self.processes.submit(work, *args, str(self.stop_file), str(self.progress_file))
        self._future.add_done_callback(self._settle)
        self._thread = threading.Thread(target=self._watch, name=self.name, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        """Until the work ends: the run's stop flag (Stop, or the handler ending) becomes the stop file."""
        while not self._future.done():
            if self.stop.wait(0.25):
                self.stop_file.touch()
                return

    def _settle(self, future) -> None:
        try:
            self.result = future.result()
            self.outcome = "done"
        except Stopped:
            self.outcome = "stopped"
        except BaseException as exc:  # noqa: BLE001 - the handler shows it (a dead worker process too)
            self.error, self.outcome = exc, "failed"

    def wait(self, seconds: float) -> bool:
        if self._future is None:
            return False
        done, _ = futures_wait([self._future], timeout=seconds)
        if not done:
            return True
        self._settle(self._future)  # the done-callback may not have run yet in its thread
        if self._thread is not None:
            self._thread.join()  # the watcher sees the work done within its 0.25 s beat
        return False

    @property
    def message(self) -> str | None:
        """The work's last progress message, if it has sent one."""
        try:
            return self.progress_file.read_text(encoding="utf-8") or None
        except OSError:
            return None


class WorkerProcesses:
    """Worker processes for long runs, started on first use and kept (they keep their loaded models).

    Started with ``spawn`` (forking a threaded server is unsafe), at a lower CPU priority (``nice``) so
    the server's own requests win the cores, each exiting when the server's process is gone. A worker
    that died (out of memory, killed) fails its run with a clear error, and the next run starts fresh ones.
    """

    def __init__(self, size: int = 1, nice: int = 10):
        self.size, self.nice = size, nice
        self._pool = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any):
        from concurrent.futures.process import BrokenProcessPool

        with self._lock:
            for attempt in range(2):
                if self._pool is None:
                    self._pool = self._start()
                try:
                    with _neutral_main():  # the pool starts its processes inside submit()
                        return self._pool.submit(fn, *args)
                except BrokenProcessPool:
                    self._pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = None
                    if attempt:
                        raise

    def _start(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(self.size, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_process_init, initargs=(os.getpid(), self.nice))

    def close(self) -> None:
        """Stop the workers now (the app is stopping): a run in flight ends as failed."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()  # shutdown() alone waits for the running work to end
        pool.shutdown(wait=False, cancel_futures=True)


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _neutral_main():
    """While worker processes start: a ``__main__`` without file or module name, so ``spawn`` does not run the
    server's main script again in the worker. That re-run is harmless for ``python app.py`` (guarded), but
    breaks a main that is not a file (``python - < script``: "No such file") and would start a second app from
    a script that serves at import. The work is found by module name, never in ``__main__``."""
    import sys
    import types

    with _MAIN_LOCK:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def _worker_process_init(server_pid: int, nice: int) -> None:
    """In each worker process: lower priority, the long-run torch threads, and exit with the server."""
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    from workbench.settings import read

    threads = read("PARACLIP_APP_LONG_RUN_THREADS")
    if threads:
        import torch

        torch.set_num_threads(threads)

    def watch_server() -> None:
        while True:
            time.sleep(2.0)
            if os.getppid() != server_pid:  # the server is gone (even killed): nobody waits for this work
                os._exit(0)

    threading.Thread(target=watch_server, daemon=True, name="paraclip-wb-server-watch").start()


class StoppableEncoder:
    """An encoder that checks a stop flag between batches (evaluations call ``encode_text`` /
    ``encode_image`` once with all their inputs, so a check per call alone would come too late).
    Everything else is the wrapped encoder's."""

    def __init__(self, encoder: Any, should_stop: Callable[[], bool]):
        self._encoder = encoder
        self._should_stop = should_stop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def _checked(self, progress):
        def check(done: int, total: int) -> None:
            if self._should_stop():
                raise Stopped("stopped by the user")
            if callable(progress):
                progress(done, total)

        return check

    def encode_text(self, texts, batch_size=None, progress=None):
        if self._should_stop():
            raise Stopped("stopped by the user")
        with lean_threads():
            return self._encoder.encode_text(texts, batch_size=batch_size, progress=self._checked(progress))

    def encode_image(self, images, batch_size=None, progress=None):
        if self._should_stop():
            raise Stopped("stopped by the user")
        with lean_threads():
            return self._encoder.encode_image(images, batch_size=batch_size, progress=self._checked(progress))


_thread_lock = threading.Lock()
_lean_runs = 0


@contextlib.contextmanager
def lean_threads():
    """Long runs (comparisons) compute with ``PARACLIP_APP_LONG_RUN_THREADS`` torch threads (default 1):
    with torch's default of one thread per core, one comparison's matrix work took every core and
    Explore queries waited behind it (issue 22 §9). 0 keeps torch's default."""
    global _lean_runs
    from workbench.settings import read

    threads = read("PARACLIP_APP_LONG_RUN_THREADS")
    if not threads:
        yield
        return
    import torch

    with _thread_lock:
        _lean_runs += 1
        if _lean_runs == 1:
            lean_threads.saved = torch.get_num_threads()
            torch.set_num_threads(threads)
    try:
        yield
    finally:
        with _thread_lock:
            _lean_runs -= 1
            if _lean_runs == 0:
                torch.set_num_threads(lean_threads.saved)
