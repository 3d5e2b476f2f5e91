"""Run folder layout, atomic checkpoints, RNG state, and the final open_clip-format checkpoint.

A run folder (``out_dir``) holds::

    checkpoints/step-00000500.pt   resumable: model, optimiser, step, RNG, data position, config
    final.pt                       open_clip format: {"state_dict", "arch", "paraclip": {...}}
    metrics.jsonl                  one JSON object per line (train rows and val_* rows)
    run.json                       status for watchers: step, total_steps, state, checkpoint
    config.yaml                    the resolved config
    data_report.json               records kept / skipped and why

Checkpoints are written by :func:`paraclip.models.checkpoint.save_checkpoint` (also the
resumable ones: model weights under ``state_dict`` and ``arch``, the rest as extra keys).
Every file is written to a temporary name and renamed, so a crash (even ``kill -9``) leaves
either the old or the new file, never a half-written one. ``final.pt`` loads with
``open_clip.create_model_and_transforms(arch, pretrained="final.pt")`` (open_clip reads the
``state_dict`` key) and with ``paraclip.models.load_encoder("final.pt")`` (which reads ``arch``).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paraclip.errors import DataError, ParaclipError
from paraclip.files import DamagedCacheWarning, atomic_write_text, parse_json
from paraclip.models.checkpoint import checkpoint_dict
from paraclip.models.checkpoint import save_checkpoint as save_checkpoint  # the trainer writes through here

TRAIN_CHECKPOINT_FORMAT = "paraclip.train-checkpoint/1"
FINAL_CHECKPOINT_FORMAT = "paraclip.checkpoint/1"


class RunFiles:
    def __init__(self, out_dir: str | os.PathLike):
        self.root = Path(out_dir).expanduser()
        self.checkpoints = self.root / "checkpoints"
        self.final = self.root / "final.pt"
        self.metrics = self.root / "metrics.jsonl"
        self.status = self.root / "run.json"
        self.config = self.root / "config.yaml"
        self.data_report = self.root / "data_report.json"

    def step_path(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:08d}.pt"

    def step_checkpoints(self) -> list[Path]:
        """Step checkpoints, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        return sorted(self.checkpoints.glob("step-*.pt"))

    def has_run(self) -> bool:
        return bool(self.step_checkpoints()) or self.final.exists() or self.metrics.exists()

    def move_aside(self) -> Path | None:
        """Move an earlier run's files into ``previous-<time>/`` (resume: false never deletes work)."""
        names = [p for p in (self.checkpoints, self.final, self.metrics, self.status, self.config, self.data_report)
                 if p.exists()]
        if not names:
            return None
        dest = self.root / f"previous-{time.strftime('%Y%m%d-%H%M%S')}"
        dest.mkdir(parents=True, exist_ok=False)
        for p in names:
            os.replace(p, dest / p.name)
        return dest

    def write_status(self, **fields: Any) -> None:
        atomic_write_text(self.status, json.dumps({**fields, "updated": time.time()}, indent=1, default=str))


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def latest_checkpoint(files: RunFiles) -> tuple[Path, dict] | None:
    """The newest step checkpoint that loads (a corrupt one, e.g. from a full disk, is skipped with a note)."""
    for path in reversed(files.step_checkpoints()):
        try:
            ckpt = load_checkpoint(path)
        except Exception as exc:  # noqa: BLE001 - try the previous one
            ckpt, why = None, f"{type(exc).__name__}: {str(exc)[:200]}"
        else:
            why = "not a training checkpoint"
        if isinstance(ckpt, dict) and ckpt.get("format") == TRAIN_CHECKPOINT_FORMAT:
            return path, ckpt
        warnings.warn(f"{path}: damaged checkpoint ({why}); resuming from the one before it, if any.",
                      DamagedCacheWarning, stacklevel=2)
    return None


def _checkpoint_step(path: Path) -> int:
    return int(path.stem.split("-")[-1])


def prune_checkpoints(files: RunFiles, keep: int, every: int | None = None) -> None:
    """Keep the newest checkpoint (resume point) and the newest ``keep`` ones on the schedule
    (``step % every == 0``). Checkpoints written off the schedule (on Stop, Ctrl-C, SIGTERM) go first,
    so stopping and resuming a run never costs it a scheduled checkpoint that later stages (e.g. the
    mini-world's choice of stopping step) read."""
    paths = files.step_checkpoints()
    if not paths:
        return
    newest = paths[-1]
    scheduled = [p for p in paths if _checkpoint_step(p) % every == 0] if every else list(paths)
    kept = set(scheduled[-keep:] if keep > 0 else []) | {newest}
    for old in paths:
        if old not in kept:
            old.unlink(missing_ok=True)
    for tmp in files.checkpoints.glob(".step-*.tmp"):
        if time.time() - tmp.stat().st_mtime > 3600:  # left by a killed writer
            tmp.unlink(missing_ok=True)


# -- RNG -------------------------------------------------------------------------------------

def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


# -- metrics file ----------------------------------------------------------------------------

def truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after ``step`` (they will be logged again by the resumed run), and damaged rows.

    The file is ours, so a row that is not a JSON object with a whole-number ``step`` (a line cut by
    kill -9, garbage from a bad disk, a step of ``1e400``) is dropped with a note, never trusted and
    never a traceback."""
    if not path.exists():
        return
    kept, damaged = [], []
    for number, raw in enumerate(path.read_bytes().splitlines(), 1):
        row_step = _metrics_row_step(raw, f"{path}:{number}")
        if row_step is None:
            if raw.strip():
                damaged.append(number)
        elif row_step <= step:
            kept.append(raw.decode("utf-8"))
    if damaged:
        lines = ", ".join(map(str, damaged[:5])) + (" …" if len(damaged) > 5 else "")
        warnings.warn(f"{path}: {len(damaged)} damaged metrics rows dropped (lines {lines}); the resumed run "
                      f"logs from step {step + 1} on.", DamagedCacheWarning, stacklevel=2)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))


def _metrics_row_step(raw: bytes, where: str) -> int | None:
    """The ``step`` of one metrics row, or None when the row is damaged."""
    try:
        row = parse_json(raw.decode("utf-8"), where)
    except (DataError, UnicodeDecodeError):
        return None
    value = row.get("step", 0) if isinstance(row, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value):
        return None
    return int(value)


def final_fields(meta: dict) -> dict:
    """The keys ``final.pt`` holds besides ``state_dict`` and ``arch``."""
    return {"name": meta.get("run_name", "paraclip"), "epoch": meta.get("epoch", 0),
            "paraclip": {"format": FINAL_CHECKPOINT_FORMAT, **meta}}


def final_checkpoint(state_dict: dict, arch: str, meta: dict) -> dict:
    """The open_clip-format dict written as ``final.pt``."""
    return checkpoint_dict(state_dict, arch, **final_fields(meta))


# -- resuming --------------------------------------------------------------------------------

def kept_work(files: RunFiles) -> str:
    """What a rerun resumes from (for error messages)."""
    found = latest_checkpoint(files)
    if found is None:
        return "No checkpoint had been written yet, so a rerun starts from the beginning."
    path, state = found
    return f"Finished work is kept: a rerun resumes from {path} (step {state['step']})."


def check_compatible(files: RunFiles, state: dict, path: Path, config) -> None:
    """Refuse to resume a checkpoint whose settings differ in a way that changes the result."""
    from paraclip.training.config import changed_fields

    changed = changed_fields(state["config"], config)
    if changed:
        detail = "; ".join(f"{k}: {old!r} in the checkpoint, {new!r} now" for k, (old, new) in changed.items())
        arch_hint = (f" The checkpoint is of architecture {state.get('arch')!r}." if "model" in changed else "")
        raise ParaclipError(
            f"{files.root} holds a run with different settings ({detail}).{arch_hint} "
            f"Resuming would not reproduce either run: use another out_dir, or set resume: false to start over "
            f"(the old run is moved aside, not deleted). Checkpoint: {path}.")
