"""Plot builders the library does not have (pure: DataFrame -> plotly Figure, fixed height, soft failure)."""

from __future__ import annotations

import plotly.graph_objects as go

from paraclip.plots import HEIGHT, empty_figure


def similarity_heatmaps(frame, title: str = "Text similarity under each model") -> go.Figure:
    """One cosine-similarity heatmap per model from a long frame (model, text_a, text_b, cosine)."""
    from plotly.subplots import make_subplots

    try:
        if frame is None or len(frame) == 0:
            return empty_figure("Type a query and a paraphrase.", title)
        missing = [c for c in ("model", "text_a", "text_b", "cosine") if c not in frame.columns]
        if missing:
            return empty_figure(f"Missing column(s): {', '.join(missing)}.", title)
        models = list(dict.fromkeys(frame["model"]))
        fig = make_subplots(rows=1, cols=len(models), subplot_titles=[str(m) for m in models],
                            horizontal_spacing=0.12)
        for col, model in enumerate(models, 1):
            part = frame[frame["model"] == model]
            texts = list(dict.fromkeys(part["text_a"]))
            grid = part.pivot_table(index="text_a", columns="text_b", values="cosine", sort=False)
            grid = grid.reindex(index=texts, columns=texts)
            fig.add_heatmap(z=grid.values, x=_short(texts), y=_short(texts), zmin=-1, zmax=1, colorscale="RdBu",
                            reversescale=True, showscale=col == len(models), text=grid.round(2).values,
                            texttemplate="%{text}", row=1, col=col)
            fig.update_yaxes(autorange="reversed", showticklabels=col == 1, row=1, col=col)
        fig.update_layout(title=title, height=HEIGHT, template="plotly_white", margin=dict(l=140, r=20, t=80, b=80))
        return fig
    except Exception as exc:  # noqa: BLE001 - a plot never breaks the page
        return empty_figure(f"Could not draw this plot: {type(exc).__name__}: {exc}", title)


def _short(texts, n: int = 28) -> list[str]:
    out = []
    for i, t in enumerate(texts):
        label = t if len(t) <= n else t[: n - 1] + "…"
        out.append(f"{i + 1}. {label}")
    return out
