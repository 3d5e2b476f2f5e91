"""Explore's text-similarity figure: a pure function from a long table of cosines to a plotly figure, with
the fixed height, template and soft failure of :mod:`paraclip.plots` (one heatmap per model, laid out for a
400 px phone)."""

from __future__ import annotations

import plotly.graph_objects as go

from paraclip.plots import HEIGHT, TEMPLATE, empty_figure, short_names

TEMPLATE_SPEC = TEMPLATE.to_plotly_json()  # the template as plain JSON, for specs sent without a go.Figure


def similarity_heatmaps(frame, title: str = "Text similarity under each model") -> go.Figure:
    """One cosine-similarity heatmap per model from a long frame (model, text_a, text_b, cosine)."""
    if frame is None or len(frame) == 0:
        return empty_figure("Type a query and a paraphrase.", title)
    missing = [c for c in ("model", "text_a", "text_b", "cosine") if c not in frame.columns]
    if missing:
        return empty_figure(f"Missing column(s): {', '.join(missing)}.", title)
    spec = similarity_rows_spec(zip(frame["model"], frame["text_a"], frame["text_b"], frame["cosine"]), title)
    if spec is None or isinstance(spec, str):
        return empty_figure(spec or "Type a query and a paraphrase.", title)
    # plain dicts, unvalidated: plotly's validation was 50 of an Explore query's 70 ms, all of it
    # holding the GIL, so concurrent queries queued behind it (issue 22 §9)
    return go.Figure(spec, _validate=False)


def similarity_rows_spec(rows, title: str = "Text similarity under each model") -> dict | str | None:
    """The figure of :func:`similarity_heatmaps` from (model, text_a, text_b, cosine) rows, as a plain plotly
    JSON spec (lists, no numpy): a server can send it without building a DataFrame or a ``go.Figure`` (≈ 6 ms
    of an Explore query). A message (str) when it cannot be drawn, None when there are no rows.

    The panels are laid out by hand (an x/y axis pair per model) rather than with
    ``plotly.subplots.make_subplots``, which costs tens of milliseconds per call."""
    try:
        by_model: dict = {}
        for model, a, b, c in rows:
            by_model.setdefault(model, {})[(a, b)] = float(c)
        if not by_model:
            return None
        models = list(by_model)
        names = short_names(models)
        spacing = 0.08
        width = (1 - spacing * (len(models) - 1)) / len(models)
        traces, layout, titles = [], {}, []
        longest = 0
        for col, model in enumerate(models):
            cosine = by_model[model]
            texts = list(dict.fromkeys(a for a, _ in cosine))
            z = [[cosine.get((a, b)) for b in texts] for a in texts]  # None: a pair not given (a gap)
            suffix = "" if col == 0 else str(col + 1)
            left = col * (width + spacing)
            labels = _short(texts)
            longest = max(longest, *(len(x) for x in labels))
            numbers = [str(i + 1) for i in range(len(texts))]  # columns by number: names side by side overlap
            cells = [[None if v is None else round(v, 2) for v in row] for row in z]
            traces.append(dict(type="heatmap", z=z, x=numbers, y=labels, zmin=-1, zmax=1, colorscale="RdBu",
                               reversescale=True, showscale=False, text=cells, texttemplate="%{text}",
                               textfont=dict(size=13), xaxis=f"x{suffix}", yaxis=f"y{suffix}",
                               hovertemplate=f"%{{y}} · text %{{x}}: %{{z:.3f}}<extra>{html_escape(model)}</extra>"))
            layout[f"xaxis{suffix}"] = dict(domain=[left, left + width], anchor=f"y{suffix}", tickangle=0,
                                            type="category")
            layout[f"yaxis{suffix}"] = dict(domain=[0, 1], anchor=f"x{suffix}", autorange="reversed",
                                            showticklabels=col == 0)
            # the panel's model over it, in two short lines so that two panels fit a 400 px phone
            titles.append(dict(text=_wrap(names[str(model)]), x=left + width / 2, y=1.0, xref="paper", yref="paper",
                               xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=12)))
        left_margin = 12 + 7 * min(longest, 30)
        return dict(data=traces, layout=dict(
            title=dict(text=title, x=0.01, xanchor="left", y=1.0, yanchor="top", yref="container", pad=dict(t=8),
                       font=dict(size=15)),
            height=HEIGHT, template=TEMPLATE_SPEC, margin=dict(l=left_margin, r=12, t=96, b=40), annotations=titles,
            **layout))
    except Exception as exc:  # noqa: BLE001 - a plot never breaks the page
        return f"Could not draw this plot: {type(exc).__name__}: {exc}"


def html_escape(text) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _wrap(label: str, width: int = 18) -> str:
    """``label`` broken at a space into lines of about ``width`` characters (plotly's ``<br>``)."""
    lines, line = [], ""
    for word in label.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "<br>".join(html_escape(x) for x in lines)


def _short(texts, n: int = 28) -> list[str]:
    out = []
    for i, t in enumerate(texts):
        label = t if len(t) <= n else t[: n - 1] + "…"
        out.append(f"{i + 1}. {label}")
    return out


__all__ = ["similarity_heatmaps", "similarity_rows_spec"]
