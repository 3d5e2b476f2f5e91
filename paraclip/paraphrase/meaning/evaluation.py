"""Scoring a meaning-change flag against a labelled set of (caption, paraphrase, same meaning?) items.

The project's set is ``tests/paraphrase/data/meaning/meaning_eval.jsonl`` (how it was built and
labelled: the README beside it). A "positive" is a paraphrase that changed the meaning, so
precision is the share of flagged paraphrases that really changed it and recall the share of
meaning changes that were flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

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
