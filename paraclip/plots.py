"""Plot builders: pure functions from a pandas DataFrame to a plotly Figure (as mteb does).

Used by the app and the mini-world report. Every builder has a fixed height, never raises on
bad or empty input, and instead returns an empty figure whose annotation says what is missing.

Inputs are the library's own tables:

* ``table`` — :func:`paraclip.results.results_frame` (model, label, task, metric, value, main, …);
* ``deltas`` — :func:`paraclip.evaluation.suite.compare` (task, model, metric, delta, ci_low, ci_high, …);
* ``points`` — :func:`paraclip.evaluation.suite.sts_points` (model, task, gold, cosine);
* ``log`` — a training metrics JSONL read with ``pandas.read_json(path, lines=True)`` (step, loss, …).
"""

from __future__ import annotations

import functools
import re
from typing import Callable, Sequence

import plotly.graph_objects as go

HEIGHT = 420
_RANK_METRIC = re.compile(r"^(AO|JS)@(\d+)$")

_GRID = "#EBF0F8"
# The look of plotly's "plotly_white" in the few properties these plots use. Applying the full
# built-in template costs ~20 ms per figure (it carries defaults for every trace type), which
# is most of an Explore query; this one costs ~2 ms.
TEMPLATE = go.layout.Template(layout=dict(
    paper_bgcolor="white", plot_bgcolor="white", font=dict(color="#2a3f5f"), hovermode="closest",
    colorway=["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880", "#FF97FF",
              "#FECB52"],
    xaxis=dict(gridcolor=_GRID, linecolor=_GRID, zerolinecolor=_GRID, ticks="", automargin=True),
    yaxis=dict(gridcolor=_GRID, linecolor=_GRID, zerolinecolor=_GRID, ticks="", automargin=True),
    title=dict(x=0.05),
))


def empty_figure(message: str, title: str = "") -> go.Figure:
    """A blank figure that says why there is nothing to show."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color="#666"))
    fig.update_layout(title=title or None, height=HEIGHT, xaxis=dict(visible=False), yaxis=dict(visible=False),
                      template=TEMPLATE)
    return fig


def _soft(title: str) -> Callable:
    """Turn any exception of a builder into an annotated empty figure."""

    def wrap(builder: Callable[..., go.Figure]) -> Callable[..., go.Figure]:
        @functools.wraps(builder)
        def safe(*args, **kwargs) -> go.Figure:
            try:
                return builder(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a plot must never break the page around it
                return empty_figure(f"Could not draw this plot: {type(exc).__name__}: {exc}", title)

        return safe

    return wrap


def _missing(df, columns: Sequence[str]) -> str | None:
    if df is None or len(df) == 0:
        return "No data yet."
    absent = [c for c in columns if c not in df.columns]
    return f"Missing column(s): {', '.join(absent)}." if absent else None


def _layout(fig: go.Figure, title: str, **kwargs) -> go.Figure:
    fig.update_layout(title=title, height=HEIGHT, template=TEMPLATE, legend=dict(orientation="h", y=-0.2),
                      margin=dict(l=60, r=20, t=60, b=80), **kwargs)
    return fig


def _label_column(df):
    return "label" if "label" in df.columns else "model"


@_soft("Scores per task")
def task_bars(table, metrics: Sequence[str] | None = None, title: str = "Scores per task") -> go.Figure:
    """Grouped bars: one group per (task, metric), one bar per model. Default: each task's main metric."""
    problem = _missing(table, ["task", "metric", "value"])
    if problem:
        return empty_figure(problem, title)
    label = _label_column(table)
    if metrics is not None:
        rows = table[table["metric"].isin(list(metrics))]
    elif "main" in table.columns:
        rows = table[table["main"].astype(bool)]
    else:
        rows = table
    if rows.empty:
        return empty_figure("No matching metrics.", title)
    rows = rows.assign(group=rows["task"] + " · " + rows["metric"])
    groups = list(dict.fromkeys(rows["group"]))
    fig = go.Figure()
    for model, part in rows.groupby(label, sort=False):
        values = part.drop_duplicates("group").set_index("group")["value"].reindex(groups)
        fig.add_bar(name=str(model), x=groups, y=values.tolist(),
                    text=[f"{v:.1f}" if v == v else "" for v in values], textposition="outside")
    return _layout(fig, title, barmode="group", yaxis_title="score")


@_soft("AO@k and JS@k")
def rank_similarity_curves(table, title: str = "Paraphrased retrieval: AO@k and JS@k") -> go.Figure:
    """Lines over k of AO@k (solid) and JS@k (dashed), one colour per model."""
    problem = _missing(table, ["metric", "value"])
    if problem:
        return empty_figure(problem, title)
    label = _label_column(table)
    parsed = table["metric"].astype(str).str.extract(_RANK_METRIC)
    rows = table.assign(measure=parsed[0], k=parsed[1]).dropna(subset=["measure"])
    if rows.empty:
        return empty_figure("No AO@k / JS@k results (run the paraphrased-retrieval task).", title)
    rows = rows.assign(k=rows["k"].astype(int)).sort_values("k")
    fig = go.Figure()
    for (model, measure), part in rows.groupby([label, "measure"], sort=False):
        fig.add_scatter(x=part["k"], y=part["value"], mode="lines+markers", name=f"{model} {measure}@k",
                        line=dict(dash="solid" if measure == "AO" else "dash"))
    return _layout(fig, title, xaxis_title="k", yaxis_title="similarity of the two top-k lists (%)")


@_soft("STS")
def sts_scatter(points, task: str | None = None, max_points: int = 3000, title: str | None = None) -> go.Figure:
    """Gold similarity vs cosine, one panel per model (one STS task; the first if none given)."""
    from plotly.subplots import make_subplots
    from scipy.stats import spearmanr

    title = title or f"STS: gold score vs cosine{f' ({task})' if task else ''}"
    problem = _missing(points, ["model", "gold", "cosine"])
    if problem:
        return empty_figure(problem, title)
    if "task" in points.columns:
        task = task or str(points["task"].iloc[0])
        points = points[points["task"] == task]
        title = title if "(" in title else f"{title} ({task})"
    if points.empty:
        return empty_figure(f"No pairs for task {task!r}.", title)
    models = list(dict.fromkeys(points["model"]))
    names = []
    for m in models:
        part = points[points["model"] == m]
        rho = spearmanr(part["gold"], part["cosine"]).statistic if len(part) > 2 else float("nan")
        names.append(f"{m}<br>Spearman {100 * rho:.1f}")
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=names, shared_yaxes=True)
    for col, m in enumerate(models, 1):
        part = points[points["model"] == m]
        if len(part) > max_points:
            part = part.sample(max_points, random_state=0)
        fig.add_scatter(x=part["gold"], y=part["cosine"], mode="markers", marker=dict(size=4, opacity=0.5),
                        name=str(m), showlegend=False, row=1, col=col)
        fig.update_xaxes(title_text="gold", row=1, col=col)
    fig.update_yaxes(title_text="cosine", row=1, col=1)
    return _layout(fig, title)


@_soft("Differences vs baseline")
def delta_bars(deltas, title: str = "Difference vs baseline (95% paired bootstrap CI)") -> go.Figure:
    """Bars of ``delta`` per (task, metric) and model, with the CI as asymmetric error bars."""
    problem = _missing(deltas, ["task", "metric", "model", "delta", "ci_low", "ci_high"])
    if problem:
        return empty_figure("No comparisons yet (needs two or more models)." if problem == "No data yet." else problem,
                            title)
    rows = deltas.assign(group=deltas["task"] + " · " + deltas["metric"])
    groups = list(dict.fromkeys(rows["group"]))
    fig = go.Figure()
    for model, part in rows.groupby("model", sort=False):
        part = part.drop_duplicates("group").set_index("group").reindex(groups)
        fig.add_bar(name=str(model), x=groups, y=part["delta"].tolist(),
                    error_y=dict(type="data", symmetric=False, array=(part["ci_high"] - part["delta"]).tolist(),
                                 arrayminus=(part["delta"] - part["ci_low"]).tolist()))
    baseline = str(deltas["baseline"].iloc[0]) if "baseline" in deltas.columns else "baseline"
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    return _layout(fig, title, barmode="group", yaxis_title=f"difference vs {baseline} (points)")


@_soft("Training")
def training_curves(log, metrics: Sequence[str] | None = None, title: str = "Training") -> go.Figure:
    """Step vs loss (left axis) and validation metrics (right axis) from a metrics JSONL DataFrame."""
    from plotly.subplots import make_subplots

    problem = _missing(log, ["step"])
    if problem:
        return empty_figure(problem, title)
    numeric = [c for c in log.columns if c != "step" and log[c].dtype.kind in "fiu"]
    columns = list(metrics) if metrics is not None else numeric
    columns = [c for c in columns if c in log.columns]
    if not columns:
        return empty_figure("No numeric metrics to plot.", title)
    losses = [c for c in columns if "loss" in c.lower()]
    others = [c for c in columns if c not in losses]
    fig = make_subplots(specs=[[{"secondary_y": bool(others)}]])
    for c in losses + others:
        part = log[["step", c]].dropna()
        fig.add_scatter(x=part["step"], y=part[c], mode="lines+markers" if len(part) < 50 else "lines", name=c,
                        secondary_y=c in others)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="loss" if losses else "value", secondary_y=False)
    if others:
        fig.update_yaxes(title_text="validation metric", secondary_y=True)
    return _layout(fig, title)


__all__ = ["HEIGHT", "delta_bars", "empty_figure", "rank_similarity_curves", "sts_scatter", "task_bars",
           "training_curves"]
