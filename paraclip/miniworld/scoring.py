"""The reproduction's scoring stages: choose on the validation world, score the test world once, report.

Stages (after training; each cached like the others)::

    select          the ParaCLIP stopping step, from its candidate checkpoints on the validation world
    evaluate-sN     baseline-sN vs ParaCLIP-sN (at the chosen step) on every test-world task and STS-B
    report          Markdown + CSV + plotly HTML over all seeds

(``abl-evaluate-sN``, the ablation arms on the test world, comes from ``ablations.py``.)
"""

from __future__ import annotations

from paraclip.miniworld.llm_source import LLM_LABELS
from paraclip.miniworld.report_text import write_report
from paraclip.miniworld.runner import Run, Stage
from paraclip.miniworld.selection import (
    SELECTION_VERSION, candidate_checkpoint, select_stopping_step, selection_file,
)
from paraclip.miniworld.stages import baseline_checkpoint
from paraclip.miniworld.tasks import EVALUATE_VERSION, evaluate_seed

REPORT_VERSION = 1  # bump when the report's content changes for the same results


def select_stage(run: Run) -> Stage:
    cfg = run.config
    return Stage("select", 0.4 * len(cfg.seeds) * cfg.n_val / 1000,
                 "choosing the ParaCLIP stopping step on the validation world",
                 lambda fp: {"v": SELECTION_VERSION, "evalsets": fp["evalsets"],
                             "runs": [fp[f"{kind}-s{s}"] for s in cfg.seeds for kind in ("baseline", "paraclip")]},
                 [selection_file(run).parent], lambda: select_stopping_step(run))


def chosen_checkpoint(run: Run, seed: int) -> str:
    """ParaCLIP of ``seed`` at the step the select stage chose (that stage must have run)."""
    return str(candidate_checkpoint(run, seed, run.infos["select"]["chosen_step"]))


def evaluated_models(run: Run, seed: int) -> dict[str, str]:
    """``label -> checkpoint`` of the seed's test-world evaluation: the baseline first, ParaCLIP at the
    chosen step, then every LLM-data variant trained for this seed."""
    models = {"baseline": baseline_checkpoint(run, seed), "ParaCLIP": chosen_checkpoint(run, seed)}
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
                 lambda: f"evaluating baseline vs ParaCLIP (step {run.infos['select']['chosen_step']}), seed {seed}",
                 lambda fp: {"v": EVALUATE_VERSION, "models": trained(fp), "select": fp["select"],
                             "evalsets": fp["evalsets"], "sts": cfg.sts, "n_boot": cfg.n_boot},
                 [run.results_dir(seed)], lambda: evaluate_seed(run, seed, evaluated_models(run, seed)))


def report_stage(run: Run) -> Stage:
    """The report reads every stage before it (results, selection, data, stage times): its fingerprint
    is theirs, so a rerun with nothing new keeps it (the time it was written is in its text only)."""
    cfg = run.config
    return Stage("report", 0.5 + 1.5 * cfg.ablations, "writing the report",
                 lambda fp: {"v": REPORT_VERSION, "stages": dict(fp), "n_boot": cfg.n_boot},
                 [run.report_dir], lambda: write_report(run, run.infos))
