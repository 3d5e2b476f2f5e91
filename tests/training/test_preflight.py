"""Checks before a training run: trainable records (the records module's one rule), records without image
ids, images the source holds, stand-in ids for text-only training."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from paraclip.paraphrase.records import ParaphraseRecord
from paraclip.training.preflight import image_id_of, images_found, scan_records, with_standin_ids


def write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def record(index, image_id="a", **kw):
    base = ParaphraseRecord(index=index, caption=f"a red circle {index}", paraphrase_1=f"one crimson disc {index}",
                            paraphrase_2=f"a ruby round shape {index}", image_id=image_id).to_json()
    return {**base, **kw}


def test_records_are_counted_by_the_one_rule_with_their_reasons(tmp_path):
    data = write(tmp_path / "d.jsonl", [
        record(0, "a"), record(1, "b"), record(2, None), record(3, "  "), record(4, 0),
        record(5, "c", status="failed"), record(6, "d", status="rejected"),  # legacy name of filtered
        record(7, "e", review="rejected"), record(8, "f", review=None, review_status="Rejected"),
        record(9, "g", paraphrase_2=" "), "[1, 2]", "",
    ])
    summary = scan_records(data)
    assert summary.lines == 11 and summary.usable == 5 and summary.bad_line is None
    assert summary.ids == {"a", "b", "0"} and summary.without_id == 2 and summary.first_missing_id_line == 3
    assert summary.unusable == {"status 'failed'": 1, "status 'rejected'": 1, "rejected in review": 2,
                                "no paraphrase_2": 1, "not a JSON object": 1}
    assert summary.unusable_text(1) == "2 × rejected in review"
    # text-only terms that never read paraphrase_2: that record is usable for them
    assert scan_records(data, ["caption", "paraphrase_1"]).usable == 6


def test_a_line_that_is_not_json_ends_the_scan_and_a_missing_file_says_so(tmp_path):
    summary = scan_records(write(tmp_path / "bad.jsonl", [record(0), "not json", record(2)]))
    assert summary.bad_line == 2 and summary.usable == 1
    with pytest.raises(FileNotFoundError):
        scan_records(tmp_path / "gone.jsonl")


def test_images_found_in_a_folder_and_nothing_without_a_readable_source(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (8, 8)).save(images / f"{name}.png")
    found = images_found(str(images), {"a", "b", "c"})
    assert (found.found, found.source, found.readable) == (2, "2 images", True)
    assert not images_found(None, {"a"}).readable and not images_found(tmp_path / "none", {"a"}).readable
    empty = tmp_path / "empty"
    empty.mkdir()
    assert images_found(str(empty), {"a"}).found == 0 and not images_found(str(empty), {"a"}).readable


def test_standin_ids_only_for_records_without_one(tmp_path):
    data = write(tmp_path / "pasted.jsonl", [record(0, None), "", record(2, "kept"), record(3, 0)])
    out = with_standin_ids(data, tmp_path / "scratch")
    rows = [json.loads(line) for line in open(out, encoding="utf-8")]
    assert out.parent == tmp_path / "scratch" and out.name == "pasted-text-only.jsonl"
    assert [image_id_of(r) for r in rows] == ["text-1", "kept", "0"]
    assert scan_records(out).without_id == 0
