import pandas as pd

from paraclip.plots import HEIGHT
from workbench.plots import similarity_heatmaps


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
    # side by side without overlap, titled with the model names, one colour bar
    left, right = fig.layout.xaxis.domain, fig.layout.xaxis2.domain
    assert left[1] < right[0] and left[0] == 0 and abs(right[1] - 1) < 1e-9
    assert [a.text for a in fig.layout.annotations] == ["baseline", "ParaCLIP"]
    assert [bool(t.showscale) for t in fig.data] == [False, True]
    assert fig.data[0].y[0].startswith("1. a red square")


def test_the_heatmap_fails_soft():
    assert "Missing column" in similarity_heatmaps(pd.DataFrame({"x": [1]})).layout.annotations[0].text
    assert similarity_heatmaps(pd.DataFrame()).layout.annotations[0].text.startswith("Type a query")
    broken = _frame().assign(cosine="not a number")
    assert "Could not draw" in similarity_heatmaps(broken).layout.annotations[0].text
