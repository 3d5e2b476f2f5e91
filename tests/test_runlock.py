"""RunLock on whole folders: a second writer (another process) is refused with the holder named, and
kill -9 of the holder leaves nothing that blocks. The evaluate and mini-world commands take it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from paraclip.cli import main
from paraclip.errors import DataError
from paraclip.runlock import FOLDER_LOCK_NAME, OutputLockedError, RunLock

REPO = Path(__file__).resolve().parents[1]

_HOLDER = """
import sys
from paraclip.runlock import RunLock
lock = RunLock.for_folder(sys.argv[1])
lock.acquire()
print("locked", flush=True)
sys.stdin.read()  # hold until the test closes our stdin (or kills us)
"""


@pytest.fixture
def holder():
    """Factory: a separate process holding a folder's lock through the same code; killed (-9) afterwards."""
    procs = []

    def hold(folder: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
        procs.append(proc)
        assert proc.stdout.readline().strip() == b"locked"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()


def test_a_second_process_is_refused_with_the_holder_named_and_kill_9_frees_the_folder(tmp_path, holder):
    folder = tmp_path / "run"
    proc = holder(folder)
    lock = RunLock.for_folder(folder, advice="choose another --out-dir")
    assert lock.path == folder / FOLDER_LOCK_NAME and lock.holder() == proc.pid
    with pytest.raises(OutputLockedError) as refused:
        lock.acquire()
    message = str(refused.value)
    assert f"pid {proc.pid}" in message and f"on host {socket.gethostname()}" in message
    assert "started 20" in message and " UTC" in message and "command: " in message and "-c" in message
    assert "is writing this run folder" in message and "choose another --out-dir" in message
    assert refused.value.holder["pid"] == proc.pid and isinstance(refused.value, DataError)
    proc.kill()  # kill -9: no cleanup runs in the holder
    proc.wait()
    assert lock.path.exists() and lock.holder() is None  # the file stays, the kernel dropped the lock
    lock.acquire()  # a stale lock file does not block
    assert lock.holder_info()["pid"] == os.getpid()
    lock.release()
    assert not lock.path.exists()


def test_two_locks_in_one_process_exclude_each_other_and_a_context_releases(tmp_path):
    first, second = RunLock.for_folder(tmp_path), RunLock.for_folder(tmp_path)
    with first:
        with pytest.raises(OutputLockedError, match="a run in this process is writing"):
            second.acquire()
    with second:
        assert second.held and first.holder() == os.getpid()
    assert first.holder() is None


def test_a_detached_lock_stays_with_the_child_it_was_handed_to(tmp_path):
    lock = RunLock.for_folder(tmp_path)
    lock.acquire()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE,
                             pass_fds=(lock.fileno(),))
    try:
        lock.record(pid=child.pid, command="the child")
        lock.detach()
        assert RunLock.for_folder(tmp_path).holder() == child.pid  # the app no longer holds it; the child does
        with pytest.raises(OutputLockedError, match="command: the child"):
            RunLock.for_folder(tmp_path).acquire()
    finally:
        child.stdin.close()  # the child ends
        child.wait()
    assert RunLock.for_folder(tmp_path).holder() is None


def test_the_paraphrase_import_path_still_works(tmp_path):
    from paraclip.paraphrase.lock import RunLock as ParaphraseLock

    lock = ParaphraseLock(tmp_path / "o.jsonl")
    assert ParaphraseLock is RunLock and lock.path == tmp_path / "o.jsonl.lock"


def test_evaluate_refuses_an_out_folder_another_process_writes(tmp_path, holder, capsys):
    out = tmp_path / "results"
    proc = holder(out)
    code = main(["evaluate", "--models", "paraclip-tiny", "--tasks", "STSB", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and f"pid {proc.pid}" in err and "is writing this results folder" in err
    assert "Traceback" not in err and os.listdir(out) == [FOLDER_LOCK_NAME]  # nothing was written


def test_miniworld_refuses_a_run_folder_another_process_writes(tmp_path, holder, capsys):
    root = tmp_path / "mw"
    proc = holder(root)
    code = main(["miniworld", "--reproduce", "--preset", "smoke", "--out", str(root)])
    err = capsys.readouterr().err
    assert code == 2 and f"pid {proc.pid}" in err and "mini-world run folder" in err
    assert os.listdir(root) == [FOLDER_LOCK_NAME]  # not even config.json was written


def test_a_hosted_app_can_hide_the_holders_command_and_host(tmp_path, holder):
    proc = holder(tmp_path / "run")
    with pytest.raises(OutputLockedError) as refused:
        RunLock.for_folder(tmp_path / "run").acquire()
    hidden = refused.value.without_file_text()
    assert f"pid {proc.pid}" in hidden and "[file content hidden]" in hidden
    command = refused.value.holder["command"]
    assert command and command in str(refused.value) and command not in hidden and socket.gethostname() not in hidden
