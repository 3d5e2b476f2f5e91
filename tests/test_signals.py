"""Ctrl-C (SIGINT) and SIGTERM end every command cleanly: status 130/143, one message or the usual summary,
finished work kept, never a traceback.

Each test runs ``python -m paraclip`` in a real subprocess. The signal is sent at an exact point chosen
by the test, never after a sleep: either the child sends it to itself when it reaches a named point
(``PARACLIP_TEST_SIGNAL_AT=POINT:INT|TERM``, see ``paraclip.commands.interrupts.signal_self_at``), or
code the test runs in the child (a stub backend, a wrapped training step) sends it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
EXIT = {"INT": 130, "TERM": 143}


def _run(argv, tmp_path, signal_at=None, code=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("PARACLIP_DEBUG", None)
    if signal_at:
        env["PARACLIP_TEST_SIGNAL_AT"] = signal_at
    head = [sys.executable, "-c", code] if code else [sys.executable, "-m", "paraclip"]
    return subprocess.run(head + argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def _sts_file(tmp_path, name="pairs.jsonl"):
    rows = [("a red circle", "a circle that is red", 4.8), ("two dogs", "a tree", 0.2),
            ("two dogs", "a pair of dogs", 4.5), ("a red circle", "a blue square", 0.5)]
    path = tmp_path / name
    path.write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "score": s}) + "\n" for a, b, s in rows))
    return path


def _no_traceback(proc):
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_a_signal_while_importing_the_commands_ends_with_one_line(tmp_path, sig):
    proc = _run(["sts", "--model", "paraclip-tiny", "--tasks", str(_sts_file(tmp_path))], tmp_path,
                signal_at=f"import:sts:{sig}")
    assert proc.returncode == EXIT[sig], proc.stderr[-3000:]
    _no_traceback(proc)
    what = "interrupted" if sig == "INT" else "terminated (SIGTERM)"
    assert proc.stderr == f"paraclip: {what}; finished work is kept, rerun the same command to resume.\n"


def test_a_signal_after_the_arguments_are_parsed_names_the_command(tmp_path):
    proc = _run(["sts", "--model", "paraclip-tiny", "--tasks", str(_sts_file(tmp_path))], tmp_path,
                signal_at="setup:TERM")
    assert proc.returncode == 143 and proc.stderr.startswith("paraclip sts: terminated (SIGTERM)")
    _no_traceback(proc)


_SWALLOWING_IMPORT = textwrap.dedent("""
    import importlib, os, signal, sys

    real_import = importlib.import_module

    def import_module(name, package=None):  # like a library that catches BaseException around an import
        try:
            if name == "paraclip.commands.sts":
                os.kill(os.getpid(), signal.SIGINT)
            return real_import(name, package)
        except KeyboardInterrupt:
            return real_import(name, package)

    importlib.import_module = import_module
    from paraclip.cli import main
    sys.exit(main())
""")


def test_a_ctrl_c_swallowed_during_an_import_still_ends_the_run(tmp_path):
    proc = _run(["sts", "--model", "paraclip-tiny", "--tasks", str(_sts_file(tmp_path))], tmp_path,
                code=_SWALLOWING_IMPORT)
    assert proc.returncode == 130 and "paraclip sts: interrupted" in proc.stderr, proc.stderr[-3000:]
    assert "spearman" not in proc.stdout  # the command did not run on as if nothing happened
    _no_traceback(proc)


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_evaluate_stops_after_the_current_result_and_keeps_the_finished_ones(tmp_path, sig):
    first, second = _sts_file(tmp_path, "first.jsonl"), _sts_file(tmp_path, "second.jsonl")
    out = tmp_path / "eval"
    proc = _run(["evaluate", "--models", "paraclip-tiny", "--tasks", f"{first},{second}", "--out", str(out),
                 "--device", "cpu", "--bootstrap", "10"], tmp_path, signal_at=f"evaluate:1:{sig}")
    assert proc.returncode == EXIT[sig], proc.stderr[-3000:]
    _no_traceback(proc)
    assert "stopped after 1 of 2 (model, task) results" in proc.stderr and "rerun the same command" in proc.stderr
    (kept,) = sorted(p for p in out.glob("*.json") if p.name != "manifest.json")
    assert json.loads(kept.read_text())["results"][0]["task"] == "first"
    assert not (out / "results.csv").exists()


_TERM_AT_THIRD_REQUEST = textwrap.dedent("""
    import os, signal, sys
    from paraclip.cli import main
    from paraclip.paraphrase.backends import BACKENDS
    from paraclip.paraphrase.backends.base import Backend, Completion

    class Terminating(Backend):  # answers, and on the third call the process gets SIGTERM (like `kill PID`)
        kind = model = "terminating"
        parallelism = 1

        def __init__(self, **options):
            self.calls = 0

        def generate(self, requests, should_stop=None):
            self.calls += 1
            if self.calls == 3:
                os.kill(os.getpid(), signal.SIGTERM)
            return [Completion(f"reworded sentence variant {self.calls}") for _ in requests]

    BACKENDS.register("terminating", "__main__:Terminating")
    sys.exit(main())
""")


def test_sigterm_stops_paraphrase_with_the_summary_and_status_143(tmp_path):
    (tmp_path / "c.txt").write_text("".join(f"caption number {i} here\n" for i in range(8)))
    out = tmp_path / "o.jsonl"
    proc = _run(["paraphrase", str(tmp_path / "c.txt"), "--out", str(out), "--backend", "terminating", "--no-cache"],
                tmp_path, code=_TERM_AT_THIRD_REQUEST)
    assert proc.returncode == 143, proc.stderr[-3000:]
    _no_traceback(proc)
    assert "SIGTERM: stopping" in proc.stderr
    assert "not complete: rerun the same command to resume." in proc.stdout and "records (0 from before" in proc.stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert 1 <= len(records) < 8 and all(r["status"] == "ok" for r in records)


_TERM_AFTER_STEP_TWO = textwrap.dedent("""
    import os, signal, sys
    from paraclip.cli import main
    from paraclip.training import trainer

    real_step = trainer.Trainer._train_step

    def train_step(self, step):
        losses = real_step(self, step)
        if step == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return losses

    trainer.Trainer._train_step = train_step
    sys.exit(main())
""")


def test_sigterm_stops_training_at_a_checkpoint_with_status_143(tmp_path):
    from tests.training.helpers import make_world, tiny_config

    world = make_world(tmp_path / "world")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(world, tmp_path / "out", steps=6).to_dict()))
    proc = _run(["train", "--config", str(config)], tmp_path, code=_TERM_AFTER_STEP_TWO)
    assert proc.returncode == 143, proc.stderr[-3000:]
    _no_traceback(proc)
    assert "stopped at step 2; rerun the same command to resume" in proc.stdout + proc.stderr
    assert proc.stderr.endswith("paraclip train: terminated (SIGTERM); finished work is kept, rerun the same "
                                "command to resume.\n")
    assert not (tmp_path / "out" / "final.pt").exists() and list((tmp_path / "out").rglob("*.pt"))
