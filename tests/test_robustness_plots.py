"""The robustness sweep's figure: one column per model, paraphrase dots, mean and worst markers; empty
or malformed input gives an annotated empty figure."""

from __future__ import annotations

import pandas as pd

from paraclip.plots import HEIGHT
from paraclip.robustness_plots import robustness_figure


def _table():
    rows = []
    for model, values in (("base", [90.0, 40.0, 70.0]), ("tuned", [95.0, 85.0, 88.0])):
        for text, value in zip(("p1", "p2", "p3"), values):
            rows.append({"model": model, "paraphrase": text, "metric": "AO@10", "value": value})
            rows.append({"model": model, "paraphrase": text, "metric": "JS@10", "value": value / 2})
    return pd.DataFrame(rows)


def test_figure_has_dots_mean_and_worst_per_model():
    fig = robustness_figure(_table())
    assert fig.layout.height == HEIGHT and fig.layout.title.text.startswith("AO@10 of each paraphrase")
    worst = [t for t in fig.data if t.name == "worst"]
    assert [list(t.y) for t in worst] == [[40.0], [85.0]] and list(worst[0].hovertext) == ["p2"]
    means = [t.y[0] for t in fig.data if t.name == "mean"]
    assert means == [200 / 3, 268 / 3]
    dots = [t for t in fig.data if t.name == "paraphrases"]
    assert len(dots) == 2 and list(dots[0].hovertext) == ["p1", "p2", "p3"]
    assert [t.showlegend for t in fig.data].count(True) == 3
    js = robustness_figure(_table(), metric="JS@10")
    assert [t.y[0] for t in js.data if t.name == "worst"] == [20.0, 42.5]


def test_empty_and_malformed_input():
    for table, message in ((None, "No sweep yet"), (pd.DataFrame({"model": ["a"]}), "Missing column"),
                           (_table(), "No AO@5")):
        fig = robustness_figure(table, metric="AO@5" if table is not None and len(table.columns) > 2 else None)
        assert fig.layout.height == HEIGHT and message in fig.layout.annotations[0].text
