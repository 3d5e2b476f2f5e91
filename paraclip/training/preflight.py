"""Checks before a training run starts, cheap enough for a form: which records of a paraphrase JSONL can be
trained on (:func:`paraclip.paraphrase.records.trainable_problem`, the one rule), which of them have no
image id, and how many of their images the image source holds.

The trainer itself checks all of this again when it reads the data (:mod:`paraclip.training.data`); these
are for saying so before a job is started (the app's Train tab words the findings as advice). Records
without image ids can still train the text-only loss terms: :func:`with_standin_ids` gives them ids.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from paraclip.paraphrase.records import TEXT_FIELDS, trainable_problem


@dataclass
class DataSummary:
    """What a paraphrase JSONL holds for training with some text fields."""

    lines: int = 0
    usable: int = 0  # trainable: status ok, not rejected in review, with the texts the loss needs
    without_id: int = 0  # usable records that have no image id
    ids: set[str] = field(default_factory=set)  # the image ids of the usable records
    first_missing_id_line: int | None = None
    bad_line: int | None = None  # the first line that is not JSON (reading stops there)
    unusable: Counter = field(default_factory=Counter)  # why the other records cannot be trained on

    def unusable_text(self, most: int = 3) -> str:
        """The commonest reasons records cannot be trained on: ``2 × status 'failed', 1 × no paraphrase_2``."""
        return ", ".join(f"{n} × {why}" for why, n in self.unusable.most_common(most))


def image_id_of(record: dict) -> str:
    """The record's image id as text ("" when it has none: absent, null or blank; 0 is an id)."""
    value = record.get("image_id")
    return "" if value is None else str(value).strip()


def scan_records(path: str | os.PathLike, text_fields: Sequence[str] = TEXT_FIELDS) -> DataSummary:
    """Count the trainable records of a paraphrase JSONL and collect their image ids. A missing file raises
    FileNotFoundError; a line that is not JSON ends the scan with :attr:`DataSummary.bad_line` set."""
    summary = DataSummary()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            summary.lines += 1
            try:
                rec = json.loads(line)
            except ValueError:
                summary.bad_line = line_no
                return summary
            problem = trainable_problem(rec, text_fields) if isinstance(rec, dict) else "not a JSON object"
            if problem is not None:
                summary.unusable[problem] += 1
                continue
            summary.usable += 1
            image_id = image_id_of(rec)
            if image_id:
                summary.ids.add(image_id)
            else:
                summary.without_id += 1
                summary.first_missing_id_line = summary.first_missing_id_line or line_no
    return summary


@dataclass
class ImagesFound:
    """How many of some image ids an image source holds."""

    found: int = 0
    source: str = ""  # "N images"; "" when there is no source or it cannot be read

    @property
    def readable(self) -> bool:
        return bool(self.source)


def images_found(image_spec: str | os.PathLike | None, ids: set[str]) -> ImagesFound:
    """How many of ``ids`` have an image in ``image_spec`` (a folder, an image list, tar shards: what the
    trainer's ``images`` takes); nothing found and no description when there is no readable source."""
    from paraclip.errors import ParaclipError
    from paraclip.training.data import ImageIndex

    if not image_spec or not Path(str(image_spec)).exists():
        return ImagesFound()
    try:
        index = ImageIndex.from_spec(image_spec)
    except ParaclipError:
        return ImagesFound()
    files = len({index.describe(key) for key in index.locations})  # an image is listed by path and by stem
    return ImagesFound(sum(i in index for i in ids), f"{files} images")


def with_standin_ids(data: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """A copy of ``data`` in ``folder`` in which records without an image id get ``text-<line>`` (the trainer
    joins records by image id; the text-only loss terms never look at an image)."""
    data, folder = Path(data), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{data.stem}-text-only.jsonl"
    with open(data, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for line_no, line in enumerate(src, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            if isinstance(rec, dict) and not image_id_of(rec):
                rec["image_id"] = f"text-{line_no}"
            dst.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return out


__all__ = ["DataSummary", "ImagesFound", "image_id_of", "images_found", "scan_records", "with_standin_ids"]
