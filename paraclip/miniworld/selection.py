"""Choosing the ParaCLIP stopping step on the validation world, so the test world is scored once.

The validation world is a set of scenes drawn from its own stream (split ``val``), disjoint in
meaning from the test scenes and from training, with its own paraphrase and swap sets
(``evalsets/val``). Each ParaCLIP run keeps the checkpoints at ``candidate_steps`` (evenly
spaced along its one cosine schedule); every candidate is scored on the validation world and
the rule below picks one step for all seeds (a setting, chosen once). Only the chosen
checkpoint is then evaluated on the test world.

The rule, fixed before any result was seen: maximise the seed mean of validation in-vocabulary
AO@10 + canonical text→image R@1 — the paper's paraphrase-robustness measure plus the retrieval
it must not cost (both in the target) — with ties going to fewer steps.
"""

from __future__ import annotations

import json
from pathlib import Path

from paraclip.files import atomic_write_text
from paraclip.miniworld.jsonl import read_run_json
from paraclip.miniworld.stages import candidate_steps
from paraclip.miniworld.tasks import TASK_NAMES, build_tasks

SELECTION_TASKS = ("in_vocab", "retrieval")
SELECTION_METRICS = ((TASK_NAMES["in_vocab"], "AO@10"), (TASK_NAMES["retrieval"], "t2i_R@1"))
SELECTION_VERSION = 1


def candidate_checkpoint(run, seed: int, step: int) -> Path:
    """The ParaCLIP checkpoint of ``seed`` at ``step`` (the final one at the last step)."""
    from paraclip.training.checkpoint import RunFiles

    files = RunFiles(run.run_dir("paraclip", seed))
    return files.final if step == run.config.paraclip_steps else files.step_path(step)


def selection_score(metrics: dict[str, dict[str, float]]) -> float:
    """The rule's score from ``task -> metric -> value`` of one model."""
    return sum(metrics[task][metric] for task, metric in SELECTION_METRICS)


def choose_step(rows: list[dict], steps: list[int]) -> tuple[int, dict[int, float]]:
    """The rule: the candidate step with the highest seed-mean score; ties (to 1e-9) go to fewer steps."""
    means = {}
    for step in steps:
        scores = [r["score"] for r in rows if r["step"] == step]
        means[step] = sum(scores) / len(scores)
    return max(steps, key=lambda s: (round(means[s], 9), -s)), means


def _validation_metrics(evaluators, checkpoint: str, seed: int) -> dict[str, dict[str, float]]:
    from paraclip.models import load_encoder

    encoder = load_encoder(checkpoint, device="cpu")
    # with the frozen tower's weights hashed in, one feature-cache entry per seed (see scoring.py)
    encoder.name, encoder.pretrained = f"miniworld-s{seed}", None
    return {ev.name: ev(encoder) for ev in evaluators}


def select_stopping_step(run) -> dict:
    """Score the baseline and every candidate step of every seed on the validation world; pick one step."""
    cfg = run.config
    evaluators, _ = build_tasks(run, split="val", only=SELECTION_TASKS)
    steps = candidate_steps(cfg.paraclip_steps, cfg.stop_candidates)
    total = len(cfg.seeds) * (len(steps) + 1)
    rows: list[dict] = []
    for seed in cfg.seeds:
        models = [("baseline", None, str(run.run_dir("baseline", seed) / "final.pt"))]
        models += [("ParaCLIP", step, str(candidate_checkpoint(run, seed, step))) for step in steps]
        for model, step, checkpoint in models:
            run.progress.update(len(rows) / total, f"validation world: seed {seed}, {model}"
                                + (f" at step {step}" if step else ""))
            metrics = _validation_metrics(evaluators, checkpoint, seed)
            rows.append({"seed": seed, "model": model, "step": step, "metrics": metrics,
                         "score": selection_score(metrics)})
    chosen, means = choose_step(rows, steps)
    info = {"version": SELECTION_VERSION, "rule": "max seed-mean validation in-vocab AO@10 + canonical t2i R@1; "
            "ties to fewer steps", "candidates": steps, "mean_score": {str(s): v for s, v in means.items()},
            "chosen_step": chosen, "rows": rows}
    atomic_write_text(selection_file(run), json.dumps(info, indent=1))
    return {"chosen_step": chosen, "candidates": steps, "mean_score": info["mean_score"]}


def selection_file(run) -> Path:
    return run.root / "selection" / "selection.json"


def read_selection(run) -> dict | None:
    path = selection_file(run)
    return read_run_json(path, redo=path.parent) if path.is_file() else None
