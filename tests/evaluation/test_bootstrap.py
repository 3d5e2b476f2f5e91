"""Paired bootstrap: coverage of the true difference on simulated data, and the table it returns."""

from __future__ import annotations

import numpy as np
import pytest

from paraclip.evaluation.base import Evaluator, select
from paraclip.evaluation.bootstrap import DELTA_COLUMNS, paired_bootstrap


class MeanScore(Evaluator):
    """Metric = mean of a per-item score ×100 (like AO@k or accuracy)."""

    name = "mean-score"
    primary_metric = "score"

    def item_scores(self, encoder):
        raise NotImplementedError

    def metrics(self, items, index=None):
        items = select(items, index)
        return {"score": 100.0 * float(np.mean(items["x"]))}


def test_ci_covers_the_true_difference_at_about_the_nominal_rate():
    """Per-item scores of two models on the same items are correlated (shared item difficulty);
    the true difference of population means is 0.05 (5 points). A 95% CI should contain it in
    about 95% of simulated evaluations."""
    rng = np.random.default_rng(12345)
    ev = MeanScore()
    n_sims, n_items, true_delta = 200, 120, 5.0
    covered, widths = 0, []
    for sim in range(n_sims):
        difficulty = rng.uniform(0.1, 0.9, n_items)
        a = rng.binomial(1, difficulty).astype(float)
        b = rng.binomial(1, np.clip(difficulty + 0.05, 0, 1)).astype(float)
        # items never have difficulty beyond [0.1, 0.95], so the expected difference is exactly 0.05
        frame = paired_bootstrap(ev, {"base": {"x": a}, "new": {"x": b}}, n_boot=200, seed=sim)
        row = frame.iloc[0]
        covered += row.ci_low <= true_delta <= row.ci_high
        widths.append(row.ci_high - row.ci_low)
    rate = covered / n_sims
    # binomial sd at p=0.95, n=200 is 1.5 points; percentile intervals run slightly narrow at this n
    assert 0.89 <= rate <= 0.99, rate
    assert np.median(widths) > 0


def test_pairing_makes_shared_noise_cancel():
    rng = np.random.default_rng(0)
    shared = rng.normal(0.5, 0.3, 400)
    base = {"x": shared}
    new = {"x": shared + 0.01}  # the same items, every one 1 point better
    row = paired_bootstrap(MeanScore(), {"base": base, "new": new}, n_boot=200).iloc[0]
    assert row.delta == pytest.approx(1.0)
    assert row.ci_low == pytest.approx(1.0) and row.ci_high == pytest.approx(1.0)
    assert row.significant


def test_identical_models_have_a_zero_interval_and_table_columns():
    items = {"x": np.linspace(0, 1, 50)}
    frame = paired_bootstrap(MeanScore(), {"a": items, "b": items, "c": {"x": items["x"][::-1].copy()}},
                             n_boot=100, task="toy")
    assert list(frame.columns) == DELTA_COLUMNS
    assert list(frame["model"]) == ["b", "c"] and set(frame["baseline"]) == {"a"}
    b = frame.iloc[0]
    assert (b.delta, b.ci_low, b.ci_high, b.significant) == (0.0, 0.0, 0.0, False)
    assert frame.iloc[1].delta == pytest.approx(0.0)  # same values, other order: same mean
    assert frame.iloc[1].ci_low < 0 < frame.iloc[1].ci_high  # but not the same items: the CI is wide


def test_unpaired_items_are_refused():
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap(MeanScore(), {"a": {"x": np.ones(5)}, "b": {"x": np.ones(6)}})


def test_one_model_gives_an_empty_table():
    frame = paired_bootstrap(MeanScore(), {"a": {"x": np.ones(5)}})
    assert frame.empty and list(frame.columns) == DELTA_COLUMNS
