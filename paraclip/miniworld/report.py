"""The reproduction's report: seed-averaged results, paired bootstrap CIs, the target check.

Differences are ParaCLIP − baseline, averaged over seeds. Their 95 % CI is a paired bootstrap
over evaluation items (Efron & Tibshirani, 1993): each replicate resamples the items once and
applies the same resample to every seed's baseline and ParaCLIP scores, so the interval covers
item-sampling noise of the seed-mean difference; the spread over seeds is shown next to it.
Figures are built with the project's pure plot builders (``paraclip.plots``).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from paraclip.miniworld.tasks import TASK_NAMES
from paraclip.results import atomic_write_text

BASELINE, PARACLIP = "baseline", "ParaCLIP"


@dataclass(frozen=True)
class Criterion:
    """One line of the issue's target: delta of ``metric`` on ``task`` compared with ``threshold``."""

    label: str
    task: str
    metric: str
    threshold: float
    kind: str  # "gain": delta >= threshold and CI excludes 0; "no-loss": delta >= threshold

    def passed(self, delta: float, ci_low: float) -> bool:
        if math.isnan(delta):
            return False
        if self.kind == "gain":
            return delta >= self.threshold and ci_low > 0
        return delta >= self.threshold


# The target, as in the paper: AO@10 and JS@10 up by >= 5 points on the in-vocabulary
# pairs (mean of 3 seeds, CI excluding 0); swap accuracy not lower by > 2; canonical R@1 not
# lower by > 3.
TARGET = (
    Criterion("in-vocabulary AO@10 gain >= 5 (CI > 0)", TASK_NAMES["in_vocab"], "AO@10", 5.0, "gain"),
    Criterion("in-vocabulary JS@10 gain >= 5 (CI > 0)", TASK_NAMES["in_vocab"], "JS@10", 5.0, "gain"),
    Criterion("relation-swap accuracy drop <= 2", TASK_NAMES["relation"], "macro_accuracy", -2.0, "no-loss"),
    Criterion("attribute-swap accuracy drop <= 2", TASK_NAMES["attribute"], "macro_accuracy", -2.0, "no-loss"),
    Criterion("canonical R@1 drop <= 3", TASK_NAMES["retrieval"], "t2i_R@1", -3.0, "no-loss"),
)

HEADLINE_METRICS = {
    TASK_NAMES["in_vocab"]: ["AO@10", "JS@10", "q_R@1", "p_R@1"],
    TASK_NAMES["oov"]: ["AO@10", "JS@10", "q_R@1", "p_R@1"],
    TASK_NAMES["retrieval"]: ["t2i_R@1", "t2i_R@5", "i2t_R@1", "i2t_R@5"],
    TASK_NAMES["relation"]: ["macro_accuracy", "accuracy"],
    TASK_NAMES["attribute"]: ["macro_accuracy", "accuracy"],
    TASK_NAMES["sts"]: ["spearman"],
}


def seed_mean_bootstrap(evaluator, baseline_items: Sequence[dict], new_items: Sequence[dict],
                        metrics: Sequence[str], n_boot: int = 1000, seed: int = 0,
                        confidence: float = 0.95) -> dict[str, dict[str, float]]:
    """Paired bootstrap CI of mean over seeds of ``metric(new) - metric(baseline)`` (see module doc)."""
    n = len(next(iter(baseline_items[0].values())))
    for items in list(baseline_items) + list(new_items):
        if len(next(iter(items.values()))) != n:
            raise ValueError("every seed and model must be scored on the same items")

    def delta(index):
        diffs = []
        for b, p in zip(baseline_items, new_items):
            mb, mp = evaluator.metrics(b, index), evaluator.metrics(p, index)
            diffs.append([mp.get(m, np.nan) - mb.get(m, np.nan) for m in metrics])
        return np.nanmean(np.array(diffs, dtype=float), axis=0)

    observed = delta(None)
    rng = np.random.default_rng(seed)
    draws = np.array([delta(rng.integers(0, n, size=n)) for _ in range(n_boot)])
    alpha = (1 - confidence) / 2
    out = {}
    for j, m in enumerate(metrics):
        col = draws[:, j][~np.isnan(draws[:, j])]
        low, high = np.quantile(col, [alpha, 1 - alpha]) if col.size else (np.nan, np.nan)
        out[m] = {"delta": float(observed[j]), "ci_low": float(low), "ci_high": float(high), "n": n}
    return out


def _load_seed_results(run) -> dict[int, dict[tuple[str, str], object]]:
    """seed -> (model label, task) -> EvalResult."""
    from paraclip.results import load_results

    out = {}
    for seed in run.config.seeds:
        found = {}
        for path in sorted(run.results_dir(seed).glob("*__*.json")):
            for res in load_results(path):
                found[(res.model, res.task)] = res
        out[seed] = found
    return out


def aggregate(run, evaluators) -> tuple["object", "object"]:
    """(tidy per-seed results, seed-mean deltas with CIs) as DataFrames."""
    import pandas as pd

    from paraclip.evaluation.suite import item_arrays

    by_seed = _load_seed_results(run)
    rows = []
    for seed, found in by_seed.items():
        for (model, task), res in found.items():
            for metric, value in res.metrics.items():
                rows.append({"seed": seed, "model": model, "task": task, "metric": metric, "value": value,
                             "n": res.n})
    tidy = pd.DataFrame(rows, columns=["seed", "model", "task", "metric", "value", "n"])
    models = [m for m in dict.fromkeys(tidy["model"]) if m != BASELINE] if not tidy.empty else []
    delta_rows = []
    for ev in evaluators:
        base = [by_seed[s].get((BASELINE, ev.name)) for s in run.config.seeds]
        if any(r is None for r in base):
            continue
        metrics = list(base[0].metrics)
        for model in models:
            new = [by_seed[s].get((model, ev.name)) for s in run.config.seeds]
            pairs = [(b, p) for b, p in zip(base, new) if p is not None]
            if not pairs:
                continue
            ci = seed_mean_bootstrap(ev, [item_arrays(b) for b, _ in pairs], [item_arrays(p) for _, p in pairs],
                                     metrics, n_boot=run.config.n_boot, seed=0)
            for m in metrics:
                base_vals = [b.metrics.get(m, np.nan) for b, _ in pairs]
                new_vals = [p.metrics.get(m, np.nan) for _, p in pairs]
                per_seed = [nv - bv for bv, nv in zip(base_vals, new_vals)]
                delta_rows.append({
                    "task": ev.name, "metric": m, "model": model, "seeds": len(pairs),
                    "baseline_mean": float(np.mean(base_vals)), "baseline_sd": _sd(base_vals),
                    "value_mean": float(np.mean(new_vals)), "value_sd": _sd(new_vals),
                    "delta": ci[m]["delta"], "ci_low": ci[m]["ci_low"], "ci_high": ci[m]["ci_high"],
                    "significant": bool(ci[m]["ci_low"] > 0 or ci[m]["ci_high"] < 0),
                    "per_seed_delta": " ".join(f"{d:+.2f}" for d in per_seed), "n": ci[m]["n"],
                    "baseline": BASELINE,
                })
    deltas = pd.DataFrame(delta_rows)
    return tidy, deltas


def _sd(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def target_table(deltas) -> list[dict]:
    rows = []
    for c in TARGET:
        hit = deltas[(deltas["model"] == PARACLIP) & (deltas["task"] == c.task) & (deltas["metric"] == c.metric)] \
            if not deltas.empty else deltas
        if hit.empty:
            rows.append({"criterion": c.label, "delta": float("nan"), "ci_low": float("nan"),
                         "ci_high": float("nan"), "passed": False, "row": None})
            continue
        r = hit.iloc[0]
        rows.append({"criterion": c.label, "delta": float(r["delta"]), "ci_low": float(r["ci_low"]),
                     "ci_high": float(r["ci_high"]), "passed": bool(c.passed(r["delta"], r["ci_low"])), "row": r})
    return rows


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
        for key in ("in_vocab", "oov"):
            part = mean[mean["task"] == TASK_NAMES[key]].assign(label=lambda d: d["model"])
            figs.append(plots.rank_similarity_curves(part, title=f"AO@k / JS@k, {TASK_NAMES[key]}"))
    if not deltas.empty:
        keep = deltas[deltas.apply(lambda r: r["metric"] in HEADLINE_METRICS.get(r["task"], []), axis=1)]
        figs.append(plots.delta_bars(keep, title="ParaCLIP − baseline, seed mean (95% paired bootstrap CI)"))
    seed = run.config.seeds[0]
    for kind in ("baseline", "paraclip"):
        metrics_file = run.run_dir(kind, seed) / "metrics.jsonl"
        if metrics_file.is_file():
            log = pd.read_json(metrics_file, lines=True)
            losses = [c for c in log.columns if c.startswith("loss")]
            figs.append(plots.training_curves(log, metrics=losses, title=f"Training: {kind}, seed {seed}"))
    return figs


def write_html(figs, path: Path, title: str, plotlyjs: str = "inline") -> None:
    parts = [f"<html><head><meta charset='utf-8'><title>{title}</title></head><body>", f"<h1>{title}</h1>"]
    for i, fig in enumerate(figs):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=plotlyjs if i == 0 else False))
    parts.append("</body></html>")
    atomic_write_text(path, "\n".join(parts))


# -- markdown --------------------------------------------------------------------------------------

def _fmt(v, digits: int = 1) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, torch "
            f"{torch.__version__} with {torch.get_num_threads()} threads; load average at report time "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min)")


def write_report(run, stages: dict) -> dict:
    """Write report.md, results.csv, deltas.csv and figures.html into the run's report folder."""
    from paraclip.miniworld.tasks import build_tasks

    out = run.report_dir
    out.mkdir(parents=True, exist_ok=True)
    evaluators, notes = build_tasks(run)
    tidy, deltas = aggregate(run, evaluators)
    tidy.to_csv(out / "results.csv", index=False)
    deltas.to_csv(out / "deltas.csv", index=False)
    figs = figures(tidy, deltas, run)
    write_html(figs, out / "figures.html", "ParaCLIP mini-world reproduction")
    write_html(figs, out / "figures-cdn.html", "ParaCLIP mini-world reproduction", plotlyjs="cdn")
    targets = target_table(deltas)
    text = markdown(run, stages, tidy, deltas, targets, notes)
    atomic_write_text(out / "report.md", text)
    passed = bool(all(t["passed"] for t in targets))
    return {"target_reached": passed, "criteria": [{k: v for k, v in t.items() if k != "row"} for t in targets]}


def markdown(run, stages: dict, tidy, deltas, targets: list[dict], notes: list[str]) -> str:
    from paraclip.miniworld.pipeline import read_jsonl

    cfg = run.config
    seeds = cfg.seeds
    lines = ["# ParaCLIP on the mini-world: reproduction report", ""]
    reached = all(t["passed"] for t in targets)
    lines += [
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} by `paraclip miniworld --reproduce` "
        f"(run folder `{run.root}`).", "",
        "## Result", "",
        ("**The target effect was reached**: " if reached else "**The target effect was NOT reached**: ")
        + ", ".join(f"{t['criterion']} — {'met' if t['passed'] else 'not met'}" for t in targets) + ".", "",
        f"Differences are ParaCLIP − baseline in points, averaged over {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); "
        "each seed trains its own baseline CLIP from scratch and fine-tunes it. 95 % CIs: paired bootstrap over "
        f"evaluation items ({cfg.n_boot} resamples), the same resample applied to every seed.", "",
        "| criterion | baseline | ParaCLIP | Δ | 95 % CI | per seed | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in targets:
        r = t["row"]
        if r is None:
            lines.append(f"| {t['criterion']} | – | – | – | – | – | no (not evaluated) |")
            continue
        lines.append(f"| {t['criterion']} | {_fmt(r['baseline_mean'])} | {_fmt(r['value_mean'])} | "
                     f"{r['delta']:+.1f} | [{r['ci_low']:+.1f}, {r['ci_high']:+.1f}] | {r['per_seed_delta']} | "
                     f"{'yes' if t['passed'] else 'no'} |")
    lines += ["", "## All metrics (mean ± sd over seeds)", "",
              "| task | metric | baseline | ParaCLIP | Δ | 95 % CI | n |", "|---|---|---|---|---|---|---|"]
    if not deltas.empty:
        for task, metrics in HEADLINE_METRICS.items():
            for m in metrics:
                hit = deltas[(deltas["task"] == task) & (deltas["metric"] == m) & (deltas["model"] == PARACLIP)]
                if hit.empty:
                    continue
                r = hit.iloc[0]
                sig = " *" if r["significant"] else ""
                lines.append(f"| {task} | {m} | {_fmt(r['baseline_mean'])} ± {_fmt(r['baseline_sd'])} | "
                             f"{_fmt(r['value_mean'])} ± {_fmt(r['value_sd'])} | {r['delta']:+.1f}{sig} | "
                             f"[{r['ci_low']:+.1f}, {r['ci_high']:+.1f}] | {r['n']} |")
        others = deltas[deltas["model"] != PARACLIP]
        if not others.empty:
            lines += ["", "### Other models (the LLM paraphrase source)", "",
                      "| model | task | metric | value | Δ vs baseline | 95 % CI |", "|---|---|---|---|---|---|"]
            for _, r in others.iterrows():
                if r["metric"] in HEADLINE_METRICS.get(r["task"], [])[:2]:
                    lines.append(f"| {r['model']} | {r['task']} | {r['metric']} | {_fmt(r['value_mean'])} | "
                                 f"{r['delta']:+.1f} | [{r['ci_low']:+.1f}, {r['ci_high']:+.1f}] |")
    lines += ["", "`*`: the CI excludes 0. AO/JS/R are percentages; swap accuracy is ARO's rule (true caption "
              "scores strictly higher) macro-averaged over relations / swapped attributes; STS-B is Spearman × 100.",
              "", "How to read this:", "",
              "- The baseline is trained on canonical captions only, so the in-vocabulary paraphrases' words are new "
              "to it; ParaCLIP's training paraphrases contain them. Two random top-10 lists of 1,000 images "
              "overlap by about 0.5 % (AO@10 and JS@10 both), the floor of these numbers.",
              "- No training text contains the out-of-vocabulary words (checked), so neither model can read them; "
              "what remains of the OOV paraphrase (the in-vocabulary slots) is what either model can use.",
              "- Canonical R@1 uses the captions the baseline was trained on; ParaCLIP's objective never contrasts "
              "a caption with its image directly (only paraphrase 2 is), which is where a loss can come from. "
              "`TUNING.md` (next to the committed copy of this report) records the settings tried and what moved it.",
              ""]
    lines += _data_section(run, read_jsonl)
    lines += _setup_section(run, stages)
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    llm = stages.get("llm")
    if llm:
        from paraclip.miniworld.llm_source import llm_report_lines

        lines += llm_report_lines(run, stages)
    lines += ["## Files", "", "- `results.csv`: every (seed, model, task, metric) value",
              "- `deltas.csv`: seed-mean differences with CIs", "- `figures.html`: interactive plotly figures, "
              "plotly inlined so they open offline (in the run folder only); `figures-cdn.html`: the same, "
              "loading plotly from its CDN", ""]
    return "\n".join(lines)


def _data_section(run, read_jsonl) -> list[str]:
    sets = run.evalsets
    summary = json.loads((sets / "summary.json").read_text())
    para = read_jsonl(run.paraphrases)
    in_vocab = read_jsonl(sets / "pairs-in-vocab.jsonl")
    oov = read_jsonl(sets / "pairs-oov.jsonl")
    rel = read_jsonl(sets / "swaps-relation.jsonl")
    att = read_jsonl(sets / "swaps-attribute.jsonl")
    leak = summary["oov_words_in_training_text"]
    lines = [
        "## Data", "",
        f"- World: {run.config.n_train} training scenes, {run.config.n_eval} held-out scenes "
        f"({run.config.image_size} px; no held-out scene's meaning occurs in training).",
        f"- Training paraphrases: the scene-aware two-step rewriter ({len(para)} records; "
        f"{sum(r['status'] != 'ok' for r in para)} rejected by the scene-spec checker). "
        f"Training vocabulary: {summary['training_vocabulary']} words.",
        f"- Paraphrase pairs: {summary['in_vocab_pairs']} in-vocabulary (dropped: {summary['in_vocab_dropped'] or 'none'}), "
        f"{summary['oov_pairs']} out-of-vocabulary (dropped: {summary['oov_dropped'] or 'none'}).",
        f"- OOV words ({len(summary['oov_words'])}) found in training text: "
        f"{', '.join(leak) if leak else 'none (checked)'}.",
        f"- Swap pairs: {len(rel)} relation swaps, {len(att)} attribute swaps.", "",
        "Examples (training: caption → paraphrase 1 → paraphrase 2):", "",
    ]
    for r in para[:3]:
        lines.append(f"- {r['caption']} → {r['paraphrase_1']} → {r['paraphrase_2']}")
    lines += ["", "Examples (held-out pairs: query → in-vocabulary paraphrase / OOV paraphrase):", ""]
    oov_by_id = {r["image_id"]: r for r in oov}
    for r in in_vocab[:3]:
        o = oov_by_id.get(r["image_id"])
        lines.append(f"- {r['original']} → {r['paraphrase']}" + (f" / {o['paraphrase']}" if o else ""))
    lines += ["", "Examples (swaps: true / false):", ""]
    for r in (rel[:1] + att[:2]):
        lines.append(f"- {r['true_caption']} / {r['false_caption']} ({r['group']})")
    lines.append("")
    return lines


def _setup_section(run, stages: dict) -> list[str]:
    cfg = run.config
    total = sum(float(s.get("seconds", 0)) for s in stages.values())
    lines = [
        "## Setup", "",
        f"- Model: open_clip `{cfg.arch}` (project config `paraclip/models/configs/{cfg.arch}.json`), "
        "random init.",
        f"- Baseline: both towers from scratch, image–caption InfoNCE, {cfg.baseline_steps} steps × batch "
        f"{cfg.baseline_batch_size}, AdamW lr {cfg.baseline_lr:g}, weight decay {cfg.baseline_weight_decay:g}.",
        f"- ParaCLIP: image tower frozen (cached features), text encoder trained with `{cfg.paraclip_loss}` "
        f"(L1(image, p2) + L2(caption, p1) + L3(p1, p2)), {cfg.paraclip_steps} steps × batch "
        f"{cfg.paraclip_batch_size}, lr {cfg.paraclip_lr:g}.",
        f"- Machine: {_machine()}.", "",
        "Stage times (a cached stage shows the run that made it). Wall time depends on what else the machine "
        "runs; CPU time is this process's user + system time; load is the 1-minute load average before / "
        "after the stage:", "",
        "| stage | wall s | CPU s | torch threads | load before / after |", "|---|---|---|---|---|",
    ]
    cpu_total = 0.0
    for name, info in stages.items():
        cpu = info.get("cpu_seconds")
        cpu_total += float(cpu or 0)
        lines.append(f"| {name} | {float(info.get('seconds', 0)):.0f} | {_fmt(cpu, 0)} | {info.get('threads', '–')} | "
                     f"{_fmt(info.get('load_before'))} / {_fmt(info.get('load_after'))} |")
    lines += [f"| total | {total:.0f} | {cpu_total:.0f} | | |", ""]
    return lines
