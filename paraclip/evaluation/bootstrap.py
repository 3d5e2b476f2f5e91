"""Paired bootstrap confidence intervals for differences between models on one task.

The models are scored on the same items (pairs, images, examples), so the honest question is
whether the *difference* is larger than item-sampling noise. Each bootstrap replicate draws
one resample of item indices (with replacement) and applies it to every model's per-item
arrays through the evaluator's own ``metrics(items, index)``; the percentile interval of
``metric(model) - metric(baseline)`` over the replicates is the confidence interval (Efron &
Tibshirani, 1993, ch. 13; paired resampling as in Koehn, 2004, for MT metrics). The baseline
is the first model.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from paraclip.evaluation.base import Evaluator, ItemScores

DEFAULT_N_BOOT = 1000
DELTA_COLUMNS = ["task", "model", "baseline", "metric", "value", "baseline_value", "delta", "ci_low", "ci_high",
                 "significant", "n", "n_boot", "confidence"]


def _length(items: ItemScores) -> int:
    lengths = {len(np.asarray(v)) for v in items.values()}
    if len(lengths) != 1:
        raise ValueError(f"per-item arrays differ in length: {sorted(lengths)}")
    return lengths.pop()


def _strata(evaluator: Evaluator, items: ItemScores) -> list[np.ndarray] | None:
    """Item groups to resample within (an evaluator's ``bootstrap_strata``, e.g. the true classes), or None."""
    strata_of = getattr(evaluator, "bootstrap_strata", None)
    if not callable(strata_of):
        return None
    labels = np.asarray(strata_of(items))
    return [np.flatnonzero(labels == value) for value in np.unique(labels)]


def paired_bootstrap(evaluator: Evaluator, items_by_model: Mapping[str, ItemScores], baseline: str | None = None,
                     n_boot: int = DEFAULT_N_BOOT, confidence: float = 0.95, seed: int = 0,
                     metrics: Sequence[str] | None = None, task: str | None = None):
    """One row per (model ≠ baseline, metric): the observed difference and its paired bootstrap CI.

    ``items_by_model`` maps a model label to its per-item arrays for ``evaluator`` (all of the
    same length: the same items in the same order). Returns a pandas DataFrame with
    :data:`DELTA_COLUMNS`; ``significant`` is True when the interval excludes 0.
    """
    import pandas as pd

    labels = list(items_by_model)
    if not labels:
        return pd.DataFrame(columns=DELTA_COLUMNS)
    baseline = baseline if baseline is not None else labels[0]
    if baseline not in items_by_model:
        raise KeyError(f"baseline {baseline!r} is not among the models {labels}")
    items = {m: {k: np.asarray(v) for k, v in items_by_model[m].items()} for m in labels}
    n = _length(items[baseline])
    for m in labels:
        if _length(items[m]) != n:
            raise ValueError(f"{m!r} has {_length(items[m])} items for {task or evaluator.name!r}, the baseline "
                             f"{baseline!r} has {n}: a paired comparison needs the same items.")
    observed = {m: evaluator.metrics(items[m]) for m in labels}
    names = list(metrics) if metrics is not None else [k for k in observed[baseline]]
    others = [m for m in labels if m != baseline]
    if not others or n == 0:
        return pd.DataFrame(columns=DELTA_COLUMNS)

    rng = np.random.default_rng(seed)
    deltas = np.full((n_boot, len(others), len(names)), np.nan)
    strata = _strata(evaluator, items[baseline])
    for b in range(n_boot):
        index = (rng.integers(0, n, size=n) if strata is None
                 else np.concatenate([group[rng.integers(0, len(group), size=len(group))] for group in strata]))
        base = evaluator.metrics(items[baseline], index)
        for j, m in enumerate(others):
            cur = evaluator.metrics(items[m], index)
            deltas[b, j] = [cur.get(name, np.nan) - base.get(name, np.nan) for name in names]

    alpha = (1.0 - confidence) / 2.0
    rows = []
    for j, m in enumerate(others):
        for i, name in enumerate(names):
            draws = deltas[:, j, i]
            draws = draws[~np.isnan(draws)]
            low, high = (np.quantile(draws, [alpha, 1 - alpha]) if draws.size else (np.nan, np.nan))
            value, base_value = observed[m].get(name, np.nan), observed[baseline].get(name, np.nan)
            rows.append({
                "task": task or evaluator.name, "model": m, "baseline": baseline, "metric": name,
                "value": value, "baseline_value": base_value, "delta": value - base_value,
                "ci_low": float(low), "ci_high": float(high),
                "significant": bool(draws.size and (low > 0 or high < 0)),
                "n": n, "n_boot": n_boot, "confidence": confidence,
            })
    return pd.DataFrame(rows, columns=DELTA_COLUMNS)


__all__ = ["DEFAULT_N_BOOT", "DELTA_COLUMNS", "paired_bootstrap"]
