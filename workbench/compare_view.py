"""What Compare shows for a set of results: tables with each result's n, the differences with their
CIs and significance in words (readable on a phone), and one plot per metric group.

Pure functions of the suite's tables (``paraclip.results.results_frame`` and
``paraclip.evaluation.suite.compare``), so a finished and a stopped comparison render alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from paraclip import plots

DELTA_VIEW_COLUMNS = ["model", "task", "metric", "delta", "95% CI", "significant", "n"]
PLOT_SLOTS = ("retrieval", "paraphrased", "sts", "aro", "classification", "forest", "scatter")
CLASSIFICATION_METRICS = ("acc1", "acc5", "mean_per_class_recall")  # CLIP_benchmark's three, all headline
# the tables' task column on a phone: the longest task name shortened (the others keep the names the CSV has)
SHOWN_TASKS = {"zeroshot-classification": "zero-shot"}


def shown_task(task) -> str:
    return SHOWN_TASKS.get(str(task), str(task))


def headline_metrics(table: pd.DataFrame) -> set[tuple[str, str]]:
    """(task, metric) pairs worth a line: each task's main metric, JS@k next to a main AO@k, and all three
    zero-shot classification metrics (acc5 is absent below five classes)."""
    if table is None or table.empty:
        return set()
    main = table[table["main"].astype(bool)] if "main" in table.columns else table
    keys = set(zip(main["task"], main["metric"]))
    keys |= {(t, m.replace("AO@", "JS@")) for t, m in keys if m.startswith("AO@")}
    keys |= {(t, m) for t, m in zip(table["task"], table["metric"]) if m in CLASSIFICATION_METRICS
             and (t, "acc1") in keys}
    return keys


def results_view(table: pd.DataFrame) -> pd.DataFrame:
    """Headline metrics: one row per (task, metric) with its n, one column per model."""
    if table is None or table.empty:
        return pd.DataFrame()
    keys = headline_metrics(table)
    rows = table[[(t, m) in keys for t, m in zip(table["task"], table["metric"])]]
    out = rows.pivot_table(index=["task", "metric"], columns="label", values="value", aggfunc="first", sort=False)
    labels = list(dict.fromkeys(rows["label"]))
    out = out[labels].round(2).rename(columns=plots.short_names(labels)).reset_index()
    n = rows.groupby(["task", "metric"], sort=False)["n"].agg(lambda v: "/".join(str(x) for x in dict.fromkeys(v)))
    out.insert(2, "n", [n[(t, m)] for t, m in zip(out["task"], out["metric"])])
    return out.assign(task=out["task"].map(shown_task))


def deltas_view(deltas: pd.DataFrame, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every difference vs the baseline with its CI, significance and n (headline metrics first)."""
    if deltas is None or deltas.empty:
        return pd.DataFrame(columns=DELTA_VIEW_COLUMNS)
    keys = headline_metrics(table) if table is not None else set()
    order = [0 if (t, m) in keys else 1 for t, m in zip(deltas["task"], deltas["metric"])]
    d = deltas.assign(_order=order).sort_values("_order", kind="stable")
    names = plots.short_names(d["model"])
    return pd.DataFrame({
        "model": [names[str(m)] for m in d["model"]], "task": d["task"].map(shown_task), "metric": d["metric"], "delta": d["delta"].round(2),
        "95% CI": [f"[{lo:+.2f}, {hi:+.2f}]" for lo, hi in zip(d["ci_low"], d["ci_high"])],
        "significant": ["yes" if s else "no" for s in d.get("significant", pd.Series(False, index=d.index))],
        "n": d["n"] if "n" in d.columns else "",
    }, columns=DELTA_VIEW_COLUMNS)


def deltas_markdown(deltas: pd.DataFrame, table: pd.DataFrame | None) -> str:
    """The headline differences as short lines that wrap on a narrow screen."""
    if deltas is None or deltas.empty:
        return "*No differences: compare two or more models on a task they can all do.*"
    keys = headline_metrics(table)
    lines = []
    baseline = str(deltas["baseline"].iloc[0]) if "baseline" in deltas.columns else "the baseline"
    names = plots.short_names([baseline, *deltas["model"]])
    for model, part in deltas.groupby("model", sort=False):
        lines.append(f"\n**{names[str(model)]}** − **{names[baseline]}**:\n")
        for row in part.itertuples():
            if keys and (row.task, row.metric) not in keys:
                continue
            verdict = "✱ significant" if row.significant else "not significant"
            lines.append(f"- {plots.short_task(row.task)} {row.metric}: **{row.delta:+.2f}** "
                         f"[{row.ci_low:+.2f}, {row.ci_high:+.2f}], {verdict} (n = {row.n})")
    return "\n".join(lines) + "\n\n*95% paired bootstrap CIs; ✱ = the interval excludes 0.*"


@dataclass
class CompareView:
    """Everything Compare shows for one set of results."""

    results: pd.DataFrame
    deltas: pd.DataFrame
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)  # slot -> figure (absent = hidden)


def defined(deltas: pd.DataFrame) -> pd.DataFrame:
    """The differences that have a value: an undefined metric (acc5 below five classes) has none, and
    the notes say why."""
    if deltas is None or deltas.empty or "delta" not in deltas.columns:
        return deltas
    return deltas[deltas["delta"].notna()]


def undefined_notes(results) -> list[str]:
    """One line per undefined metric and reason (shared by the models it applies to)."""
    lines = {}
    for result in results:
        for metric, why in (getattr(result, "notes", None) or {}).items():
            lines.setdefault(f"{plots.short_task(result.task)} {metric}: not shown ({why}).", None)
    return list(lines)


def build_view(table: pd.DataFrame, deltas: pd.DataFrame, points: pd.DataFrame) -> CompareView:
    figures: dict[str, Any] = {}
    deltas = defined(deltas)
    # an undefined metric (acc5 below five classes) would be an empty category in a plot; the notes say why
    shown = table[table["value"].notna()] if table is not None and "value" in table.columns else table
    groups = plots.metric_groups(shown)
    for group in groups:
        figures[group] = (plots.rank_similarity_curves(shown) if group == "paraphrased"
                          else plots.group_bars(shown, group))
    if deltas is not None and not deltas.empty:
        keys = headline_metrics(table)
        figures["forest"] = plots.delta_forest(deltas[[(t, m) in keys for t, m in zip(deltas["task"],
                                                                                          deltas["metric"])]])
    if points is not None and len(points):
        figures["scatter"] = plots.sts_scatter(points)
    return CompareView(results_view(table), deltas_view(deltas, table), deltas_markdown(deltas, table), figures)
