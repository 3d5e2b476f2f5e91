"""Plot builders the library does not have (pure: DataFrame -> plotly Figure, fixed height, soft failure)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from paraclip.plots import HEIGHT, TEMPLATE, empty_figure


def similarity_heatmaps(frame, title: str = "Text similarity under each model") -> go.Figure:
    """One cosine-similarity heatmap per model from a long frame (model, text_a, text_b, cosine).

    The panels are laid out by hand (an x/y axis pair per model) rather than with
    ``plotly.subplots.make_subplots``, which costs tens of milliseconds per call — a large part
    of an Explore query's budget.
    """
    try:
        if frame is None or len(frame) == 0:
            return empty_figure("Type a query and a paraphrase.", title)
        missing = [c for c in ("model", "text_a", "text_b", "cosine") if c not in frame.columns]
        if missing:
            return empty_figure(f"Missing column(s): {', '.join(missing)}.", title)
        models = list(dict.fromkeys(frame["model"]))
        spacing = 0.12
        width = (1 - spacing * (len(models) - 1)) / len(models)
        traces, layout, titles = [], {}, []
        for col, model in enumerate(models):
            part = frame[frame["model"] == model]
            texts = list(dict.fromkeys(part["text_a"]))
            cosine = {(a, b): float(c) for a, b, c in zip(part["text_a"], part["text_b"], part["cosine"])}
            z = np.array([[cosine.get((a, b), np.nan) for b in texts] for a in texts])
            suffix = "" if col == 0 else str(col + 1)
            left = col * (width + spacing)
            labels = _short(texts)
            traces.append(dict(type="heatmap", z=z, x=labels, y=labels, zmin=-1, zmax=1, colorscale="RdBu",
                               reversescale=True, showscale=col == len(models) - 1, text=z.round(2),
                               texttemplate="%{text}", xaxis=f"x{suffix}", yaxis=f"y{suffix}"))
            layout[f"xaxis{suffix}"] = dict(domain=[left, left + width], anchor=f"y{suffix}")
            layout[f"yaxis{suffix}"] = dict(domain=[0, 1], anchor=f"x{suffix}", autorange="reversed",
                                            showticklabels=col == 0)
            titles.append(dict(text=str(model), x=left + width / 2, y=1.0, xref="paper", yref="paper",
                               xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=14)))
        # plain dicts, unvalidated: plotly's validation was 50 of an Explore query's 70 ms, all of it
        # holding the GIL, so concurrent queries queued behind it (issue 22 §9); the JSON is the same
        return go.Figure(dict(data=traces, layout=dict(title=dict(text=title), height=HEIGHT, template=TEMPLATE,
                                                       margin=dict(l=140, r=20, t=80, b=80), annotations=titles,
                                                       **layout)), _validate=False)
    except Exception as exc:  # noqa: BLE001 - a plot never breaks the page
        return empty_figure(f"Could not draw this plot: {type(exc).__name__}: {exc}", title)


def _short(texts, n: int = 28) -> list[str]:
    out = []
    for i, t in enumerate(texts):
        label = t if len(t) <= n else t[: n - 1] + "…"
        out.append(f"{i + 1}. {label}")
    return out
