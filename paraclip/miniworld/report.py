"""The reproduction's report: seed-averaged results, item- and seed-level intervals, the target check.

Differences are model − reference (ParaCLIP − baseline in the main tables), averaged over seeds.
Two intervals stand side by side (``stats.py``): a paired bootstrap over evaluation items with
the trained models held fixed, and a t-interval over seeds with the items held fixed. Each
criterion of the target is judged on the lower bound of its interval ("met"), or reported as
"met on the point estimate" when only the seed-mean difference passes. Figures are built with
the project's pure plot builders (``paraclip.plots``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paraclip.files import atomic_write_text
from paraclip.miniworld.jsonl import read_metrics_rows
from paraclip.miniworld.stats import holm, seed_mean_bootstrap, seed_t_interval
from paraclip.miniworld.tasks import TASK_NAMES

BASELINE, PARACLIP = "baseline", "ParaCLIP"
MET, POINT, NOT_MET = "met", "met on the point estimate", "not met"
NO_INTERVAL = "not judged (one seed: no seed interval)"
UNINFORMATIVE = "uninformative (every model at chance)"


@dataclass(frozen=True)
class Criterion:
    """One line of the target: the difference in ``metric`` on ``task`` must reach ``threshold``.

    ``gain`` criteria ask for at least ``threshold`` points, ``no-loss`` criteria for a drop of at
    most ``-threshold`` points; both are judged on the interval's lower bound."""

    label: str
    task: str
    metric: str
    threshold: float
    kind: str  # "gain" or "no-loss"

    def verdict(self, delta: float, low: float) -> str:
        if math.isnan(delta) or delta < self.threshold:
            return NOT_MET
        return MET if (not math.isnan(low) and low >= self.threshold) else POINT


# The target, as in the paper: AO@10 and JS@10 up by >= 5 points on the in-vocabulary pairs (mean of
# 3 seeds); swap accuracy not lower by > 2; canonical R@1 not lower by > 3.
TARGET = (
    Criterion("in-vocabulary AO@10 gain >= 5", TASK_NAMES["in_vocab"], "AO@10", 5.0, "gain"),
    Criterion("in-vocabulary JS@10 gain >= 5", TASK_NAMES["in_vocab"], "JS@10", 5.0, "gain"),
    Criterion("relation-swap accuracy drop <= 2", TASK_NAMES["relation"], "macro_accuracy", -2.0, "no-loss"),
    Criterion("attribute-swap accuracy drop <= 2", TASK_NAMES["attribute"], "macro_accuracy", -2.0, "no-loss"),
    Criterion("canonical R@1 drop <= 3", TASK_NAMES["retrieval"], "t2i_R@1", -3.0, "no-loss"),
)

# q_R@1 of the paraphrase tasks is left out: the query is the canonical caption, so it is t2i_R@1 of
# mw-retrieval again (counting it twice would inflate the Holm family)
HEADLINE_METRICS = {
    TASK_NAMES["in_vocab"]: ["AO@10", "JS@10", "p_R@1"],
    TASK_NAMES["heldout"]: ["AO@10", "JS@10", "p_R@1"],
    TASK_NAMES["canonical"]: ["AO@10", "JS@10", "p_R@1"],
    TASK_NAMES["oov"]: ["AO@10", "JS@10", "p_R@1"],
    TASK_NAMES["retrieval"]: ["t2i_R@1", "t2i_R@5", "i2t_R@1", "i2t_R@5"],
    TASK_NAMES["relation"]: ["macro_accuracy"],
    TASK_NAMES["attribute"]: ["macro_accuracy"],
    TASK_NAMES["sts"]: ["spearman"],
    TASK_NAMES["zs_shape"]: ["acc1"],
    TASK_NAMES["zs_colour"]: ["acc1"],
    TASK_NAMES["zs_count"]: ["acc1"],
}


def load_seed_results(results_dirs: dict[int, Path]) -> dict[int, dict[tuple[str, str], object]]:
    """seed -> (model label, task) -> EvalResult, from each seed's results folder."""
    from paraclip.results import read_result_folder

    out = {}
    for seed, folder in results_dirs.items():
        results, notes = read_result_folder(folder)
        for note in notes:  # a damaged file is left out and named, never used
            print(f"note: {note}", file=sys.stderr)
        out[seed] = {(res.model, res.task): res for res in results}
    return out


def aggregate(evaluators, by_seed: dict, reference: str = BASELINE, n_boot: int = 1000,
              metrics_of=None) -> tuple["object", "object"]:
    """(tidy per-seed results, seed-mean differences vs ``reference`` with both intervals) as DataFrames.

    ``metrics_of(task)``: which metrics to compare (all of the task's by default)."""
    import pandas as pd

    from paraclip.evaluation.suite import item_arrays

    rows = [{"seed": seed, "model": model, "task": task, "metric": metric, "value": value, "n": res.n}
            for seed, found in by_seed.items() for (model, task), res in found.items()
            for metric, value in res.metrics.items()]
    tidy = pd.DataFrame(rows, columns=["seed", "model", "task", "metric", "value", "n"])
    models = [m for m in dict.fromkeys(tidy["model"]) if m != reference] if not tidy.empty else []
    seeds = list(by_seed)
    delta_rows = []
    for ev in evaluators:
        ref = [by_seed[s].get((reference, ev.name)) for s in seeds]
        if any(r is None for r in ref):
            continue
        metrics = list(metrics_of(ev.name) if metrics_of else ref[0].metrics)
        metrics = [m for m in metrics if m in ref[0].metrics]
        for model in models:
            new = [by_seed[s].get((model, ev.name)) for s in seeds]
            pairs = [(r, p) for r, p in zip(ref, new) if p is not None]
            if not pairs or not metrics:
                continue
            ci = seed_mean_bootstrap(ev, [item_arrays(r) for r, _ in pairs], [item_arrays(p) for _, p in pairs],
                                     metrics, n_boot=n_boot, seed=0)
            for m in metrics:
                ref_vals = [r.metrics.get(m, np.nan) for r, _ in pairs]
                new_vals = [p.metrics.get(m, np.nan) for _, p in pairs]
                per_seed = [nv - rv for rv, nv in zip(ref_vals, new_vals)]
                seed_low, seed_high = seed_t_interval(per_seed)
                delta_rows.append({
                    "task": ev.name, "metric": m, "model": model, "baseline": reference, "seeds": len(pairs),
                    "baseline_mean": float(np.mean(ref_vals)), "baseline_sd": _sd(ref_vals),
                    "value_mean": float(np.mean(new_vals)), "value_sd": _sd(new_vals),
                    "delta": ci[m]["delta"], "ci_low": ci[m]["ci_low"], "ci_high": ci[m]["ci_high"],
                    "p_boot": ci[m]["p_boot"], "seed_ci_low": seed_low, "seed_ci_high": seed_high,
                    "significant": bool(ci[m]["ci_low"] > 0 or ci[m]["ci_high"] < 0),
                    "per_seed_delta": " ".join(f"{d:+.2f}" for d in per_seed), "n": ci[m]["n"],
                })
    return tidy, pd.DataFrame(delta_rows)


def mark_holm(deltas, family_of) -> None:
    """Add a ``holm`` column: the difference survives Holm's adjustment within its family
    (``family_of(row) -> hashable``, None = not part of any family)."""
    deltas["holm"] = False
    if deltas.empty:
        return
    families: dict = {}
    for idx, row in deltas.iterrows():
        key = family_of(row)
        if key is not None:
            families.setdefault(key, []).append(idx)
    for members in families.values():
        for idx, keep in zip(members, holm([float(deltas.at[i, "p_boot"]) for i in members])):
            deltas.at[idx, "holm"] = bool(keep)


def fmt(v, digits: int = 1) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def interval(low, high) -> str:
    if any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        return "–"
    return f"[{low:+.1f}, {high:+.1f}]"


def is_headline(row) -> bool:
    return row["metric"] in HEADLINE_METRICS.get(row["task"], [])


def _sd(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def target_table(deltas, model: str = PARACLIP, uninformative: set = frozenset()) -> list[dict]:
    """The target's criteria for ``model``; a criterion on an ``uninformative`` (task, metric) is
    reported as such and left out of the overall verdict."""
    rows = []
    for c in TARGET:
        if (c.task, c.metric) in uninformative:
            rows.append({"criterion": c.label, "delta": float("nan"), "ci_low": float("nan"),
                         "ci_high": float("nan"), "seed_ci_low": float("nan"), "seed_ci_high": float("nan"),
                         "verdict": UNINFORMATIVE, "verdict_seeds": UNINFORMATIVE, "passed": False,
                         "row": _only(deltas, model, c)})
            continue
        hit = deltas[(deltas["model"] == model) & (deltas["task"] == c.task) & (deltas["metric"] == c.metric)] \
            if not deltas.empty else deltas
        if hit.empty:
            rows.append({"criterion": c.label, "delta": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                         "seed_ci_low": float("nan"), "seed_ci_high": float("nan"), "verdict": NOT_MET,
                         "verdict_seeds": NOT_MET, "passed": False, "row": None})
            continue
        r = hit.iloc[0]
        verdict = c.verdict(float(r["delta"]), float(r["ci_low"]))
        rows.append({"criterion": c.label, "delta": float(r["delta"]), "ci_low": float(r["ci_low"]),
                     "ci_high": float(r["ci_high"]), "seed_ci_low": float(r["seed_ci_low"]),
                     "seed_ci_high": float(r["seed_ci_high"]), "verdict": verdict,
                     "verdict_seeds": NO_INTERVAL if math.isnan(float(r["seed_ci_low"]))
                     else c.verdict(float(r["delta"]), float(r["seed_ci_low"])),
                     "passed": verdict == MET, "row": r})
    return rows


def _only(deltas, model: str, c: Criterion):
    hit = deltas[(deltas["model"] == model) & (deltas["task"] == c.task) & (deltas["metric"] == c.metric)] \
        if not deltas.empty else deltas
    return None if hit.empty else hit.iloc[0]


def overall(targets: list[dict], key: str = "verdict") -> str:
    verdicts = [t[key] for t in targets if t[key] != UNINFORMATIVE]
    if any(v == NO_INTERVAL for v in verdicts):
        return NO_INTERVAL
    if all(v == MET for v in verdicts):
        return MET
    return POINT if all(v != NOT_MET for v in verdicts) else NOT_MET


# -- figures ---------------------------------------------------------------------------------------

def figures(tidy, deltas, run) -> list:
    import pandas as pd

    from paraclip import plots

    figs = []
    if not tidy.empty:
        mean = (tidy.groupby(["model", "task", "metric"], sort=False)["value"].mean().reset_index())
        headline = mean[mean.apply(lambda r: r["metric"] in HEADLINE_METRICS.get(r["task"], [])[:2], axis=1)]
        figs.append(plots.task_bars(headline, metrics=None,
                                    title=f"Mini-world: mean over {len(run.config.seeds)} seed(s)"))
        for key in ("in_vocab", "heldout", "oov"):
            part = mean[mean["task"] == TASK_NAMES[key]].assign(label=lambda d: d["model"])
            figs.append(plots.rank_similarity_curves(part, title=f"AO@k / JS@k, {TASK_NAMES[key]}"))
    if not deltas.empty:
        keep = deltas[deltas.apply(is_headline, axis=1)]
        figs.append(plots.delta_bars(keep, title="ParaCLIP − baseline, seed mean (95% paired bootstrap CI)"))
    from paraclip.miniworld.arms import PARACLIP as PARACLIP_ARM, run_kind

    seed = run.config.seeds[0]
    chosen = run.infos.get("select", {}).get("chosen", {}).get("paraclip", {})
    for kind in ("baseline", run_kind(run.config, PARACLIP_ARM, seed, chosen.get("lr"))):
        metrics_file = run.run_dir(kind, seed) / "metrics.jsonl"
        rows = read_metrics_rows(metrics_file) if metrics_file.is_file() else []
        if rows:
            log = pd.DataFrame(rows)
            losses = [c for c in log.columns if c.startswith("loss")]
            figs.append(plots.training_curves(log, metrics=losses, title=f"Training: {kind}, seed {seed}"))
    return figs


def write_html(figs, path: Path, title: str, plotlyjs: str = "inline") -> None:
    parts = [f"<html><head><meta charset='utf-8'><title>{title}</title></head><body>", f"<h1>{title}</h1>"]
    for i, fig in enumerate(figs):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=plotlyjs if i == 0 else False))
    parts.append("</body></html>")
    atomic_write_text(path, "\n".join(parts))
