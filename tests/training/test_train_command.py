"""`paraclip train`: YAML + flag overrides, readable errors, and resume after kill -9."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from paraclip.cli import main
from paraclip.errors import DataError

from .helpers import read_metrics, state_dict_of, tiny_config


def _config_file(world, path, out_dir, **overrides):
    cfg = tiny_config(world, out_dir, **overrides).to_dict()
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_config_file_with_flag_overrides(world, tmp_path, capsys):
    cfg = _config_file(world, tmp_path / "run.yaml", tmp_path / "out", steps=50)
    assert main(["train", "--config", str(cfg), "--steps", "3", "--loss-preset", "no-l3",
                 "--loss-weights", "l1=2"]) == 0
    out = capsys.readouterr().out
    assert "finished 3 steps" in out and "final.pt" in out
    saved = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert saved["steps"] == 3 and saved["loss_preset"] == "no-l3" and saved["loss_weights"] == {"l1": 2.0}
    rows = [r for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if "loss" in r]
    assert rows[0]["loss"] == pytest.approx(2 * rows[0]["loss_l1"] + rows[0]["loss_l2"], rel=1e-5)


def test_errors_are_one_readable_line(world, tmp_path, capsys):
    cfg = _config_file(world, tmp_path / "run.yaml", tmp_path / "out")
    assert main(["train", "--config", str(cfg), "--loss-preset", "paraclipp"]) == 2
    assert "Did you mean 'paraclip'" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg), "--batch-size", "64"]) == 2
    assert "batch_size 64 is larger than the 32 usable training records" in capsys.readouterr().err
    (tmp_path / "typo.yaml").write_text("lr: 1\nstep: 3\n")
    assert main(["train", "--config", str(tmp_path / "typo.yaml")]) == 2
    assert "Did you mean 'steps'" in capsys.readouterr().err



def test_a_file_where_the_feature_cache_folder_goes_is_refused_before_any_work(world, tmp_path, capsys):
    (tmp_path / "features").write_text("not a folder")
    cfg = _config_file(world, tmp_path / "run.yaml", tmp_path / "out", features_from=str(tmp_path / "features" / "sub"))
    assert main(["train", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "features_from" in err and "is a file, not a folder" in err and str(tmp_path / "features") in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_resume_after_kill_9_equals_an_uninterrupted_run(world, tmp_path):
    common = dict(steps=100, batch_size=4, checkpoint_every=5, lr=5e-4)
    killed_cfg = _config_file(world, tmp_path / "killed.yaml", tmp_path / "killed", **common)
    whole_cfg = _config_file(world, tmp_path / "whole.yaml", tmp_path / "whole", **common)
    assert main(["train", "--config", str(whole_cfg)]) == 0  # also fills the feature cache

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "paraclip.cli", "train", "--config", str(killed_cfg)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 180
    while not (checkpoints / "step-00000010.pt").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "the training subprocess made no checkpoint in time"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not (tmp_path / "killed" / "final.pt").exists(), "killed too late: the run had already finished"
    steps_logged = [r["step"] for r in read_metrics(tmp_path / "killed" / "metrics.jsonl") if "loss" in r]
    assert max(steps_logged) < 100

    assert main(["train", "--config", str(killed_cfg)]) == 0
    a, b = state_dict_of(tmp_path / "whole" / "final.pt"), state_dict_of(tmp_path / "killed" / "final.pt")
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0, msg=key)
    rows = [r for r in read_metrics(tmp_path / "killed" / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in rows] == list(range(1, 101))  # rows after the checkpoint were not duplicated


def test_an_out_dir_held_by_another_process_is_refused_before_any_work(world, tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from paraclip.runlock import RunLock; "
                               "RunLock.for_folder(sys.argv[1]).acquire(); print('locked', flush=True); "
                               "sys.stdin.read()", str(tmp_path / "out")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout.readline().strip() == b"locked"
        cfg = _config_file(world, tmp_path / "run.yaml", tmp_path / "out")
        assert main(["train", "--config", str(cfg)]) == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "command: " in err and "--out-dir" in err and "Traceback" not in err
        assert not (tmp_path / "out" / "metrics.jsonl").exists() and not (tmp_path / "out" / "config.yaml").exists()
    finally:
        holder.kill()
        holder.wait()
        holder.stdin.close()
        holder.stdout.close()
    assert main(["train", "--config", str(cfg), "--steps", "2"]) == 0  # kill -9 left nothing that blocks


@pytest.mark.slow
def test_a_second_run_on_the_same_out_dir_is_refused_while_the_first_writes(world, tmp_path, capsys):
    """Two `paraclip train` on one out_dir: the second exits 2 naming the first, which keeps writing alone;
    after the first is killed (-9) the folder is free again."""
    from paraclip.runlock import RunLock

    cfg = _config_file(world, tmp_path / "run.yaml", tmp_path / "out", steps=100_000, batch_size=4,
                       checkpoint_every=1_000)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    first = subprocess.Popen([sys.executable, "-m", "paraclip", "train", "--config", str(cfg)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = tmp_path / "out" / "metrics.jsonl"

    def steps_logged() -> list[int]:
        return [r["step"] for r in read_metrics(metrics) if "loss" in r] if metrics.exists() else []

    try:
        deadline = time.time() + 180
        while len(steps_logged()) < 2:  # the first run is training (and holds the lock)
            assert first.poll() is None, first.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "the first run logged no steps in time"
            time.sleep(0.01)
        assert main(["train", "--config", str(cfg)]) == 2
        err = capsys.readouterr().err
        assert f"pid {first.pid}" in err and "command: paraclip train --config" in err and "started " in err
        assert "is writing this run folder" in err and "--out-dir" in err and "Traceback" not in err
        logged = len(steps_logged())
        while len(steps_logged()) < logged + 2:  # the first goes on, undisturbed
            assert first.poll() is None, first.stderr.read().decode()[-2000:]
            time.sleep(0.01)
    finally:
        first.kill()
        first.wait()
        first.stderr.close()
    steps = steps_logged()
    assert steps == list(range(1, len(steps) + 1))  # one writer: no row twice, none out of order
    assert RunLock.for_folder(tmp_path / "out").holder() is None  # kill -9 left no lock that blocks
    assert main(["train", "--config", str(cfg), "--steps", "3", "--resume", "false"]) == 0
    assert "finished 3 steps" in capsys.readouterr().out


def test_under_torchrun_only_rank_0_takes_the_out_dir_lock(tmp_path, monkeypatch):
    from paraclip.commands.train import _out_dir_lock
    from paraclip.runlock import RunLock

    held = RunLock.for_folder(tmp_path / "out")
    held.acquire()  # rank 0 of this job holds it
    try:
        monkeypatch.setenv("RANK", "1")
        assert _out_dir_lock(tmp_path / "out") is None  # the other ranks neither take nor wait for it
        monkeypatch.setenv("RANK", "0")
        with pytest.raises(DataError, match="is writing this run folder"):
            _out_dir_lock(tmp_path / "out")  # a second job's rank 0 is refused
    finally:
        held.release()
