"""The evaluator interface (in the style of sentence-transformers evaluators).

An evaluator is configured with its data, then called on an encoder:
``evaluator(encoder) -> dict[str, float]``. It has no side effects (no files written,
no printing). To allow paired bootstrap comparisons it splits into two steps:
``item_scores(encoder)`` returns per-item arrays (all of the same length ``n``, one row
per query / pair / example), and ``metrics(items, index)`` turns them, optionally
resampled by ``index``, into the metric dict. ``primary_metric`` names the headline.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod

import numpy as np

from paraclip.results import EvalResult

ItemScores = dict[str, np.ndarray]


class Evaluator(ABC):
    name: str = "task"
    primary_metric: str = "score"
    source: str = ""
    data_notes: tuple[str, ...] = ()  # one-line remarks about the data (repeats, dropped rows) for people

    @abstractmethod
    def item_scores(self, encoder) -> ItemScores:
        """Per-item arrays computed with ``encoder`` (same length for every key)."""

    @abstractmethod
    def metrics(self, items: ItemScores, index: np.ndarray | None = None) -> dict[str, float]:
        """Metrics from per-item arrays; ``index`` selects (with repetition) a resample."""

    def __call__(self, encoder) -> dict[str, float]:
        return self.metrics(self.item_scores(encoder))

    def __len__(self) -> int:
        return 0

    def why_undefined(self, items: ItemScores, metric: str) -> str:
        """Why ``metric`` is NaN on these items (kept in the result's ``notes``; the JSON has null)."""
        return f"{metric} is not defined on these {len(next(iter(items.values()), []))} items"

    def evaluate(self, encoder, model: str | None = None, pretrained: str | None = None) -> EvalResult:
        """Run and wrap as an :class:`EvalResult` (per-item arrays kept in ``details``)."""
        start = time.perf_counter()
        items = self.item_scores(encoder)
        metrics = self.metrics(items)
        notes = {name: self.why_undefined(items, name) for name, value in metrics.items()
                 if isinstance(value, float) and math.isnan(value)}
        return EvalResult(
            model=model or getattr(encoder, "name", "model"),
            pretrained=pretrained if pretrained is not None else getattr(encoder, "pretrained", None),
            task=self.name,
            metrics=metrics,
            main_metric=self.primary_metric,
            source=self.source,
            n=int(len(next(iter(items.values())))) if items else 0,
            seconds=time.perf_counter() - start,
            details={"items": {k: np.asarray(v).tolist() for k, v in items.items()}},
            notes=notes,
        )


def select(items: ItemScores, index: np.ndarray | None) -> ItemScores:
    """Apply a (bootstrap) index to every per-item array."""
    if index is None:
        return items
    return {k: np.asarray(v)[index] for k, v in items.items()}
