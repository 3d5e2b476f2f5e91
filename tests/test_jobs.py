"""JobRunner: real subprocesses in their own process group, history in a real SQLite file."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from paraclip.errors import ParaclipError
from paraclip.jobs import JobRunner, JobStore, training_command


def wait_for(predicate, timeout=30.0, every=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # zombies (not yet reaped) count as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_success_and_failure_are_recorded_with_exit_codes_and_logs(tmp_path):
    runner = JobRunner(tmp_path)
    ok = runner.start("demo", "ok", py("print('hello from the job')"))
    bad = runner.start("demo", "bad", py("import sys; print('error: boom', file=sys.stderr); sys.exit(3)"))
    ok = wait_for(lambda: (j := runner.get(ok.id)) and not j.active and j)
    bad = wait_for(lambda: (j := runner.get(bad.id)) and not j.active and j)
    assert (ok.status, ok.returncode) == ("succeeded", 0)
    assert "hello from the job" in runner.log_tail(ok)
    assert (bad.status, bad.returncode) == ("failed", 3)
    assert "boom" in bad.message


def test_cancel_stops_the_whole_process_group(tmp_path):
    runner = JobRunner(tmp_path, cancel_grace_s=3)
    # the job starts a grandchild that ignores SIGTERM: only the group kill after the grace period ends it
    code = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); print(\"ready\", flush=True); time.sleep(600)'])\n"
            "print('grandchild', child.pid, flush=True)\n"
            "time.sleep(600)\n")
    job = runner.start("demo", "sleeper", py(code))
    pid_line = wait_for(lambda: [ln for ln in runner.log_tail(job).splitlines() if ln.startswith("grandchild")])
    grandchild = int(pid_line[0].split()[1])
    wait_for(lambda: "ready" in runner.log_tail(job))
    assert runner.get(job.id).status == "running"
    start = time.monotonic()
    job = runner.cancel(job.id, wait=True)
    assert time.monotonic() - start < 15
    assert not alive(grandchild)
    job = wait_for(lambda: (j := runner.get(job.id)) and not j.active and j)
    assert job.status == "cancelled"
    assert job.cancel_requested


def test_history_survives_a_restart_and_a_lost_process_is_reported(tmp_path):
    runner = JobRunner(tmp_path)
    done = runner.start("demo", "finished before restart", py("print(1)"))
    wait_for(lambda: not runner.get(done.id).active)
    running = runner.start("demo", "killed with the machine", py("import time; time.sleep(600)"))
    # simulate a machine restart: the process disappears without writing its exit code
    os.killpg(running.pid, 9)
    wait_for(lambda: not alive(running.pid) or runner._procs[running.id].poll() is not None)
    restarted = JobRunner(tmp_path)  # a new app process reading the same database
    jobs = {j.name: j for j in restarted.list()}
    assert jobs["finished before restart"].status == "succeeded"
    assert jobs["killed with the machine"].status in ("lost", "failed")
    assert len(JobStore(tmp_path / "jobs.sqlite").list()) == 2


def test_limit_on_running_jobs(tmp_path):
    runner = JobRunner(tmp_path, max_active=1)
    job = runner.start("demo", "one", py("import time; time.sleep(600)"))
    with pytest.raises(ParaclipError, match="already running"):
        runner.start("demo", "two", py("print(2)"))
    runner.cancel(job.id, wait=True)


def test_a_job_folder_is_held_by_the_jobs_processes_until_they_end(tmp_path):
    from paraclip.runlock import RunLock

    runner = JobRunner(tmp_path)
    job = runner.start("demo", "holder", py("import time; print('up', flush=True); time.sleep(600)"))
    wait_for(lambda: "up" in runner.log_tail(job))
    lock = RunLock.for_folder(job.job_dir)
    assert lock.holder() == job.pid  # the job's process holds it (the app only handed it over)
    with pytest.raises(ParaclipError, match=f"pid {job.pid}.*command: .*time.sleep"):
        runner.start("demo", "same folder", py("print(2)"), job_id=job.id)
    os.killpg(job.pid, 9)  # killed, not cancelled: the kernel drops the lock
    wait_for(lambda: runner._procs[job.id].poll() is not None)
    # every process of the group holds the inherited descriptor; the kernel frees the lock when the last
    # of them is gone, which under load can be a moment after the direct child is reaped
    wait_for(lambda: lock.holder() is None)
    lock.acquire()  # the folder is free again
    lock.release()
    with pytest.raises(ParaclipError, match="exists already"):  # refused before a process starts
        runner.start("demo", "same id", py("print(2)"), job_id=job.id)


def test_training_command_and_config_errors_name_the_field(tmp_path):
    assert training_command("c.yaml")[1:5] == ["-m", "paraclip.cli", "train", "--config"]
    assert "torch.distributed.run" in training_command("c.yaml", gpus=4)
    assert "--nproc_per_node=4" in training_command("c.yaml", gpus=4)
    runner = JobRunner(tmp_path)
    with pytest.raises(ParaclipError, match="batch_sise"):
        runner.start_training({"data": "x.jsonl", "batch_sise": 4})
    assert runner.list() == []


@pytest.mark.slow
def test_a_real_training_job_writes_metrics_and_a_final_checkpoint(tmp_path):
    import json

    from paraclip.miniworld.world import iter_scenes

    images = tmp_path / "images"
    images.mkdir()
    with open(tmp_path / "data.jsonl", "w") as f:
        for scene in iter_scenes(seed=0, split="train", n=16, image_size=32):
            scene.image().save(images / f"{scene.image_id}.png")
            f.write(json.dumps({"image_id": scene.image_id, "caption": scene.caption, "paraphrase_1":
                                "a picture of " + scene.caption, "paraphrase_2": "an image with " + scene.caption,
                                "status": "ok"}) + "\n")
    runner = JobRunner(tmp_path / "app")
    job = runner.start_training({"model": "paraclip-tiny", "pretrained": "none", "data": str(tmp_path / "data.jsonl"),
                                 "images": str(images), "steps": 3, "batch_size": 8, "validation": [],
                                 "device": "cpu", "threads": 1}, name="tiny")
    job = wait_for(lambda: (j := runner.get(job.id)) and not j.active and j, timeout=240, every=0.5)
    assert job.status == "succeeded", runner.log_tail(job)
    rows = runner.metrics(job)
    assert [r["step"] for r in rows if "loss" in r][-1] == 3
    assert job.final_checkpoint is not None and job.final_checkpoint in job.checkpoints()


def test_interrupt_all_signals_and_marks_jobs_and_resume_reuses_the_run_folder(tmp_path, monkeypatch):
    runner = JobRunner(tmp_path)
    marker = tmp_path / "got-term"
    code = ("import signal, sys, time, pathlib\n"
            f"signal.signal(signal.SIGTERM, lambda *_: (pathlib.Path({str(marker)!r}).write_text('1'), sys.exit(0)))\n"
            f"pathlib.Path({str(marker) + '.ready'!r}).write_text('1')\n"
            "while True:\n    time.sleep(0.05)\n")
    job = runner.start("train", "long", py(code), owner="v", config={"steps": 5, "out_dir": str(tmp_path / "run")})
    assert wait_for(lambda: Path(f"{marker}.ready").exists())  # its SIGTERM handler is in place
    assert [j.id for j in runner.interrupt_all()] == [job.id]
    assert wait_for(marker.exists), "the job got no SIGTERM"
    stopped = runner.get(job.id)
    assert stopped.status == "interrupted" and "resume" in stopped.message and not stopped.active
    started = {}
    monkeypatch.setattr(runner, "start_training", lambda config, name=None, owner=None: started.update(
        config=config, name=name, owner=owner) or "new job")
    assert runner.resume(job.id) == "new job"
    assert started == {"config": {"steps": 5, "out_dir": str(tmp_path / "run")}, "name": "long", "owner": "v"}
    running = runner.start("train", "busy", py("import time; time.sleep(30)"))
    with pytest.raises(ParaclipError, match="cannot be resumed"):
        runner.resume(running.id)
    runner.cancel_all()
