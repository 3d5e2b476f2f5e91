"""The counters of one paraphrasing run: what the progress callback receives after each record, and
the first part of the run summary (``OUT.summary.json``, printed by ``paraclip paraphrase``).

Records already in the output when a run starts (a resume) count as done; the pace and the ETA are
measured on this run's own steps (a caption has two).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from paraclip.paraphrase.records import ParaphraseRecord, status_of


@dataclass
class RunStats:
    total: int  # captions kept by the filter
    resumed: int = 0  # records already in the output at the start
    ok: int = 0
    failed: int = 0
    filtered: int = 0
    written: int = 0  # records written by this run
    cached_requests: int = 0
    requests: int = 0
    tokens: int = 0
    elapsed_s: float = 0.0
    records_per_s: float = 0.0
    eta_s: float | None = None
    estimate_s: float | None = None  # the backend's own estimate, before any work
    steps_done: int = 0
    event: str = "start"  # "start" until the first record, then "record"
    failure_reasons: dict[str, int] = field(default_factory=dict)  # error group -> records (resumed ones too)
    started: float | None = None  # time.monotonic() when the work began

    @property
    def done(self) -> int:
        return self.resumed + self.written

    @property
    def steps_total(self) -> int:
        return 2 * self.total

    @property
    def complete(self) -> bool:
        return self.done == self.total

    @classmethod
    def resuming(cls, total: int, existing: Iterable[Mapping[str, Any]]) -> "RunStats":
        """The counters at the start of a run whose output already holds ``existing`` (raw records)."""
        existing = list(existing)
        statuses = [status_of(r) for r in existing]
        return cls(total=total, resumed=len(existing), ok=statuses.count("ok"), failed=statuses.count("failed"),
                   filtered=statuses.count("filtered"), steps_done=2 * len(existing),
                   failure_reasons=count_reasons(r.get("error") for r in existing))

    def start_clock(self) -> None:
        self.started = time.monotonic()

    def add(self, record: ParaphraseRecord, steps_in_flight: int) -> None:
        """Count a record just written."""
        self.written += 1
        setattr(self, record.status, getattr(self, record.status) + 1)
        for name in ("cached_requests", "requests", "tokens"):
            setattr(self, name, getattr(self, name) + int(record.extra.get(name) or 0))
        if record.error:
            key = reason_group(record.error)
            self.failure_reasons[key] = self.failure_reasons.get(key, 0) + 1
        elapsed = self.refresh_clock(steps_in_flight)
        self.records_per_s = round(self.written / elapsed, 3) if elapsed > 0 else 0.0
        self.event = "record"

    def step_finished(self, steps_in_flight: int) -> bool:
        """Whether a step finished since the last report (between two records); refreshes the clock if so."""
        if 2 * self.done + steps_in_flight <= self.steps_done:
            return False
        self.refresh_clock(steps_in_flight)
        return True

    def refresh_clock(self, steps_in_flight: int) -> float:
        """Steps done, elapsed time and the ETA from this run's pace; returns the elapsed seconds."""
        elapsed = time.monotonic() - (self.started if self.started is not None else time.monotonic())
        self.elapsed_s = round(elapsed, 3)
        # a record's steps leave "in flight" when its step 2 returns, a moment before it is written and
        # counted as done: never report that gap as steps going backwards
        self.steps_done = max(self.steps_done, 2 * self.done + steps_in_flight)
        run_steps = self.steps_done - 2 * self.resumed
        if run_steps > 0 and elapsed > 0:
            self.eta_s = round((self.steps_total - self.steps_done) * elapsed / run_steps, 1)
        return elapsed

    def to_dict(self) -> dict[str, Any]:
        """The progress dict (its keys, in this order, are the summary's first keys)."""
        return {"total": self.total, "done": self.done, "resumed": self.resumed, "written": self.written,
                "ok": self.ok, "failed": self.failed, "filtered": self.filtered,
                "cached_requests": self.cached_requests, "requests": self.requests, "tokens": self.tokens,
                "elapsed_s": self.elapsed_s, "records_per_s": self.records_per_s, "eta_s": self.eta_s,
                "steps_total": self.steps_total, "steps_done": self.steps_done, "estimate_s": self.estimate_s,
                "event": self.event}


def reason_group(error: str) -> str:
    """The part of an error message that is the same for every record failing the same way."""
    return error.split(" (after")[0]


def count_reasons(errors) -> dict[str, int]:
    counts: dict[str, int] = {}
    for error in errors:
        if error:
            counts[reason_group(error)] = counts.get(reason_group(error), 0) + 1
    return counts


__all__ = ["RunStats", "count_reasons", "reason_group"]
