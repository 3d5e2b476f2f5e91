"""Figure of a robustness sweep (:func:`paraclip.evaluation.robustness.robustness_sweep`): a pure
function from its tables to a plotly figure, with the fixed height and empty-figure behaviour of
:mod:`paraclip.plots`.

One column per model: a dot per paraphrase (hover: the paraphrase), the mean as a diamond and the
worst paraphrase as a red cross, for one metric (AO@k or JS@k).
"""

from __future__ import annotations

import plotly.graph_objects as go

from paraclip.plots import HEIGHT, TEMPLATE, empty_figure, short_names


def robustness_figure(per_paraphrase, metric: str | None = None, title: str | None = None) -> go.Figure:
    """``per_paraphrase``: the sweep's (model, paraphrase, metric, value) table; ``metric``: e.g. ``AO@10``
    (default: the first AO@k in the table)."""
    needed = ["model", "paraphrase", "metric", "value"]
    if per_paraphrase is None or len(per_paraphrase) == 0:
        return empty_figure("No sweep yet: give a query and some paraphrases.", title or "Robustness to paraphrasing")
    absent = [c for c in needed if c not in per_paraphrase.columns]
    if absent:
        return empty_figure(f"Missing column(s): {', '.join(absent)}.", title or "Robustness to paraphrasing")
    metrics = list(dict.fromkeys(per_paraphrase["metric"].astype(str)))
    metric = metric or next((m for m in metrics if m.startswith("AO@")), metrics[0])
    title = title or f"{metric} of each paraphrase's top-k vs the query's"
    rows = per_paraphrase[per_paraphrase["metric"].astype(str) == metric]
    if rows.empty:
        return empty_figure(f"No {metric} in this sweep (it has {', '.join(metrics)}).", title)
    names = short_names(rows["model"])
    fig = go.Figure()
    for n, (model, part) in enumerate(rows.groupby("model", sort=False)):
        x = [names[str(model)]] * len(part)
        fig.add_scatter(x=x, y=part["value"], mode="markers", name="paraphrases", legendgroup="paraphrases",
                        showlegend=n == 0, marker=dict(color="#636efa", size=8, opacity=0.6),
                        hovertext=list(part["paraphrase"]), hovertemplate="%{hovertext}<br>%{y:.1f}<extra></extra>")
        worst = part.loc[part["value"].idxmin()]
        fig.add_scatter(x=[names[str(model)]], y=[part["value"].mean()], mode="markers", name="mean",
                        legendgroup="mean", showlegend=n == 0, marker=dict(symbol="diamond", size=13, color="#2a3f5f"),
                        hovertemplate="mean %{y:.1f}<extra></extra>")
        fig.add_scatter(x=[names[str(model)]], y=[worst["value"]], mode="markers", name="worst", legendgroup="worst",
                        showlegend=n == 0, marker=dict(symbol="x", size=12, color="#d62728"),
                        hovertext=[worst["paraphrase"]], hovertemplate="worst: %{hovertext}<br>%{y:.1f}<extra></extra>")
    fig.update_layout(title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15)), height=HEIGHT,
                      template=TEMPLATE, yaxis=dict(title=f"{metric} (%)", range=[-3, 103]),
                      legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"),
                      margin=dict(l=60, r=20, t=80, b=50))
    return fig


__all__ = ["robustness_figure"]
