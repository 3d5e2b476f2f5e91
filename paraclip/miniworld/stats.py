"""Intervals and tests for the mini-world report: item-level bootstrap, seed-level t, Holm.

* :func:`seed_mean_bootstrap` — paired bootstrap over evaluation items (Efron & Tibshirani,
  1993) of the seed mean of ``metric(model) − metric(reference)``: each replicate resamples the
  items once and applies the same resample to every seed's two models. It covers item-sampling
  noise with the trained models held fixed.
* :func:`seed_t_interval` — Student-t interval of the mean over seeds of the per-seed
  differences: training noise (each seed trains its own baseline and fine-tunes it), with the
  items held fixed. With 3 seeds it is wide (t = 4.30 at 95 %), and that is the point.
* :func:`holm` — Holm's (1979) step-down adjustment of the bootstrap p-values of a family of
  comparisons, for the report's multiple-comparisons marks.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np


def seed_mean_bootstrap(evaluator, reference_items: Sequence[dict], new_items: Sequence[dict],
                        metrics: Sequence[str], n_boot: int = 1000, seed: int = 0,
                        confidence: float = 0.95) -> dict[str, dict[str, float]]:
    """Per metric: the observed seed-mean difference, its percentile CI and a two-sided bootstrap
    p-value for "no difference" (see the module docstring)."""
    n = len(next(iter(reference_items[0].values())))
    for items in list(reference_items) + list(new_items):
        if len(next(iter(items.values()))) != n:
            raise ValueError("every seed and model must be scored on the same items")

    def delta(index):
        diffs = []
        for ref, new in zip(reference_items, new_items):
            mr, mn = evaluator.metrics(ref, index), evaluator.metrics(new, index)
            diffs.append([mn.get(m, np.nan) - mr.get(m, np.nan) for m in metrics])
        with warnings.catch_warnings():  # a metric undefined for every seed stays nan, reported as such
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(np.array(diffs, dtype=float), axis=0)

    observed = delta(None)
    rng = np.random.default_rng(seed)
    draws = np.array([delta(rng.integers(0, n, size=n)) for _ in range(n_boot)]).reshape(n_boot, len(metrics))
    alpha = (1 - confidence) / 2
    out = {}
    for j, m in enumerate(metrics):
        col = draws[:, j][~np.isnan(draws[:, j])]
        low, high = np.quantile(col, [alpha, 1 - alpha]) if col.size else (np.nan, np.nan)
        out[m] = {"delta": float(observed[j]), "ci_low": float(low), "ci_high": float(high), "n": n,
                  "p_boot": bootstrap_p_value(col)}
    return out


def bootstrap_p_value(draws: np.ndarray) -> float:
    """Two-sided p-value of "the difference is 0" from bootstrap draws of the difference: twice
    the smaller tail share at 0, with the +1 correction so that it is never 0 (Davison & Hinkley,
    1997, eq. 4.11)."""
    draws = np.asarray(draws, dtype=float)
    if draws.size == 0:
        return float("nan")
    below, above = (draws <= 0).sum(), (draws >= 0).sum()
    return float(min(1.0, 2 * (min(below, above) + 1) / (draws.size + 1)))


def seed_t_interval(per_seed: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``per_seed`` (NaN with fewer than two seeds)."""
    from scipy import stats

    values = np.asarray([v for v in per_seed if not math.isnan(v)], dtype=float)
    if values.size < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    return float(values.mean() - half), float(values.mean() + half)


def holm(p_values: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Which hypotheses Holm's step-down procedure rejects at family-wise error ``alpha`` (NaN: never)."""
    p = [(v, i) for i, v in enumerate(p_values) if not math.isnan(v)]
    p.sort()
    rejected = [False] * len(p_values)
    m = len(p)
    for rank, (value, i) in enumerate(p):
        if value > alpha / (m - rank):
            break
        rejected[i] = True
    return rejected
