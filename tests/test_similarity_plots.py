"""Explore's text-similarity heatmaps (paraclip/similarity_plots.py)."""

import pandas as pd

from paraclip.plots import HEIGHT
from paraclip.similarity_plots import similarity_heatmaps


def _frame():
    rows = []
    for model, offdiag in [("baseline", 0.25), ("ParaCLIP", 0.9)]:
        for a in ["a red square", "one crimson block"]:
            for b in ["a red square", "one crimson block"]:
                rows.append({"model": model, "text_a": a, "text_b": b, "cosine": 1.0 if a == b else offdiag})
    return pd.DataFrame(rows)


def test_one_heatmap_per_model_on_its_own_axes():
    fig = similarity_heatmaps(_frame())
    assert fig.layout.height == HEIGHT
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    assert [(t.xaxis, t.yaxis) for t in fig.data] == [("x", "y"), ("x2", "y2")]
    assert fig.data[0].z[0][1] == 0.25 and fig.data[1].z[0][1] == 0.9
    assert fig.data[1].z[1][1] == 1.0
    # side by side without overlap, titled with the model names; the values are written in the cells, so no
    # colour bar takes a phone's width
    left, right = fig.layout.xaxis.domain, fig.layout.xaxis2.domain
    assert left[1] < right[0] and left[0] == 0 and abs(right[1] - 1) < 1e-9
    assert [a.text for a in fig.layout.annotations] == ["baseline", "ParaCLIP"]
    assert [bool(t.showscale) for t in fig.data] == [False, False]
    assert all(t.texttemplate == "%{text}" for t in fig.data)
    assert fig.data[0].y[0].startswith("1. a red square") and list(fig.data[0].x) == ["1", "2"]


def test_long_model_names_wrap_over_their_panel_and_the_left_margin_fits_the_labels():
    frame = _frame().replace({"baseline": "mini-world CLIP baseline seed 0", "ParaCLIP": "mini-world ParaCLIP seed 0"})
    fig = similarity_heatmaps(frame)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["mini-world CLIP<br>baseline seed 0", "mini-world<br>ParaCLIP seed 0"]
    assert all(len(line) <= 18 for t in titles for line in t.split("<br>"))
    assert fig.layout.margin.l == 12 + 7 * len("2. one crimson block")
    assert fig.layout.title.y == 1.0 and fig.layout.title.yref == "container"


def test_the_heatmap_fails_soft():
    assert "Missing column" in similarity_heatmaps(pd.DataFrame({"x": [1]})).layout.annotations[0].text
    assert similarity_heatmaps(pd.DataFrame()).layout.annotations[0].text.startswith("Type a query")
    broken = _frame().assign(cosine="not a number")
    assert "Could not draw" in similarity_heatmaps(broken).layout.annotations[0].text
