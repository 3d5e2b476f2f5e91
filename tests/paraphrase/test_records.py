"""The one paraphrase record type: the engine's and the mini-world's records are ParaphraseRecords, written
with ``to_json`` and read back with ``from_json`` unchanged; files from before the statuses were unified
(``rejected``, ``error``) read by today's names, and every reader applies the same trainable rule."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from paraclip.paraphrase import ParaphraseConfig, make_backend, run_paraphrasing
from paraclip.paraphrase.records import ParaphraseRecord, normalise_status, status_of, trainable_problem

# the engine's line, key by key, as written before records.py existed (resume reads such files)
ENGINE_KEYS = ["index", "image_id", "caption", "paraphrase_1", "paraphrase_2", "status", "error", "backend", "model",
               "preset", "quality", "review", "raw", "samples", "tokens", "cached_requests", "requests", "source_line"]
# a mini-world record as the rewriter stage wrote it before the unification
OLD_MINIWORLD_LINE = {"index": 3, "image_id": "train-000003", "caption": "a red circle", "paraphrase_1": "a circle, red",
                      "paraphrase_2": "one crimson disc", "status": "rejected", "error": "scene-spec check failed",
                      "backend": "miniworld-rewriter", "model": "miniworld-rewriter(seed=0)"}


def test_an_engine_record_round_trips_byte_for_byte(chat_server, tmp_path, captions):
    server = chat_server(script=["copy", "copy", "copy"])  # record 0's step 1: three copies, so it fails
    out = tmp_path / "o.jsonl"
    backend = make_backend("openai", model="mock", base_url=server.base_url, backoff_base=0.01, concurrency=1)
    with backend:
        run_paraphrasing(captions[:2], out, backend, ParaphraseConfig(cache_path=str(tmp_path / "c.sqlite"),
                                                                      max_resamples=2))
    lines = out.read_bytes().splitlines()
    records = [ParaphraseRecord.from_json(json.loads(line)) for line in lines]
    assert [r.status for r in records] == ["failed", "ok"]
    assert [r.is_trainable() for r in records] == [False, True]
    assert records[0].error == "step 1: copy of the input (after 3 samples)"
    for line, record in zip(lines, records):
        assert list(json.loads(line)) == ENGINE_KEYS
        assert json.dumps(record.to_json(), ensure_ascii=False).encode("utf-8") == line


def test_a_miniworld_record_round_trips_and_a_checker_rejection_is_filtered(monkeypatch):
    from paraclip.miniworld import stages
    from paraclip.miniworld.world import iter_scenes

    scenes = [(s.image_id, s.caption, s.spec) for s in iter_scenes(11, "train", 3)]
    records = stages.rewriter_records(scenes, seed=0)
    assert [r.status for r in records] == ["ok"] * 3 and all(r.is_trainable() for r in records)
    assert [r.index for r in records] == [0, 1, 2] and records[0].model == "miniworld-rewriter(seed=0)"
    for record in records:
        assert ParaphraseRecord.from_json(json.loads(json.dumps(record.to_json()))) == record

    monkeypatch.setattr(stages, "check", lambda text, spec: SimpleNamespace(ok=False))
    [bad] = stages.rewriter_records(scenes[:1], seed=0)
    assert (bad.status, bad.error) == ("filtered", "scene-spec check failed") and not bad.is_trainable()
    assert bad.to_json()["status"] == "filtered"
    assert ParaphraseRecord.from_json(bad.to_json()) == bad


def test_legacy_statuses_read_by_todays_names_and_are_not_trainable():
    old = ParaphraseRecord.from_json(OLD_MINIWORLD_LINE)
    assert old.status == "filtered" and not old.is_trainable()
    assert trainable_problem(OLD_MINIWORLD_LINE) == "status 'rejected'"
    assert status_of(OLD_MINIWORLD_LINE) == "filtered" and status_of({"caption": "x"}) == "ok"
    assert ParaphraseRecord.from_json({**OLD_MINIWORLD_LINE, "status": "error"}).status == "failed"
    assert normalise_status(" Rejected ") == "filtered"
    ok = {**OLD_MINIWORLD_LINE, "status": "ok", "error": None}
    assert ParaphraseRecord.from_json(ok).is_trainable() and trainable_problem(ok) is None
    assert trainable_problem({**ok, "review": "rejected"}) == "rejected in review"
    assert trainable_problem({**ok, "paraphrase_2": "  "}) == "no paraphrase_2"
    with pytest.raises(ValueError, match="status 'pending'"):
        ParaphraseRecord(0, "a", "b", "c", status="pending")


def test_every_reader_skips_a_legacy_rejected_record(tmp_path):
    """Training, the mini-world's evaluation sets and the paraphrased-retrieval pairs all leave out the
    record the old checker rejected, and keep the ok one."""
    from paraclip.evaluation.paraphrased import load_pairs
    from paraclip.miniworld.stages import trainable_records
    from paraclip.training.data import read_records

    path = tmp_path / "old.jsonl"
    ok = {**OLD_MINIWORLD_LINE, "index": 4, "image_id": "train-000004", "status": "ok", "error": None}
    path.write_text(json.dumps(OLD_MINIWORLD_LINE) + "\n" + json.dumps(ok) + "\n")

    records, report = read_records(path, ("caption", "paraphrase_1", "paraphrase_2"))
    assert [r.image_id for r in records] == ["train-000004"] and dict(report.skipped) == {"status 'rejected'": 1}
    assert [r.image_id for r in trainable_records(path)] == ["train-000004"]
    pairs = load_pairs(path)
    assert pairs.image_ids == ["train-000004"] and pairs.dropped == {"status filtered": 1}
