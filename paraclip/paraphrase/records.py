"""The paraphrase record: one caption, its two paraphrases, and what happened to them.

Every writer of paraphrase JSONL (the engine, the mini-world's rewriter, the shipped assets, the app's
example data) builds a :class:`ParaphraseRecord` and writes ``record.to_json()``; every reader that
decides what training may use asks :meth:`ParaphraseRecord.is_trainable` (or :func:`trainable_problem`
for a raw JSON object, which also says why not).

Statuses:

* ``ok``: both steps produced a usable text;
* ``failed``: the backend or the output cleaning gave up (``error`` says why);
* ``filtered``: the texts exist but a check dropped the record (similarity floor, ``--drop-changed``,
  the mini-world's scene-spec checker; ``error`` says which).

Files written before statuses were unified said ``rejected`` (mini-world checker) and ``error``; they
read as ``filtered`` and ``failed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

STATUSES = ("ok", "failed", "filtered")
LEGACY_STATUSES = {"rejected": "filtered", "error": "failed"}
REVIEW_STATES = ("unreviewed", "accepted", "rejected", "edited")
TEXT_FIELDS = ("caption", "paraphrase_1", "paraphrase_2")


@dataclass
class ParaphraseRecord:
    """One line of a paraphrase JSONL. ``extra`` keeps every other key (raw outputs, samples, token
    counts, request counts, source line) as written, so a round trip loses nothing."""

    index: int
    caption: str
    paraphrase_1: str | None
    paraphrase_2: str | None
    image_id: str | None = None
    status: str = "ok"
    error: str | None = None
    backend: str | None = None
    model: str | None = None
    preset: str | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    review: str = "unreviewed"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.status = normalise_status(self.status)
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")
        if self.review not in REVIEW_STATES:
            raise ValueError(f"review {self.review!r} is not one of {', '.join(REVIEW_STATES)}")

    def is_trainable(self, text_fields=TEXT_FIELDS) -> bool:
        """Status ``ok``, not rejected in review, and every text the loss needs present."""
        return trainable_problem(self.to_json(), text_fields) is None

    def mark(self, status: str, error: str | None) -> None:
        """Set the outcome (``failed`` / ``filtered`` with the reason, or back to ``ok``)."""
        self.status, self.error = normalise_status(status), error

    def to_json(self) -> dict[str, Any]:
        """The JSONL object: fixed key order (index, image_id, texts, outcome, provenance, checks), then
        ``extra``."""
        out: dict[str, Any] = {"index": self.index, "image_id": self.image_id, "caption": self.caption,
                               "paraphrase_1": self.paraphrase_1, "paraphrase_2": self.paraphrase_2,
                               "status": self.status, "error": self.error, "backend": self.backend,
                               "model": self.model, "preset": self.preset, "quality": self.quality,
                               "review": self.review}
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], index: int | None = None) -> "ParaphraseRecord":
        """A record from a JSON object (files of any version: a missing status reads as ``ok``, a
        missing review as ``unreviewed``, legacy statuses as today's)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        review = obj.get("review") or obj.get("review_status") or "unreviewed"
        return cls(index=int(obj["index"]) if obj.get("index") is not None else int(index or 0),
                   caption=obj.get("caption") or "", paraphrase_1=obj.get("paraphrase_1"),
                   paraphrase_2=obj.get("paraphrase_2"),
                   image_id=None if obj.get("image_id") is None else str(obj["image_id"]),
                   status=str(obj.get("status") or "ok"), error=obj.get("error"), backend=obj.get("backend"),
                   model=obj.get("model"), preset=obj.get("preset"), quality=dict(obj.get("quality") or {}),
                   review=str(review).lower() if str(review).lower() in REVIEW_STATES else "unreviewed",
                   extra={k: v for k, v in obj.items() if k not in known and k != "review_status"})


def normalise_status(status: Any) -> str:
    """Today's name for a status (``rejected`` → ``filtered``, ``error`` → ``failed``), lower case."""
    text = str(status).strip().lower()
    return LEGACY_STATUSES.get(text, text)


def status_of(obj: Mapping[str, Any]) -> str:
    """A raw record's status by today's names; a record without one (the official release's files) is ``ok``."""
    status = obj.get("status")
    return "ok" if status is None else normalise_status(status)


def trainable_problem(obj: Mapping[str, Any], text_fields=TEXT_FIELDS) -> str | None:
    """Why a raw record cannot be trained on (``"status 'failed'"``, ``"rejected in review"``,
    ``"no paraphrase_2"``), or None when it can. The one statement of the rule: training, the app's
    data check and the mini-world all use it."""
    if status_of(obj) != "ok":
        return f"status {obj.get('status')!r}"
    review = obj.get("review") or obj.get("review_status")
    if review is not None and str(review).strip().lower() == "rejected":
        return "rejected in review"
    for name in text_fields:
        value = obj.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"no {name}"
    return None


__all__ = ["LEGACY_STATUSES", "ParaphraseRecord", "REVIEW_STATES", "STATUSES", "TEXT_FIELDS",
           "normalise_status", "status_of", "trainable_problem"]
