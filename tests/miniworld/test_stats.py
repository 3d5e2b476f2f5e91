"""Seed-level t-intervals, bootstrap p-values, Holm, and the CI-bound verdicts of the target."""

from __future__ import annotations

import math

import numpy as np
import pytest

from paraclip.miniworld.report import MET, NOT_MET, POINT, TARGET, Criterion
from paraclip.miniworld.stats import bootstrap_p_value, holm, seed_mean_bootstrap, seed_t_interval


def test_seed_t_interval_is_students():
    low, high = seed_t_interval([-1.4, -4.6, -0.5])  # the per-seed R@1 differences of the first report
    mean, sd = np.mean([-1.4, -4.6, -0.5]), np.std([-1.4, -4.6, -0.5], ddof=1)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2 df)
    assert low == pytest.approx(mean - half) and high == pytest.approx(mean + half)
    assert low < -7 and high > 2  # [-7.5, +3.2]: the interval the issue quotes
    assert all(math.isnan(v) for v in seed_t_interval([1.0]))


def test_bootstrap_p_value():
    assert bootstrap_p_value(np.ones(999)) == pytest.approx(2 / 1000)  # never exactly 0
    assert bootstrap_p_value(np.r_[-np.ones(500), np.ones(500)]) == 1.0
    assert math.isnan(bootstrap_p_value(np.array([])))


def test_holm_step_down():
    # sorted: 0.001 <= 0.05/4, 0.012 <= 0.05/3, 0.03 > 0.05/2 -> stop
    assert holm([0.03, 0.001, 0.012, 0.04]) == [False, True, True, False]
    assert holm([0.01, float("nan")]) == [True, False]


class _MeanEvaluator:
    """Per-item scores; the metric is their mean × 100."""

    def metrics(self, items, index=None):
        x = items["x"] if index is None else items["x"][index]
        return {"m": 100.0 * float(np.mean(x))}


def test_seed_mean_bootstrap_pairs_items_across_seeds():
    rng = np.random.default_rng(0)
    base = [{"x": rng.random(400)} for _ in range(3)]
    better = [{"x": b["x"] + 0.05} for b in base]  # +5 points on every item of every seed
    out = seed_mean_bootstrap(_MeanEvaluator(), base, better, ["m"], n_boot=200)["m"]
    assert out["delta"] == pytest.approx(5.0) and out["ci_low"] == pytest.approx(5.0)
    assert out["p_boot"] == pytest.approx(2 / 201)


def test_a_criterion_is_judged_on_its_ci_bound():
    r1 = next(c for c in TARGET if c.metric == "t2i_R@1")
    assert r1.verdict(-2.2, -3.8) == POINT  # the first report's "met" at -2.2 whose CI reached -3.8
    assert r1.verdict(-2.2, -2.9) == MET and r1.verdict(-3.5, -4.0) == NOT_MET
    gain = Criterion("gain", "t", "m", 5.0, "gain")
    assert gain.verdict(70.7, 69.7) == MET and gain.verdict(6.0, 4.0) == POINT and gain.verdict(4.0, 3.0) == NOT_MET
    assert gain.verdict(float("nan"), 0.0) == NOT_MET and gain.verdict(6.0, float("nan")) == POINT


def test_one_seed_has_no_seed_verdict():
    import pandas as pd

    from paraclip.miniworld.report import NO_INTERVAL, overall, target_table

    rows = [{"model": "ParaCLIP", "task": c.task, "metric": c.metric, "delta": 10.0, "ci_low": 9.0, "ci_high": 11.0,
             "seed_ci_low": float("nan"), "seed_ci_high": float("nan")} for c in TARGET]
    targets = target_table(pd.DataFrame(rows))
    assert overall(targets) == MET and overall(targets, "verdict_seeds") == NO_INTERVAL
