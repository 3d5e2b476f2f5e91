"""The run's counters: what a resumed output already holds, what each record adds, the pace and the ETA
from this run's own steps, and the progress dict's keys (the summary's first keys, printed by the CLI)."""

from __future__ import annotations

from paraclip.paraphrase.records import ParaphraseRecord
from paraclip.paraphrase.run_stats import RunStats, count_reasons, reason_group

PROGRESS_KEYS = ["total", "done", "resumed", "written", "ok", "failed", "filtered", "cached_requests", "requests",
                 "tokens", "elapsed_s", "records_per_s", "eta_s", "steps_total", "steps_done", "estimate_s", "event"]


def _record(index: int, status: str = "ok", error: str | None = None, **counts) -> ParaphraseRecord:
    return ParaphraseRecord(index, "a dog", "a hound", "a canine", status=status, error=error,
                            extra={"tokens": 10, "requests": 2, "cached_requests": 0, **counts})


def test_a_resumed_output_counts_by_todays_status_names():
    existing = [{"status": "ok"}, {"status": "failed", "error": "step 1: copy of the input (after 3 samples)"},
                {"status": "rejected", "error": "scene-spec check failed"}, {"status": "error", "error": "step 2: 500"},
                {"caption": "an official-release line without a status"}]
    stats = RunStats.resuming(10, existing)
    d = stats.to_dict()
    assert list(d) == PROGRESS_KEYS
    assert (d["total"], d["done"], d["resumed"], d["written"]) == (10, 5, 5, 0)
    assert (d["ok"], d["failed"], d["filtered"]) == (2, 2, 1)
    assert (d["steps_total"], d["steps_done"], d["event"], d["eta_s"]) == (20, 10, "start", None)
    assert stats.failure_reasons == {"step 1: copy of the input": 1, "scene-spec check failed": 1, "step 2: 500": 1}
    assert not stats.complete


def test_each_record_adds_its_counts_and_the_run_completes(monkeypatch):
    clock = iter([100.0, 102.0, 104.0, 106.0])
    monkeypatch.setattr("paraclip.paraphrase.run_stats.time.monotonic", lambda: next(clock))
    stats = RunStats.resuming(3, [{"status": "ok"}])
    stats.start_clock()  # t = 100
    stats.add(_record(1, cached_requests=1), steps_in_flight=0)  # t = 102
    d = stats.to_dict()
    assert (d["done"], d["written"], d["ok"], d["tokens"], d["requests"], d["cached_requests"]) == (2, 1, 2, 10, 2, 1)
    assert (d["elapsed_s"], d["records_per_s"], d["steps_done"], d["event"]) == (2.0, 0.5, 4, "record")
    assert d["eta_s"] == 2.0  # 2 steps left at this run's pace of 2 steps in 2 s
    stats.add(_record(2, status="failed", error="step 2: timeout (after 1 samples)"), steps_in_flight=0)  # t = 104
    assert stats.complete and stats.to_dict()["failed"] == 1 and stats.failure_reasons == {"step 2: timeout": 1}
    assert stats.to_dict()["eta_s"] == 0.0


def test_steps_between_records_are_reported_once_and_never_go_back(monkeypatch):
    monkeypatch.setattr("paraclip.paraphrase.run_stats.time.monotonic", lambda: 50.0)
    stats = RunStats(total=2)
    stats.start_clock()
    assert not stats.step_finished(steps_in_flight=0)
    assert stats.step_finished(steps_in_flight=1) and stats.steps_done == 1
    assert not stats.step_finished(steps_in_flight=1)  # nothing new
    stats.add(_record(0), steps_in_flight=0)  # step 2 returned and left "in flight" before the record came
    assert stats.steps_done == 2 and stats.records_per_s == 0.0  # no time passed: no pace yet
    assert not stats.step_finished(steps_in_flight=0)


def test_reason_groups_ignore_the_sample_count():
    assert reason_group("step 1: copy of the input (after 3 samples)") == "step 1: copy of the input"
    assert count_reasons(["a (after 1 samples)", None, "a (after 2 samples)", "b"]) == {"a": 2, "b": 1}
