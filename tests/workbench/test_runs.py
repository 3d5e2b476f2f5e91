"""Run board: per-session stop flags, queue messages per lane, worker threads, and the stoppable encoder."""

from __future__ import annotations

import os
import threading
import time

import pytest

from workbench.runs import RunBoard, StoppableEncoder, Stopped, Worker, session_key


def test_stop_reaches_only_the_sessions_own_run():
    board = RunBoard({"paraphrase": 1})
    mine, theirs = board.start("paraphrase", "me"), board.start("paraphrase", "them")
    assert [r.id for r in board.stop("paraphrase", "me")] == [mine.id]
    assert mine.stopped and not theirs.stopped
    assert board.stop("compare", "them") == []  # another lane: nothing of theirs there
    board.finish(mine)
    assert board.stop("paraphrase", "me") == []


def test_a_run_stopped_while_queued_starts_stopped():
    board = RunBoard()
    queued = board.enqueue("compare", "me")
    board.stop("compare", "me")
    started = board.start("compare", "me")
    assert started is queued and started.stopped and started.state == "running"


def test_queue_messages_say_what_a_run_waits_for():
    board = RunBoard({"compare": 1, "paraphrase": 2})
    other = board.start("compare", "them")
    mine = board.enqueue("compare", "me")
    assert board.ahead(mine) == 1
    assert board.waiting_message(mine) == ("⏳ queued: waiting for another user's comparison to finish (1 ahead); "
                                           "yours starts right after.")
    third = board.enqueue("compare", "you")
    assert "other users' comparisons to finish (2 ahead)" in board.waiting_message(third)
    board.finish(other)
    assert board.ahead(mine) == 0 and board.waiting_message(mine) == "⏳ starting the comparison …"
    # two paraphrase runs may work at once: the second starts at once, a third waits for one
    board.start("paraphrase", "a")
    assert board.ahead(board.enqueue("paraphrase", "b")) == 0
    assert board.ahead(board.enqueue("paraphrase", "c")) == 1


def _until_stopped(worker, started):
    """Work that goes on until its run's stop flag is set, then raises Stopped (as the evaluations do)."""
    started.set()
    while not worker.should_stop():
        time.sleep(0.01)
    raise Stopped("stopped by the user")


def test_a_worker_says_whether_its_work_was_done_stopped_or_failed():
    board = RunBoard()
    with board.running("compare", "me") as run:
        worker = Worker(run, "test-worker-done").start(lambda a, b=0: a + b, 40, b=2)
        assert not worker.wait(5)
        assert (worker.outcome, worker.result, worker.failed, worker.stopped) == ("done", 42, False, False)
    assert run.stopped and run.state == "done" and board.stop("compare", "me") == []  # left the board

    def boom():
        raise ValueError("bad input")

    with board.running("compare", "me") as run:
        worker = Worker(run, "test-worker-failed").start(boom)
        assert not worker.wait(5) and worker.failed and str(worker.error) == "bad input"


def test_stop_ends_a_workers_thread_and_so_does_leaving_the_page():
    board = RunBoard()
    started = threading.Event()
    with board.running("paraphrase", "me") as run:
        worker = Worker(run, "test-worker-stop")
        worker.start(_until_stopped, worker, started)
        assert started.wait(5) and worker.wait(0.05) and worker.outcome == "running"
        assert board.stop("paraphrase", "me") == [run]  # the Stop button: this session's run only
        assert not worker.wait(5) and worker.stopped

    workers = []

    def handler():  # a generator handler whose page goes away: Gradio closes it mid-run
        with board.running("paraphrase", "gone") as run:
            worker = Worker(run, "test-worker-left")
            workers.append(worker.start(_until_stopped, worker, threading.Event()))
            while worker.wait(0.05):
                yield "progress"

    gen = handler()
    assert next(gen) == "progress"
    gen.close()
    assert not workers[0].wait(5) and workers[0].stopped
    assert not [t for t in threading.enumerate() if t.name.startswith("test-worker")]


def test_session_key():
    class Request:
        session_hash = "abc"

    assert session_key(Request()) == "abc" and session_key(None) == "api"


def test_the_stoppable_encoder_stops_between_batches(tiny_encoder):
    flag = {"stop": False}
    calls = []
    encoder = StoppableEncoder(tiny_encoder, lambda: flag["stop"])
    assert encoder.name == tiny_encoder.name and encoder.has_image_tower
    out = encoder.encode_text(["a red circle"] * 5, batch_size=2, progress=lambda d, t: calls.append(d))
    assert tuple(out.shape) == (5, tiny_encoder.encode_text(["x"]).shape[1]) and calls == [2, 4, 5]

    def stop_after_first(done, total):
        flag["stop"] = True

    with pytest.raises(Stopped):
        encoder.encode_text(["a blue square"] * 6, batch_size=2, progress=stop_after_first)
    with pytest.raises(Stopped):
        encoder.encode_image([], batch_size=2)


def test_a_comparison_computes_with_few_torch_threads(monkeypatch):
    """Issue 22 §9: a comparison's encoder calls run with PARACLIP_APP_LONG_RUN_THREADS torch threads (so
    Explore keeps a core), and the count is restored after."""
    import torch

    from workbench.runs import StoppableEncoder

    seen = []

    class Encoder:
        def encode_text(self, texts, batch_size=None, progress=None):
            seen.append(torch.get_num_threads())
            return texts

    before = torch.get_num_threads()
    monkeypatch.setenv("PARACLIP_APP_LONG_RUN_THREADS", "1")
    StoppableEncoder(Encoder(), lambda: False).encode_text(["a"])
    monkeypatch.setenv("PARACLIP_APP_LONG_RUN_THREADS", "0")
    StoppableEncoder(Encoder(), lambda: False).encode_text(["a"])
    assert seen == [1, before] and torch.get_num_threads() == before


# -- worker processes (comparisons off the server's interpreter, issue 22 §9) ------------------------------

@pytest.fixture(scope="module")
def processes():
    from workbench.runs import WorkerProcesses

    pool = WorkerProcesses(1)
    yield pool
    pool.close()


def test_a_worker_process_returns_the_result_and_progress_at_lower_priority(processes, tmp_path):
    from tests.workbench import process_work
    from workbench.runs import ProcessWorker

    board = RunBoard()
    with board.running("compare", "me") as run:
        worker = ProcessWorker(run, "test-worker-process", processes, tmp_path / "run").start(process_work.add, 40, 2)
        assert not worker.wait(120)
    assert (worker.outcome, worker.result["sum"]) == ("done", 42)
    assert worker.result["pid"] != os.getpid()  # another interpreter: its GIL is not the server's
    assert worker.result["nice"] >= os.nice(0) + 10  # the server's requests win the cores
    assert worker.message == "adding 40 and 2"
    assert not [t for t in threading.enumerate() if t.name == "test-worker-process"]


def test_stop_reaches_a_worker_process_and_failures_come_back_with_their_message(processes, tmp_path):
    from tests.workbench import process_work
    from workbench.runs import ProcessWorker

    board = RunBoard()
    started = tmp_path / "started"
    with board.running("compare", "me") as run:
        worker = ProcessWorker(run, "test-worker-process", processes, tmp_path / "a").start(
            process_work.until_stopped, str(started))
        assert worker.wait(0.05) and worker.outcome == "running"
        assert board.stop("compare", "me") == [run]  # the Stop button
        assert not worker.wait(60) and worker.stopped
    with board.running("compare", "me") as run:
        worker = ProcessWorker(run, "test-worker-process", processes, tmp_path / "b").start(process_work.fail, "bad k")
        assert not worker.wait(60) and worker.failed and isinstance(worker.error, ValueError)
        assert str(worker.error) == "bad k"


def test_leaving_the_page_stops_the_worker_process_work(processes, tmp_path):
    from tests.workbench import process_work
    from workbench.runs import ProcessWorker

    board = RunBoard()
    workers = []

    def handler():  # a generator handler whose page goes away: Gradio closes it mid-run
        with board.running("compare", "gone") as run:
            worker = ProcessWorker(run, "test-worker-process", processes, tmp_path / "run")
            workers.append(worker.start(process_work.until_stopped, str(tmp_path / "started")))
            while worker.wait(0.05):
                yield "progress"

    gen = handler()
    assert next(gen) == "progress"
    gen.close()
    assert not workers[0].wait(60) and workers[0].stopped


def test_a_dead_worker_process_fails_its_run_and_the_next_run_gets_a_fresh_one(tmp_path):
    from tests.workbench import process_work
    from workbench.runs import ProcessWorker, WorkerProcesses

    pool = WorkerProcesses(1)
    board = RunBoard()
    try:
        with board.running("compare", "me") as run:
            worker = ProcessWorker(run, "test-worker-process", pool, tmp_path / "a").start(process_work.die)
            assert not worker.wait(120) and worker.failed
            assert "terminated abruptly" in str(worker.error)  # concurrent.futures' BrokenProcessPool
        with board.running("compare", "me") as run:
            worker = ProcessWorker(run, "test-worker-process", pool, tmp_path / "b").start(process_work.add, 1, 2)
            assert not worker.wait(120) and worker.result["sum"] == 3
    finally:
        pool.close()


def test_closing_the_worker_processes_ends_running_work_and_its_process(tmp_path):
    """The app stopping (SIGTERM) ends a comparison in flight: no process is left behind."""
    import psutil

    from tests.workbench import process_work
    from workbench.runs import ProcessWorker, WorkerProcesses

    pool = WorkerProcesses(1)
    board = RunBoard()
    started = tmp_path / "started"
    with board.running("compare", "me") as run:
        worker = ProcessWorker(run, "test-worker-process", pool, tmp_path / "a").start(
            process_work.until_stopped, str(started))
        assert _appears(started, 120), "the worker process never started the work"
        pid = int(started.read_text())
        pool.close()
        assert not worker.wait(60) and worker.failed
    try:
        psutil.Process(pid).wait(timeout=30)
    except psutil.NoSuchProcess:
        pass  # already gone and reaped
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _appears(path, timeout: float) -> bool:
    """Whether ``path`` appears within ``timeout`` s: another process's event, seen as its file."""
    end = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def test_a_comparisons_worker_process_never_imports_gradio():
    """What a worker process imports (workbench.compare_run and what it uses) stays gradio-free: gradio's import
    costs seconds and memory in every worker, and its UI objects cannot cross processes anyway."""
    import subprocess
    import sys

    code = ("import sys, workbench.compare_run as r, workbench.compare_tasks, workbench.compare_view, "
            "workbench.vocabulary, workbench.services; r.warm_up(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'gradio'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout


def test_worker_processes_start_even_when_the_servers_main_is_not_a_file(tmp_path):
    """``python - < script.py`` (main = "<stdin>"): spawn would try to run "<stdin>" in the worker and the pool
    broke; the workers start with a neutral main instead."""
    import subprocess
    import sys

    script = ("from workbench.runs import WorkerProcesses\n"
              "from tests.workbench import process_work\n"
              "pool = WorkerProcesses(1)\n"
              f"print(pool.submit(process_work.add, 2, 3, {str(tmp_path / 's')!r}, {str(tmp_path / 'p')!r})"
              ".result(120)['sum'])\n"
              "pool.close()\n")
    out = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "5", out.stderr[-2000:]
