"""Label geometry of plotly figures drawn in a real browser: every label inside its figure, and no
two labels on top of each other (titles, legend entries, tick labels, axis titles, bar texts)."""

from __future__ import annotations

LABELS_JS = r"""
(root) => {
  const kinds = {
    title: '.gtitle', legend: '.legendtext', xtick: '.xtick text', ytick: '.ytick text',
    xtitle: '.g-xtitle text', ytitle: '.g-ytitle text', bartext: '.bartext', textpoint: '.textpoint text', annotation: '.annotation-text',
  };
  const out = [];
  for (const plot of root.querySelectorAll('.js-plotly-plot')) {
    const svg = plot.querySelector('svg.main-svg');
    if (!svg) continue;
    const box = svg.getBoundingClientRect();
    const labels = [];
    for (const [kind, sel] of Object.entries(kinds)) {
      for (const el of plot.querySelectorAll(sel)) {
        const r = el.getBoundingClientRect();
        if (r.width < 1 || r.height < 1 || !(el.textContent || '').trim()) continue;
        labels.push({kind, text: el.textContent.trim().slice(0, 40), l: r.left, t: r.top, r: r.right, b: r.bottom});
      }
    }
    out.push({id: plot.closest('[id]') ? plot.closest('[id]').id : '',
              box: {l: box.left, t: box.top, r: box.right, b: box.bottom}, labels});
  }
  return out;
}
"""


def label_problems(figures: list[dict], tolerance: float = 1.0) -> list[str]:
    """Problems in the label boxes collected by ``LABELS_JS``: clipped or overlapping labels."""
    problems = []
    for fig in figures:
        box, labels = fig["box"], fig["labels"]
        for lab in labels:
            if (lab["l"] < box["l"] - tolerance or lab["r"] > box["r"] + tolerance or lab["t"] < box["t"] - tolerance
                    or lab["b"] > box["b"] + tolerance):
                problems.append(f"{fig['id']}: {lab['kind']} {lab['text']!r} is clipped by the figure's edge")
        for i, a in enumerate(labels):
            for b in labels[i + 1:]:
                w = min(a["r"], b["r"]) - max(a["l"], b["l"])
                h = min(a["b"], b["b"]) - max(a["t"], b["t"])
                if w > 2 and h > 2:
                    problems.append(f"{fig['id']}: {a['kind']} {a['text']!r} overlaps {b['kind']} {b['text']!r}")
    return problems


def page_label_problems(page, selector: str = "body") -> tuple[int, list[str]]:
    """(number of figures on screen, problems) for the plotly figures under ``selector``
    (figures in hidden tabs have no visible labels and are not counted)."""
    figures = [f for f in page.locator(selector).first.evaluate(LABELS_JS) if f["labels"]]
    return len(figures), label_problems(figures)


def figure_of(value):
    """A plot output as a plotly figure: the app sends some figures as Gradio's ``PlotData`` (plotly JSON
    made off the request path), which is decoded here the way the browser decodes it."""
    import json

    import plotly.graph_objects as go

    plot = getattr(value, "plot", None)
    if isinstance(plot, str) and getattr(value, "type", None) == "plotly":
        return go.Figure(json.loads(plot))
    return value
