"""Scoring a meaning-change flag against a labelled set of (caption, paraphrase, same meaning?) items.

The project's set is ``tests/paraphrase/data/meaning/meaning_eval.jsonl`` (how it was built and
labelled: the README beside it). A "positive" is a paraphrase that changed the meaning, so
precision is the share of flagged paraphrases that really changed it and recall the share of
meaning changes that were flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from paraclip.errors import DataError
from paraclip.files import parse_json, read_text

REQUIRED = ("id", "caption", "paraphrase", "same_meaning", "kind", "source", "split")


def read_labelled(path: str | Path) -> list[dict]:
    """The items of a labelled JSONL file (lines starting with ``#`` are comments); every damage is a
    DataError naming the file and line."""
    path = Path(path)
    items = []
    for line_no, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = parse_json(line, f"{path}:{line_no}")
        if not isinstance(item, dict):
            raise DataError(f"{path}:{line_no}: expected a JSON object per line, found {type(item).__name__}.")
        missing = [k for k in REQUIRED if k not in item]
        if missing:
            raise DataError(f"{path}:{line_no}: missing field(s) {', '.join(missing)}.")
        if not isinstance(item["same_meaning"], bool):
            raise DataError(f"{path}:{line_no}: field 'same_meaning' must be true or false, found "
                            f"{item['same_meaning']!r}.")
        items.append(item)
    return items


@dataclass(frozen=True)
class Score:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def row(self) -> str:
        return f"{self.precision:.3f} | {self.recall:.3f} | {self.f1:.3f} | {self.tp}/{self.fp}/{self.fn}/{self.tn}"


def score(flags: Sequence[bool], items: Sequence[dict]) -> Score:
    """Confusion counts of ``flags`` (True = meaning changed) against the items' labels."""
    if len(flags) != len(items):
        raise ValueError(f"{len(flags)} flags for {len(items)} items")
    tp = sum(f and not it["same_meaning"] for f, it in zip(flags, items))
    fp = sum(f and it["same_meaning"] for f, it in zip(flags, items))
    fn = sum((not f) and not it["same_meaning"] for f, it in zip(flags, items))
    return Score(tp, fp, fn, len(items) - tp - fp - fn)


@dataclass(frozen=True)
class Interval:
    """Percentile bootstrap intervals of precision and recall."""
    precision: tuple[float, float]
    recall: tuple[float, float]

    def row(self) -> str:
        def cell(bounds: tuple[float, float]) -> str:
            return "n/a" if bounds[0] != bounds[0] else f"{bounds[0]:.2f}-{bounds[1]:.2f}"  # NaN: nothing to count
        return f"{cell(self.precision)} | {cell(self.recall)}"


def interval(flags: Sequence[bool], items: Sequence[dict], level: float = 0.95, resamples: int = 2000,
             seed: int = 0, group: Callable[[dict], str] = lambda it: it["caption"]) -> Interval:
    """Bootstrap intervals that resample whole captions, not items: a caption's step-1 and step-2 texts come from one
    model call chain and share its words, so they are not independent draws (resampling items would make the
    interval too narrow)."""
    if len(flags) != len(items):
        raise ValueError(f"{len(flags)} flags for {len(items)} items")
    clusters: dict[str, list[int]] = {}
    for f, it in zip(flags, items):
        counts = clusters.setdefault(group(it), [0, 0, 0])  # tp, fp, fn
        changed = not it["same_meaning"]
        counts[0] += bool(f and changed)
        counts[1] += bool(f and not changed)
        counts[2] += bool(changed and not f)
    table = np.array(list(clusters.values()), dtype=float).reshape(-1, 3)
    draws = np.random.default_rng(seed).integers(0, len(table), size=(resamples, len(table)))
    tp, fp, fn = (table[draws].sum(axis=1)).T
    with np.errstate(invalid="ignore", divide="ignore"):
        precision, recall = tp / (tp + fp), tp / (tp + fn)
    tail = (1 - level) / 2 * 100

    def bounds(values: np.ndarray) -> tuple[float, float]:
        values = values[~np.isnan(values)]
        if not len(values):
            return (float("nan"), float("nan"))
        return (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))

    return Interval(bounds(precision), bounds(recall))
