"""The reproduction's scoring stages: choose on the validation world, score the test world once, report.

Stages (after training; each cached like the others)::

    select          each main arm's learning rate and stopping step, on the validation world (runs
                    after the selection seed's training: the other seeds train at the chosen rates)
    evaluate-sN     baseline-sN, ParaCLIP and the controls (at their chosen checkpoints) on every
                    test-world task, STS-B and zero-shot classification
    report          Markdown + CSV + plotly HTML over all seeds

(``abl-evaluate-sN``, the ablation arms on the test world, comes from ``ablations.py``.)
"""

from __future__ import annotations

from paraclip.miniworld.llm_source import LLM_LABELS
from paraclip.miniworld.report_text import write_report
from paraclip.miniworld.runner import Run, Stage
from paraclip.miniworld.arms import Arm, main_arm_checkpoint, main_arms, run_kind, selection_seed
from paraclip.miniworld.selection import SELECTION_VERSION, select_settings, selection_file
from paraclip.miniworld.stages import baseline_checkpoint
from paraclip.miniworld.tasks import EVALUATE_VERSION, evaluate_seed

REPORT_VERSION = 1  # bump when the report's content changes for the same results


def select_stage(run: Run) -> Stage:
    cfg = run.config
    seed = selection_seed(cfg)
    grid = [f"{run_kind(cfg, arm, seed, lr)}-s{seed}" for arm in main_arms(cfg) for lr in cfg.lr_grid]
    return Stage("select", 0.15 * len(grid) * cfg.stop_candidates * cfg.n_val / 1000,
                 "choosing each arm's learning rate and stopping step on the validation world",
                 lambda fp: {"v": SELECTION_VERSION, "evalsets": fp["evalsets"],
                             "runs": [fp[f"baseline-s{seed}"]] + [fp[name] for name in grid]},
                 [selection_file(run).parent], lambda: select_settings(run))


def chosen_checkpoint(run: Run, arm: Arm, seed: int) -> str:
    """``arm`` of ``seed`` at the rate and step the select stage chose (that stage must have run)."""
    chosen = run.infos["select"]["chosen"][arm.name]
    return main_arm_checkpoint(run, arm, seed, chosen["lr"], chosen["step"])


def evaluated_models(run: Run, seed: int) -> dict[str, str]:
    """``label -> checkpoint`` of the seed's test-world evaluation: the baseline first, each main arm at
    its chosen checkpoint, then every LLM-data variant trained for this seed."""
    models = {"baseline": baseline_checkpoint(run, seed)}
    models.update({arm.label: chosen_checkpoint(run, arm, seed) for arm in main_arms(run.config)})
    for kind, label in LLM_LABELS.items():
        info = run.infos.get(f"{kind}-s{seed}")
        if info is not None:
            models[label] = info["checkpoint"]
    return models


def evaluate_stage(run: Run, seed: int) -> Stage:
    cfg = run.config

    def trained(fp) -> list[str]:  # the seed's training stages that ran (a skipped LLM variant has none)
        return [fp[k] for k in fp if k.endswith(f"-s{seed}") and not k.startswith(("abl-", "evaluate-"))]

    return Stage(f"evaluate-s{seed}", 0.8,
                 f"evaluating the baseline, ParaCLIP and the controls on the test world, seed {seed}",
                 lambda fp: {"v": EVALUATE_VERSION, "models": trained(fp), "select": fp["select"],
                             "evalsets": fp["evalsets"], "sts": cfg.sts, "n_boot": cfg.n_boot},
                 [run.results_dir(seed)], lambda: _evaluate(run, seed))


def _evaluate(run: Run, seed: int) -> dict:
    first = note_test_world_scoring(run)
    return {**evaluate_seed(run, seed, evaluated_models(run, seed)), "test_world_first_scored": first}


def note_test_world_scoring(run: Run) -> str:
    """When this run folder's test world was first scored (UTC, ISO 8601): recorded by the first
    evaluation of that world and never rewritten while the world stays the same."""
    import json
    import time

    from paraclip.files import atomic_write_text
    from paraclip.miniworld.stages import STREAMS, WORLD_VERSION

    cfg = run.config
    world = {"stream": STREAMS["eval"], "world_seed": cfg.world_seed, "n_eval": cfg.n_eval,
             "world_version": WORLD_VERSION}
    path = run.test_world_scored
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
        if known.get("world") == world and isinstance(known.get("first_scored"), str):
            return known["first_scored"]
    except (OSError, ValueError):
        pass  # absent or unreadable: this is the first scoring we can vouch for
    first = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    atomic_write_text(path, json.dumps({"world": world, "first_scored": first}, indent=1))
    return first



def report_stage(run: Run) -> Stage:
    """The report reads every stage before it (results, selection, data, stage times): its fingerprint
    is theirs, so a rerun with nothing new keeps it (the time it was written is in its text only)."""
    cfg = run.config
    return Stage("report", 0.5 + 1.5 * cfg.ablations, "writing the report",
                 lambda fp: {"v": REPORT_VERSION, "stages": dict(fp), "n_boot": cfg.n_boot},
                 [run.report_dir], lambda: write_report(run, run.infos))
