"""The Paraphrase table: meaning-change flags and their filter, and what a review stores."""

from __future__ import annotations

import pytest

from workbench import review as rv

RECORDS = [
    {"index": 0, "caption": "a green car", "paraphrase_1": "a red car", "paraphrase_2": "a crimson auto",
     "status": "ok", "quality": {"meaning_changed": True, "meaning_changed_1": True, "meaning_changed_2": False,
                                 "meaning_reason_1": "colour green -> red", "meaning_reason_2": None}},
    {"index": 1, "caption": "two dogs", "paraphrase_1": "a pair of dogs", "paraphrase_2": "two hounds",
     "status": "ok", "quality": {"meaning_changed": False, "meaning_changed_1": False, "meaning_changed_2": False}},
    {"index": 2, "caption": "a cat", "paraphrase_1": "a kitty", "paraphrase_2": "one feline", "status": "ok",
     "quality": {"novelty_1": 0.5}},  # written before the meaning check: unknown
]


def test_meaning_column_says_changed_kept_or_unknown():
    table = rv.records_table(RECORDS)
    assert list(table["meaning"]) == ["⚠ changed (step 1: colour green -> red)", "kept", "unknown"]
    assert list(rv.records_table(RECORDS, "meaning changed")["index"]) == [0]
    assert list(rv.records_table(RECORDS, "meaning kept")["index"]) == [1]
    assert len(rv.records_table(RECORDS, "all")) == 3
    assert rv.filter_choices(RECORDS) == [("all (3), 1 unchecked", "all"), ("meaning changed (1)", "meaning changed"),
                                          ("meaning kept (1)", "meaning kept")]
    assert rv.meaning_of({"quality": {"meaning_changed": True}}) == "⚠ changed"
    assert rv.meaning_of({}) == "unknown"


@pytest.mark.parametrize("choice, p1, p2, expected", [
    ("rejected", "An image", "A photo", {"review": "rejected"}),           # pre-filled boxes are not edits
    ("rejected", "changed text", "A photo", {"review": "rejected"}),       # a rejected row keeps its text
    ("accepted", " An  image ", "A photo", {"review": "accepted"}),        # whitespace is not an edit
    ("accepted", "a new one", "A photo", {"review": "edited", "paraphrase_1": "a new one"}),
    ("edited", "An image", "a new two", {"review": "edited", "paraphrase_2": "a new two"}),
    ("unreviewed", "x", "y", {"review": "unreviewed"}),
    ("accepted", "", "", {"review": "accepted"}),                          # empty boxes keep the record's text
])
def test_a_review_stores_what_was_chosen(choice, p1, p2, expected):
    record = {"paraphrase_1": "An image", "paraphrase_2": "A photo"}
    assert rv.review_update(record, choice, p1, p2) == expected


def test_edited_without_a_change_is_refused():
    with pytest.raises(ValueError, match="unchanged"):
        rv.review_update({"paraphrase_1": "a", "paraphrase_2": "b"}, "edited", "a", "b")


def test_a_failed_row_has_no_meaning_verdict_and_is_counted_as_failed(tmp_path):
    failed = {"index": 3, "caption": "a red square", "paraphrase_1": "", "paraphrase_2": "", "status": "failed",
              "error": "copy of the input", "quality": {"meaning_changed": False}}
    table = rv.records_table([*RECORDS, failed])
    assert list(table["meaning"])[-1] == ""  # blank, not "kept"
    assert "⚠ copy of the input" in list(table["flags"])[-1]
    assert 3 not in list(rv.records_table([*RECORDS, failed], "meaning kept")["index"])
    assert rv.filter_choices([*RECORDS, failed])[0] == ("all (4), 1 unchecked, 1 failed", "all")
    rv.export_csv([failed], tmp_path / "rows.csv")
    assert (tmp_path / "rows.csv").read_text().splitlines()[1].endswith(",failed,,unreviewed")


def test_the_narrow_table_keeps_the_rows_in_order_without_index_or_image_id():
    failed = {"index": 3, "caption": "a red square", "status": "failed", "error": "copy of the input"}
    narrow = rv.narrow_table(rv.records_table([*RECORDS, failed]))
    assert list(narrow.columns) == rv.NARROW_COLUMNS and "index" not in narrow and "image_id" not in narrow
    assert list(narrow["caption"]) == ["a green car", "two dogs", "a cat", "a red square"]
    assert narrow["paraphrases"][1] == "① a pair of dogs ② two hounds"
    assert list(narrow["check"]) == ["⚠ changed", "kept", "unknown", "✗ failed: copy of the input"]
    assert rv.narrow_table(None).empty and list(rv.narrow_table(rv.records_table([])).columns) == rv.NARROW_COLUMNS
