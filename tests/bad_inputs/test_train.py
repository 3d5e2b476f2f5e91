"""Bad inputs to `paraclip train`: every config field out of its range (from YAML, with file:line, and
from flags), broken config files, devices, outputs, and a disk that fills up while checkpointing."""

from __future__ import annotations

import errno
import json
import re
from types import SimpleNamespace

import pytest
import yaml

from tests.bad_inputs.harness import Case, run_case
from tests.training.helpers import make_world, tiny_config


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-bad")
    world = make_world(root / "world", n=16)
    base = tiny_config(world, root / "run", steps=4, checkpoint_every=2).to_dict()
    (root / "a-file").write_text("not a folder\n")
    return SimpleNamespace(root=root, world=world, base=base)


def _yaml(w, name: str, **changes) -> str:
    """The workspace's good config with ``changes``, written to ``name``.yaml."""
    path = w.root / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**w.base, **changes}, sort_keys=False), encoding="utf-8")
    return str(path)


def _line_of(path: str, key: str) -> int:
    lines = open(path, encoding="utf-8").read().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(f"{key}:"))


def field_case(key: str, value, *words: str) -> Case:
    """A YAML config with one field out of range: the message names the file, the line and the field."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{key}-{value}")
    return Case(f"yaml-{name}", lambda w: ["train", "--config", _yaml(w, name, **{key: value})],
                names=lambda w: (f"{name}.yaml:{_line_of(str(w.root / f'{name}.yaml'), key)}", key, *words))


def flag_case(flag: str, value: str, *words: str) -> Case:
    return Case(f"flag{flag}={value}", lambda w: ["train", "--config", _yaml(w, "good"), flag, value],
                names=(flag, *words))


CASES = [
    field_case("grad_clip", -1, "> 0"),
    field_case("warmup", -5, ">= 0"),
    field_case("log_every", 0, ">= 1"),
    field_case("beta1", 1.5, "[0, 1)"),
    field_case("beta2", 1.0, "[0, 1)"),
    field_case("lr", float("nan"), "finite"),
    field_case("lr", -1e-5, "> 0"),
    field_case("weight_decay", -0.1, ">= 0"),
    field_case("checkpoint_every", -1, ">= 0"),
    field_case("keep_checkpoints", 0, ">= 1"),
    field_case("threads", 0, ">= 1"),
    field_case("max_records", 0, ">= 1"),
    field_case("batch_size", 1, ">= 2"),
    field_case("eps", 0, "> 0"),
    field_case("val_split", 1.0, "[0, 1)"),
    field_case("workers", -2, ">= 0"),
    field_case("feature_batch_size", 0, ">= 1"),
    field_case("image_memory_gb", float("inf"), "finite"),
    field_case("validation", ["stsbdev"], "stsb-dev"),
    field_case("loss_preset", "paraclipp", "Did you mean 'paraclip'"),
    field_case("precision", "fp16", "bf16"),
    field_case("logit_scale", "frozen", "learnable"),
    field_case("loss_weights", {"l1": -1}, ">= 0"),
    field_case("device", "gpu0", "cuda:N"),
    field_case("batch_size", "many", "must be an integer >= 2 (got 'many')"),
    flag_case("--grad-clip", "-1", "> 0"),
    flag_case("--steps", "0", ">= 1"),
    flag_case("--lr", "nan", "finite"),
    Case("flag--device=cuda:99", lambda w: ["train", "--config", _yaml(w, "good"), "--device", "cuda:99"],
         names=("device 'cuda:99'",)),  # checked against this machine after parsing, so named as the field
    Case("flag--loss-weights=l4", lambda w: ["train", "--config", _yaml(w, "good"), "--loss-weights", "l4=1"],
         names=("loss_weights", "'l4'", "l1, l2, l3")),
    flag_case("--freeze-image", "maybe", "true or false"),
    Case("min-lr-above-lr", lambda w: ["train", "--config", _yaml(w, "minlr", lr=1e-5, min_lr=1e-3)],
         names=("min_lr", "above lr")),
    Case("typo-key", lambda w: ["train", "--config", _yaml(w, "typo", lerning_rate=1e-3)],
         names=("lerning_rate", "typo.yaml:", "Did you mean 'lr'")),
    Case("not-utf8", lambda w: ["train", "--config", _latin1_yaml(w)], names=("latin1.yaml:3", "UTF-8")),
    Case("not-yaml", lambda w: ["train", "--config", _write(w, "broken.yaml", "lr: 1\nsteps: [1,\n")],
         names=("broken.yaml:", "not valid YAML")),
    Case("yaml-is-a-list", lambda w: ["train", "--config", _write(w, "list.yaml", "- lr\n- steps\n")],
         names=("list.yaml", "mapping")),
    Case("config-missing", lambda w: ["train", "--config", str(w.root / "nope.yaml")], names=("nope.yaml",)),
    Case("out-dir-is-a-file", lambda w: ["train", "--config", _yaml(w, "good"), "--out-dir", str(w.root / "a-file")],
         names=("out_dir", "a-file", "is a file")),
    Case("data-missing", lambda w: ["train", "--config", _yaml(w, "good"), "--data", str(w.root / "none.jsonl"),
                                    "--out-dir", str(w.root / "run-nodata")], names=("none.jsonl", "does not exist")),
]


def _write(w, name: str, text: str) -> str:
    (w.root / name).write_text(text, encoding="utf-8")
    return str(w.root / name)


def _latin1_yaml(w) -> str:
    (w.root / "latin1.yaml").write_bytes("model: paraclip-tiny\nsteps: 4\nout_dir: caf\xe9\n".encode("latin-1"))
    return str(w.root / "latin1.yaml")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_train(case, workspace, capsys):
    run_case(case, workspace, capsys)


def test_full_disk_while_checkpointing_keeps_the_last_checkpoint(workspace, capsys, monkeypatch):
    """The second checkpoint hits a full disk: exit 1 with a message; the first checkpoint is intact
    and the same command resumes from it and finishes. Repeated records get a one-line note."""
    from paraclip.training import checkpoint as ckpt_io

    data = workspace.root / "repeated.jsonl"
    lines = workspace.world["data"].read_text().splitlines()
    data.write_text("\n".join(lines + lines[:1]) + "\n")
    argv = ["train", "--config", _yaml(workspace, "full-disk", data=str(data), out_dir=str(workspace.root / "full"))]
    real_save, calls = ckpt_io.save_checkpoint, []

    def full_disk_on_second(path, *args, **fields):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path) + ".tmp")
        return real_save(path, *args, **fields)

    monkeypatch.setattr(ckpt_io, "save_checkpoint", full_disk_on_second)
    checkpoints = workspace.root / "full" / "checkpoints"

    def first_checkpoint_kept(w, outcome):
        assert [p.name for p in checkpoints.glob("step-*.pt")] == ["step-00000002.pt"]
        assert ckpt_io.load_checkpoint(checkpoints / "step-00000002.pt")["step"] == 2

    run_case(Case("disk-full-checkpoint", lambda w: argv, status=1, kept=first_checkpoint_kept,
                  names=("No space left on device", "step-00000002.pt", "resumes")), workspace, capsys)
    monkeypatch.setattr(ckpt_io, "save_checkpoint", real_save)

    def resumed_and_finished(w, outcome):
        assert (workspace.root / "full" / "final.pt").is_file()
        report = json.loads((workspace.root / "full" / "data_report.json").read_text())
        assert report["repeated"] == 1 and report["repeated_examples"] == [17]

    run_case(Case("disk-full-rerun", lambda w: argv, status=0, kept=resumed_and_finished,
                  names=("resuming from", "step 2", "note: 1 kept records repeat", "line 17")), workspace, capsys)
