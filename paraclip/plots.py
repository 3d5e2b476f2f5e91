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


NARROW_PLOT_PX = 330  # plot width on a 400 px phone screen: legends are sized for it


def _legend_rows(names: Sequence[str], width: int = NARROW_PLOT_PX) -> int:
    """Rows a horizontal legend of ``names`` needs at ``width`` px (about 7 px a character + the symbol)."""
    rows, used = 1, 0
    for name in names:
        entry = 7 * len(str(name)) + 45
        if used and used + entry > width:
            rows, used = rows + 1, 0
        used += entry
    return rows


def short_name(name: str, limit: int = 32) -> str:
    """A model name short enough for a legend on a phone: a path keeps its file name, the middle of
    anything longer is elided (the full name stays in the tables and the hover text)."""
    name = str(name)
    if len(name) <= limit:
        return name
    head, sep, tail = name.partition("@")
    if sep and "/" in tail:
        name = f"{head}@…/{tail.rsplit('/', 1)[-1]}"
    if len(name) <= limit:
        return name
    keep = limit - 1
    return name[: keep // 2] + "…" + name[-(keep - keep // 2):]


def short_names(names) -> dict[str, str]:
    """``short_name`` of each name, kept distinct (two checkpoints called final.pt stay apart)."""
    names = list(dict.fromkeys(str(n) for n in names))
    out = {n: short_name(n) for n in names}
    for n in names:
        if list(out.values()).count(out[n]) > 1:
            elided = n if len(n) <= 32 else n[:15] + "…" + n[-16:]
            out[n] = elided if list(out.values()).count(elided) == 0 else f"{elided} ({names.index(n) + 1})"
    return out


def _layout(fig: go.Figure, title: str, **kwargs) -> go.Figure:
    """Title on the first line, the legend under it, the plot below. A legend under the plot would
    collide with long or rotated tick labels; the top margin is sized for the legend as it wraps on a
    narrow screen, so title, legend and plot never overlap."""
    names = [t.name for t in fig.data if t.name and t.showlegend is not False]
    legend = bool(names) and fig.layout.showlegend is not False
    top = 40 + (26 * _legend_rows(list(dict.fromkeys(names))) if legend else 0)
    fig.update_layout(title=dict(text=title, x=0.01, xanchor="left", y=1.0, yanchor="top", yref="container",
                                 pad=dict(t=8), font=dict(size=15)),
                      height=HEIGHT, template=TEMPLATE,
                      legend=dict(orientation="h", x=0, xanchor="left", y=1.01, yanchor="bottom", font=dict(size=12)),
                      margin=dict(l=60, r=20, t=top, b=50), uniformtext=dict(minsize=9, mode="hide"), **kwargs)
    return fig


def _label_column(df):
    return "label" if "label" in df.columns else "model"


def _bars(rows, x_column: str, label: str, text_format: str = "{:.1f}") -> go.Figure:
    """Grouped bars: one category per ``x_column`` value, one bar per model. Values are written above
    the bars when they fit on a narrow screen (else the hover and the table have them)."""
    groups = list(dict.fromkeys(rows[x_column]))
    models = list(dict.fromkeys(rows[label]))
    bar_px = 0.8 * NARROW_PLOT_PX / max(1, len(groups) * len(models))
    # more than a phone's width of categories: two narrow lines each ("t2i<br>R@10"), so they never collide
    groups_shown = {g: _two_lines(g) if len(groups) > 4 else g for g in groups}
    legend = short_names(models)
    fig = go.Figure()
    for model in models:
        part = rows[rows[label] == model]
        values = part.drop_duplicates(x_column).set_index(x_column)["value"].reindex(groups)
        text = [text_format.format(v) if v == v else "" for v in values] if bar_px >= 26 else None
        fig.add_bar(name=legend[str(model)], x=[groups_shown[g] for g in groups], y=values.tolist(), cliponaxis=False,
                    textposition="outside", text=text, textfont=dict(size=11), hovertext=str(model))
    top = float(rows["value"].max()) if len(rows) else 1.0
    fig.update_yaxes(range=[min(0.0, float(rows["value"].min())), max(1.0, top) * 1.18])
    fig.update_xaxes(tickangle=0)  # labels are short or broken over two lines; rotated ones crowd the legend
    return fig


def _two_lines(label) -> str:
    label = str(label)
    if "<br>" in label:
        return label
    if " " in label:
        return label.replace(" ", "<br>", 1)
    return label.replace("@", "<br>@", 1)


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
    rows = rows.assign(group=rows["task"].map(short_task) + "<br>" + rows["metric"].str.replace("_", " "))
    return _layout(_bars(rows, "group", label), title, barmode="group", yaxis_title="score")


# -- metric groups: one plot each, never two scales on one axis ---------------------------------------

METRIC_GROUPS = {
    # name: (title, y-axis title, x column, which (task, metric) rows belong)
    "retrieval": ("Zero-shot retrieval: recall@k", "recall (%)", "metric",
                  lambda task, metric: task == "retrieval"),
    "paraphrased": ("Paraphrased retrieval: AO@k and JS@k", "overlap of the two top-k lists (%)", "metric",
                    lambda task, metric: bool(_RANK_METRIC.match(metric))),
    "sts": ("STS: Spearman × 100", "Spearman × 100", "task", lambda task, metric: metric == "spearman"),
    "aro": ("VG-Relation / VG-Attribution: accuracy", "accuracy (%)", "task",
            lambda task, metric: task.startswith("vg-") and metric == "macro_accuracy"),
    "classification": ("Zero-shot classification", "accuracy / recall (%)", "metric",
                       lambda task, metric: metric in ("acc1", "acc5", "mean_per_class_recall")),
}
_SHORT_TASKS = {"paraphrased-retrieval": "paraphrased", "vg-relation": "VG-R", "vg-attribution": "VG-A",
                "zeroshot-classification": "zero-shot"}


def short_task(task: str) -> str:
    return _SHORT_TASKS.get(str(task), str(task))


def metric_group(task: str, metric: str) -> str | None:
    """The group (a key of METRIC_GROUPS) a task's metric is plotted in; None when it is not plotted."""
    return next((name for name, (*_, belongs) in METRIC_GROUPS.items() if belongs(str(task), str(metric))), None)


def metric_groups(table) -> list[str]:
    """The groups present in a results table, in METRIC_GROUPS order."""
    if table is None or len(table) == 0 or not {"task", "metric"} <= set(table.columns):
        return []
    present = {metric_group(t, m) for t, m in zip(table["task"], table["metric"])}
    return [name for name in METRIC_GROUPS if name in present]


@_soft("Scores")
def group_bars(table, group: str, title: str | None = None) -> go.Figure:
    """One metric group's scores (``METRIC_GROUPS``): bars per metric (or per task), one per model."""
    heading, y_title, x_column, _ = METRIC_GROUPS[group]
    title = title or heading
    problem = _missing(table, ["task", "metric", "value"])
    if problem:
        return empty_figure(problem, title)
    rows = table[[metric_group(t, m) == group for t, m in zip(table["task"], table["metric"])]]
    if rows.empty:
        return empty_figure("No results in this group.", title)
    rows = rows.assign(task=rows["task"].map(short_task), metric=rows["metric"].str.replace("_", " "))
    return _layout(_bars(rows, x_column, _label_column(rows)), title, barmode="group", yaxis_title=y_title)


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
    colours = TEMPLATE.layout.colorway
    legend = short_names(rows[label])
    fig = go.Figure()
    for n, (model, part_model) in enumerate(rows.groupby(label, sort=False)):
        for measure, part in part_model.groupby("measure", sort=True):
            # one legend entry per model (its colour); the line style says AO or JS
            fig.add_scatter(x=part["k"], y=part["value"], mode="lines+markers", name=legend[str(model)],
                            legendgroup=str(model), showlegend=measure == "AO", hovertext=f"{model} {measure}@k",
                            line=dict(dash="solid" if measure == "AO" else "dash", color=colours[n % len(colours)]))
    fig.update_xaxes(type="log", tickvals=sorted(rows["k"].unique()))
    return _layout(fig, title, xaxis_title="k (solid: AO@k, dashed: JS@k)", yaxis_title="overlap of the top-k lists (%)")


@_soft("STS")
def sts_scatter(points, task: str | None = None, max_points: int = 3000, title: str | None = None) -> go.Figure:
    """Gold similarity vs cosine for one STS task (the first if none given), every model in one panel
    (its Spearman ρ × 100 in the legend) — readable at any width and with any number of models."""
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
    legend = short_names(points["model"])
    fig = go.Figure()
    for m in dict.fromkeys(points["model"]):
        part = points[points["model"] == m]
        rho = spearmanr(part["gold"], part["cosine"]).statistic if len(part) > 2 else float("nan")
        if len(part) > max_points:
            part = part.sample(max_points, random_state=0)
        fig.add_scatter(x=part["gold"], y=part["cosine"], mode="markers", marker=dict(size=4, opacity=0.45),
                        name=f"{legend[str(m)]} (ρ {100 * rho:.1f})", hovertext=str(m))
    return _layout(fig, title, xaxis_title="gold similarity", yaxis_title="cosine")


def _delta_rows(deltas, separator: str = "<br>"):
    return deltas.assign(group=deltas["task"].map(short_task) + separator + deltas["metric"].str.replace("_", " "))


@_soft("Differences vs baseline")
def delta_bars(deltas, title: str = "Difference vs baseline, 95% CI") -> go.Figure:
    """Bars of ``delta`` per (task, metric) and model, with the CI as asymmetric error bars."""
    problem = _missing(deltas, ["task", "metric", "model", "delta", "ci_low", "ci_high"])
    if problem:
        return empty_figure("No comparisons yet (needs two or more models)." if problem == "No data yet." else problem,
                            title)
    rows = _delta_rows(deltas)
    groups = list(dict.fromkeys(rows["group"]))
    legend = short_names(rows["model"])
    fig = go.Figure()
    for model, part in rows.groupby("model", sort=False):
        part = part.drop_duplicates("group").set_index("group").reindex(groups)
        fig.add_bar(name=legend[str(model)], x=groups, y=part["delta"].tolist(),
                    error_y=dict(type="data", symmetric=False, array=(part["ci_high"] - part["delta"]).tolist(),
                                 arrayminus=(part["delta"] - part["ci_low"]).tolist()))
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig.update_xaxes(tickangle=0)
    return _layout(fig, title, barmode="group", yaxis_title="difference (points)")


@_soft("Differences vs baseline")
def delta_forest(deltas, title: str = "Difference vs the baseline, 95% CI") -> go.Figure:
    """A forest plot: one row per (task, metric), a point per model at its delta with the paired
    bootstrap CI as a horizontal bar, models side by side within a row; a filled diamond marks a CI
    that excludes 0, an open circle one that does not."""
    problem = _missing(deltas, ["task", "metric", "model", "delta", "ci_low", "ci_high"])
    if problem:
        return empty_figure("No comparisons yet (needs two or more models)." if problem == "No data yet." else problem,
                            title)
    rows = _delta_rows(deltas, " · ")
    groups = list(dict.fromkeys(rows["group"]))
    legend = short_names(rows["model"])
    fig = go.Figure()
    for model, part in rows.groupby("model", sort=False):
        part = part.drop_duplicates("group").set_index("group").reindex(groups)
        significant = part["significant"].fillna(False).astype(bool) if "significant" in part else [False] * len(part)
        fig.add_scatter(name=legend[str(model)], y=groups, x=part["delta"].tolist(), mode="markers", hovertext=str(model),
                        marker=dict(size=10, symbol=["diamond" if s else "circle-open" for s in significant]),
                        error_x=dict(type="data", symmetric=False, array=(part["ci_high"] - part["delta"]).tolist(),
                                     arrayminus=(part["delta"] - part["ci_low"]).tolist()))
    fig.add_vline(x=0, line=dict(color="#444", width=1))
    fig.update_yaxes(autorange="reversed", type="category")
    return _layout(fig, title, xaxis_title="points (◆ CI excludes 0)", scattermode="group",
                   scattergap=0.4)


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


# Twelve colours that stay apart from each other (after Tableau's and Okabe-Ito's palettes); a plot
# with more series than this varies the dash as well, so no two series look the same.
DISTINCT_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2",
                    "#7f7f7f", "#bcbd22", "#000000", "#0b3d91"]
_DASHES = ["solid", "dot", "dash", "dashdot"]


def series_style(i: int) -> dict:
    """(colour, dash) of the ``i``-th series: distinct for every ``i`` below 48."""
    return dict(color=DISTINCT_COLOURS[i % len(DISTINCT_COLOURS)], dash=_DASHES[(i // len(DISTINCT_COLOURS)) % 4])


_TRAIN_LOSS = re.compile(r"^loss(_(?P<term>\w+))?$")
_VAL_LOSS = re.compile(r"^val_(?P<validator>[a-z0-9]+)_loss(_(?P<term>\w+))?$")


def _numeric(log, column: str) -> bool:
    return column in log.columns and log[column].dtype.kind in "fiu" and log[column].notna().any()


def _line(fig: go.Figure, log, column: str, name: str, style: dict, **kwargs) -> None:
    part = log[["step", column]].dropna()
    fig.add_scatter(x=part["step"], y=part[column], name=name, mode="lines+markers" if len(part) < 50 else "lines",
                    line=dict(color=style["color"], dash=style["dash"], width=2), hovertext=column, **kwargs)


@_soft("Training loss")
def loss_curves(log, title: str = "Training loss") -> go.Figure:
    """The loss and each loss term per step: training batches as solid lines, the held-out
    validation losses (``val_<validator>_loss…``) as dotted lines with markers in the same term's colour.
    One legend entry per term, so the legend stays short on a phone."""
    problem = _missing(log, ["step"])
    if problem:
        return empty_figure(problem, title)
    terms: dict[str, list[tuple[str, bool]]] = {}
    for column in log.columns:
        train, val = _TRAIN_LOSS.match(column), _VAL_LOSS.match(column)
        match = train or val
        if match and _numeric(log, column):
            terms.setdefault(match.group("term") or "total", []).append((column, bool(val)))
    if not terms:
        return empty_figure("No loss values logged yet.", title)
    order = sorted(terms, key=lambda t: (t != "total", t))
    fig = go.Figure()
    for i, term in enumerate(order):
        style = series_style(i)
        shown = False
        for column, is_val in sorted(terms[term], key=lambda c: c[1]):
            name = "loss" if term == "total" else term.upper()
            _line(fig, log, column, name, dict(style, dash="dot") if is_val else style, legendgroup=term,
                  showlegend=not shown, marker=dict(symbol="diamond", size=7) if is_val else None)
            shown = True
    has_val = any(is_val for cols in terms.values() for _, is_val in cols)
    axis = "step (solid: training · dotted ◆: held-out)" if has_val else "step"
    return _layout(fig, title, xaxis_title=axis, yaxis_title="loss")


def _score_label(name: str) -> str:
    """A short legend label for a validation score: r1_paraphrase_1 → "R@1 para 1", ao10 → "AO@10"."""
    name = re.sub(r"^(r|ao|js)(\d+)(?=_|$)", lambda m: f"{'R' if m[1] == 'r' else m[1].upper()}@{m[2]}", name)
    return name.replace("_paraphrase_", " para ").replace("_", " ")


@_soft("Validation")
def validation_curves(log, title: str = "Validation", metrics: Sequence[str] | None = None) -> go.Figure:
    """Validation metrics other than losses (``val_…``, e.g. held-out R@1, AO@10, STS) per step, one
    distinct colour each; ``metrics`` picks some of them."""
    problem = _missing(log, ["step"])
    if problem:
        return empty_figure(problem, title)
    columns = [c for c in (metrics if metrics is not None else log.columns)
               if c.startswith("val_") and not _VAL_LOSS.match(c) and not c.endswith(("seconds", "_s"))
               and _numeric(log, c)]
    if not columns:
        return empty_figure("No validation metrics yet (they are logged every few steps when a held-out "
                            "fraction is set).", title)
    prefixes = {c.split("_")[1] for c in columns}
    names = {c: _score_label(c.split("_", 2)[2] if len(prefixes) == 1 and c.count("_") >= 2 else c[4:])
             for c in columns}
    fig = go.Figure()
    for i, column in enumerate(columns):
        _line(fig, log, column, names[column], series_style(i))
    return _layout(fig, title, xaxis_title="step", yaxis_title="score")


__all__ = ["HEIGHT", "METRIC_GROUPS", "delta_bars", "delta_forest", "empty_figure", "group_bars", "loss_curves", "metric_group",
           "metric_groups", "rank_similarity_curves", "short_name", "short_names", "short_task", "sts_scatter", "task_bars", "training_curves",
           "validation_curves"]
