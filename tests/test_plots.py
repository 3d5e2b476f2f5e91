"""Plot builders: DataFrame in, fixed-height plotly Figure out; bad input gives an annotated empty figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from paraclip import plots
from paraclip.results import EvalResult, results_frame


@pytest.fixture
def table() -> pd.DataFrame:
    results = [
        EvalResult(model="base", task="paraphrased-retrieval", metrics={"AO@1": 40.0, "JS@1": 30.0, "AO@10": 60.0,
                   "JS@10": 50.0}, main_metric="AO@10", source="s", n=10, seconds=1.0),
        EvalResult(model="paraclip", task="paraphrased-retrieval", metrics={"AO@1": 45.0, "JS@1": 35.0, "AO@10": 70.0,
                   "JS@10": 58.0}, main_metric="AO@10", source="s", n=10, seconds=1.0),
        EvalResult(model="base", task="STSB", metrics={"spearman": 80.0, "pearson": 81.0}, main_metric="spearman",
                   source="s", n=10, seconds=1.0),
        EvalResult(model="paraclip", task="STSB", metrics={"spearman": 84.0, "pearson": 83.0}, main_metric="spearman",
                   source="s", n=10, seconds=1.0),
    ]
    return results_frame(results)


def _annotation(fig: go.Figure) -> str:
    return " ".join(a.text for a in fig.layout.annotations)


def test_task_bars(table):
    fig = plots.task_bars(table)
    assert fig.layout.height == plots.HEIGHT
    assert [t.name for t in fig.data] == ["base", "paraclip"]
    assert list(fig.data[1].x) == ["paraphrased<br>AO@10", "STSB<br>spearman"]
    assert list(fig.data[1].y) == [70.0, 84.0]
    chosen = plots.task_bars(table, metrics=["JS@10"])
    assert list(chosen.data[0].y) == [50.0]


def test_rank_similarity_curves(table):
    fig = plots.rank_similarity_curves(table)
    assert fig.layout.height == plots.HEIGHT
    by_name = {t.hovertext: t for t in fig.data}
    assert set(by_name) == {"base AO@k", "base JS@k", "paraclip AO@k", "paraclip JS@k"}
    assert list(by_name["paraclip AO@k"].x) == [1, 10] and list(by_name["paraclip AO@k"].y) == [45.0, 70.0]
    assert by_name["base JS@k"].line.dash == "dash"
    # one legend entry per model, in the model's colour for both of its lines
    assert [t.name for t in fig.data if t.showlegend] == ["base", "paraclip"]
    assert by_name["base AO@k"].line.color == by_name["base JS@k"].line.color != by_name["paraclip AO@k"].line.color
    none = plots.rank_similarity_curves(table[table.task == "STSB"])
    assert "No AO@k" in _annotation(none) and not none.data


def test_sts_scatter():
    rng = np.random.default_rng(0)
    gold = rng.uniform(0, 5, 40)
    points = pd.concat([
        pd.DataFrame({"model": "base", "task": "STSB", "gold": gold, "cosine": gold / 5 + rng.normal(0, 0.3, 40)}),
        pd.DataFrame({"model": "paraclip", "task": "STSB", "gold": gold, "cosine": gold / 5}),
    ])
    fig = plots.sts_scatter(points)
    assert fig.layout.height == plots.HEIGHT and len(fig.data) == 2
    assert fig.data[1].name == "paraclip (ρ 100.0)"  # the perfectly monotone model
    assert "(STSB)" in fig.layout.title.text


def test_delta_bars():
    deltas = pd.DataFrame({"task": ["paraphrased-retrieval", "STSB"], "model": ["paraclip", "paraclip"],
                           "baseline": ["base", "base"], "metric": ["AO@10", "spearman"], "delta": [10.0, 4.0],
                           "ci_low": [6.0, -1.0], "ci_high": [13.0, 8.0]})
    fig = plots.delta_bars(deltas)
    bar = fig.data[0]
    assert list(bar.y) == [10.0, 4.0]
    assert list(bar.error_y.array) == [3.0, 4.0] and list(bar.error_y.arrayminus) == [4.0, 5.0]
    assert "difference" in fig.layout.yaxis.title.text
    forest = plots.delta_forest(deltas.assign(significant=[True, False]))
    point = forest.data[0]
    assert list(point.y) == ["paraphrased · AO@10", "STSB · spearman"] and list(point.x) == [10.0, 4.0]
    assert list(point.error_x.array) == [3.0, 4.0] and list(point.error_x.arrayminus) == [4.0, 5.0]
    assert list(point.marker.symbol) == ["diamond", "circle-open"]  # filled = the CI excludes 0


def test_metric_groups_put_one_scale_on_each_plot(table):
    assert plots.metric_groups(table) == ["paraphrased", "sts"]
    assert plots.metric_group("retrieval", "t2i_R@1") == "retrieval"
    assert plots.metric_group("vg-relation", "macro_accuracy") == "aro"
    assert plots.metric_group("STSB", "pearson") is None
    sts = plots.group_bars(table, "sts")
    assert [t.name for t in sts.data] == ["base", "paraclip"] and list(sts.data[1].x) == ["STSB"]
    assert list(sts.data[1].y) == [84.0] and sts.layout.height == plots.HEIGHT
    rank = plots.group_bars(table, "paraphrased")
    assert list(rank.data[0].x) == ["AO@1", "JS@1", "AO@10", "JS@10"]
    assert "No results" in _annotation(plots.group_bars(table, "aro"))


def test_long_model_names_are_shortened_for_legends():
    assert plots.short_name("mini-world ParaCLIP") == "mini-world ParaCLIP"
    assert plots.short_name("paraclip-mini@/tmp/pytest-of-root/pytest-7/test_x0/third-mini.pt") == \
        "paraclip-mini@…/third-mini.pt"
    two = plots.short_names(["m@/runs/a/final.pt", "m@/runs/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/final.pt",
                             "m@/runs/cccccccccccccccccccccccccccccccccc/final.pt"])
    assert len(set(two.values())) == 3 and two["m@/runs/a/final.pt"] == "m@/runs/a/final.pt"
    long = plots.short_name("x" * 20 + "-" + "y" * 40)
    assert len(long) == 32 and long.startswith("x" * 15) and long.endswith("y" * 16) and "…" in long


def test_the_legend_has_room_above_the_plot_for_long_model_names():
    long_names = ["untrained mini seed 0 (fallback)", "untrained mini seed 1 (fallback)", "job browser [a1b2c3d4]"]
    assert plots._legend_rows(["a", "b"]) == 1 and plots._legend_rows(long_names) == 3
    frame = pd.DataFrame({"label": long_names, "task": "STSB", "metric": "spearman", "value": [1.0, 2.0, 3.0]})
    fig = plots.group_bars(frame, "sts")
    assert fig.layout.margin.t >= 40 + 3 * 26 and fig.layout.legend.y >= 1 and fig.layout.legend.yanchor == "bottom"


def test_training_curves():
    log = pd.DataFrame({"step": [0, 10, 20, 30], "loss": [3.0, 2.5, 2.1, 1.9], "lr": [1e-5] * 4,
                        "val_stsb_spearman": [np.nan, 70.0, np.nan, 74.0]})
    fig = plots.training_curves(log, metrics=["loss", "val_stsb_spearman"])
    assert [t.name for t in fig.data] == ["loss", "val_stsb_spearman"]
    assert list(fig.data[1].x) == [10, 30]  # gaps dropped, not drawn as zeros
    assert fig.data[1].yaxis == "y2"
    assert len(plots.training_curves(log).data) == 3


def _training_log() -> pd.DataFrame:
    """A log like ``paraclip train`` writes: batch losses every step, held-out validation every 10."""
    steps = np.arange(0, 40, 2)
    log = pd.DataFrame({"step": steps, "loss": 3 - steps / 20, "loss_l1": 1 - steps / 60, "loss_l2": 1 - steps / 80,
                        "loss_l3": 1 - steps / 90, "lr": 1e-5})
    val = pd.DataFrame({"step": [10, 20, 30], "val_heldout_loss": [2.8, 2.6, 2.5], "val_heldout_loss_l1": [0.9] * 3,
                        "val_heldout_loss_l2": [0.8] * 3, "val_heldout_loss_l3": [0.7] * 3,
                        "val_heldout_r1_paraphrase_1": [30.0, 35.0, 38.0], "val_heldout_r1_paraphrase_2": [25, 30, 33],
                        "val_heldout_ao10": [50.0, 55.0, 58.0], "val_heldout_js10": [40.0, 44.0, 47.0],
                        "val_seconds": [1.2, 1.1, 1.3]})
    return pd.concat([log, val], ignore_index=True).sort_values("step", kind="stable")


def test_loss_curves_one_colour_per_term_and_validation_dotted_in_the_same_colour():
    fig = plots.loss_curves(_training_log())
    assert fig.layout.height == plots.HEIGHT
    by_column = {t.hovertext: t for t in fig.data}
    assert set(by_column) == {"loss", "loss_l1", "loss_l2", "loss_l3", "val_heldout_loss", "val_heldout_loss_l1",
                              "val_heldout_loss_l2", "val_heldout_loss_l3"}  # no lr, no scores, no seconds
    train_colours = [by_column[c].line.color for c in ("loss", "loss_l1", "loss_l2", "loss_l3")]
    assert len(set(train_colours)) == 4
    assert by_column["val_heldout_loss_l2"].line.color == by_column["loss_l2"].line.color
    assert by_column["val_heldout_loss_l2"].line.dash == "dot" and by_column["loss_l2"].line.dash == "solid"
    assert list(by_column["val_heldout_loss"].x) == [10, 20, 30]  # gaps dropped, not drawn as zeros
    assert [t.name for t in fig.data if t.showlegend is not False] == ["loss", "L1", "L2", "L3"]
    assert "held-out" in fig.layout.xaxis.title.text
    # a short legend: one row on a 400 px phone, so the plot keeps most of its height
    assert fig.layout.margin.t <= 40 + 26 and fig.layout.title.y == 1.0 and fig.layout.legend.y > 1


def test_validation_curves_scores_only_each_in_its_own_colour():
    fig = plots.validation_curves(_training_log())
    names = [t.name for t in fig.data]
    # the common val_heldout_ prefix dropped, short labels so the legend fits a phone in two rows
    assert names == ["R@1 para 1", "R@1 para 2", "AO@10", "JS@10"]
    assert len({(t.line.color, t.line.dash) for t in fig.data}) == 4
    picked = plots.validation_curves(_training_log(), metrics=["val_heldout_ao10", "loss"])
    assert [t.name for t in picked.data] == ["AO@10"]
    none = plots.validation_curves(_training_log()[["step", "loss"]])
    assert not none.data and "No validation metrics" in _annotation(none)
    assert not plots.loss_curves(pd.DataFrame({"step": [1], "lr": [0.1]})).data


def test_series_styles_never_repeat():
    styles = [tuple(plots.series_style(i).values()) for i in range(48)]
    assert len(set(styles)) == 48


@pytest.mark.parametrize("builder", [plots.task_bars, plots.rank_similarity_curves, plots.sts_scatter,
                                     plots.delta_bars, plots.delta_forest, plots.training_curves,
                                     plots.loss_curves, plots.validation_curves,
                                     lambda df: plots.group_bars(df, "sts")])
def test_fail_soft(builder):
    for bad in (pd.DataFrame(), None, pd.DataFrame({"unrelated": [1, 2]}), "not a frame"):
        fig = builder(bad)
        assert isinstance(fig, go.Figure) and fig.layout.height == plots.HEIGHT
        assert not fig.data and _annotation(fig)
