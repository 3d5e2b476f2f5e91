"""Choosing each main arm's learning rate and stopping step on the validation world, so the test
world is scored once.

The validation world is a set of scenes drawn from its own stream (split ``val``), disjoint in
meaning from the test scenes and from training, with its own paraphrase and swap sets
(``evalsets/val``). On the selection seed (the first training seed) every main arm (ParaCLIP and
the controls, ``arms.py``) is trained at every rate of ``lr_grid``, each run keeping the checkpoints
at ``candidate_steps`` (evenly spaced along its one cosine schedule). Every (rate, step) candidate
is scored on the validation world and the rule below picks one per arm; the other seeds train at
that rate and are scored at that step. Only the chosen checkpoints are evaluated on the test world.

The rule, written down before any result of protocol 3 was seen and the same for every arm:
maximise validation in-vocabulary AO@10 + canonical text→image R@1 (the paper's
paraphrase-robustness measure plus the retrieval it must not cost) on the selection seed; ties
(to 1e-9) go to fewer steps, then to the lower rate.
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
SELECTION_VERSION = 2  # protocol 3: every main arm, a learning-rate grid


def selection_score(metrics: dict[str, dict[str, float]]) -> float:
    """The rule's score from ``task -> metric -> value`` of one model."""
    return sum(metrics[task][metric] for task, metric in SELECTION_METRICS)


def choose(rows: list[dict]) -> dict:
    """The rule over one arm's candidate rows (``lr``, ``step``, ``score``): the best score; ties (to
    1e-9) to fewer steps, then the lower rate."""
    best = max(rows, key=lambda r: (round(r["score"], 9), -r["step"], -r["lr"]))
    return {"lr": best["lr"], "step": best["step"], "score": best["score"]}


def _validation_metrics(evaluators, checkpoint: str, seed: int) -> dict[str, dict[str, float]]:
    from paraclip.models import load_encoder

    encoder = load_encoder(checkpoint, device="cpu")
    # with the frozen tower's weights hashed in, one feature-cache entry per seed (see scoring.py)
    encoder.name, encoder.pretrained = f"miniworld-s{seed}", None
    return {ev.name: ev(encoder) for ev in evaluators}


def select_settings(run) -> dict:
    """Score the baseline and every (arm, rate, step) candidate of the selection seed on the validation
    world; choose a rate and a step per arm."""
    from paraclip.miniworld.arms import main_arm_checkpoint, main_arms, selection_seed

    cfg = run.config
    seed = selection_seed(cfg)
    evaluators, _ = build_tasks(run, split="val", only=SELECTION_TASKS)
    steps = candidate_steps(cfg.paraclip_steps, cfg.stop_candidates)
    arms = main_arms(cfg)
    total = 1 + len(arms) * len(cfg.lr_grid) * len(steps)
    baseline = _validation_metrics(evaluators, str(run.run_dir("baseline", seed) / "final.pt"), seed)
    rows: list[dict] = [{"arm": "baseline", "lr": None, "step": None, "metrics": baseline,
                         "score": selection_score(baseline)}]
    for arm in arms:
        for lr in cfg.lr_grid:
            for step in steps:
                run.progress.update(len(rows) / total, f"validation world: {arm.label}, lr {lr:g}, step {step}")
                metrics = _validation_metrics(evaluators, main_arm_checkpoint(run, arm, seed, lr, step), seed)
                rows.append({"arm": arm.name, "lr": lr, "step": step, "metrics": metrics,
                             "score": selection_score(metrics)})
    chosen = {arm.name: choose([r for r in rows if r["arm"] == arm.name]) for arm in arms}
    info = {"version": SELECTION_VERSION, "seed": seed,
            "rule": "max validation in-vocab AO@10 + canonical t2i R@1 on the selection seed; ties to fewer "
                    "steps, then the lower rate", "candidates": steps, "lr_grid": list(cfg.lr_grid),
            "chosen": chosen, "rows": rows}
    atomic_write_text(selection_file(run), json.dumps(info, indent=1))
    return {"chosen": chosen, "candidates": steps, "lr_grid": list(cfg.lr_grid), "seed": seed}


def selection_file(run) -> Path:
    return run.root / "selection" / "selection.json"


def read_selection(run) -> dict | None:
    path = selection_file(run)
    return read_run_json(path, redo=path.parent) if path.is_file() else None
