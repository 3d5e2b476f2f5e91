"""Two gloo processes under torchrun train exactly what one process trains with the same global batch."""

import os
import subprocess
import sys

import pytest
import torch
import yaml

from paraclip.cli import main

from .helpers import read_metrics, state_dict_of, tiny_config


def _write_config(cfg, path):
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return path


@pytest.mark.slow
def test_two_process_ddp_equals_one_process(world, tmp_path):
    common = dict(steps=4, batch_size=8, checkpoint_every=2, loss_preset="paraclip", threads=1)
    one = _write_config(tiny_config(world, tmp_path / "one", **common), tmp_path / "one.yaml")
    two = _write_config(tiny_config(world, tmp_path / "two", **common), tmp_path / "two.yaml")

    assert main(["train", "--config", str(one)]) == 0

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "paraclip.cli", "train", "--config", str(two)],
        env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]

    a, b = state_dict_of(tmp_path / "one" / "final.pt"), state_dict_of(tmp_path / "two" / "final.pt")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=2e-6, rtol=1e-5, msg=key)
    rows_a = [r for r in read_metrics(tmp_path / "one" / "metrics.jsonl") if "loss" in r]
    rows_b = [r for r in read_metrics(tmp_path / "two" / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in rows_b] == [1, 2, 3, 4]  # only rank 0 writes metrics
    for ra, rb in zip(rows_a, rows_b):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5)
