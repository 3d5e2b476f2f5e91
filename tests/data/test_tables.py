import gzip

import pytest

from paraclip.data.tables import iter_delimited, iter_jsonl, iter_lines, iter_table
from paraclip.errors import DataError


def test_csv_tsv_and_semicolon_tables_with_bom_and_blank_rows(tmp_path):
    (tmp_path / "a.csv").write_bytes("\ufeffimage_id, caption\n1,a dog\n\n2,\"a cat, asleep\"\n".encode())
    assert list(iter_table(tmp_path / "a.csv")) == [(2, {"image_id": "1", "caption": "a dog"}),
                                                    (4, {"image_id": "2", "caption": "a cat, asleep"})]
    (tmp_path / "b.txt").write_text("s1\ts2\tscore\nx\ty\t4.5\n")
    assert list(iter_table(tmp_path / "b.txt")) == [(2, {"s1": "x", "s2": "y", "score": "4.5"})]
    (tmp_path / "c.csv").write_text("file;caption\na.png;a red square\n")
    assert list(iter_table(tmp_path / "c.csv")) == [(2, {"file": "a.png", "caption": "a red square"})]


def test_a_quoted_field_over_two_lines_is_numbered_by_its_last_line(tmp_path):
    (tmp_path / "m.csv").write_text('id,caption\n1,"two\nlines"\n2,short\n3\n')
    rows = iter_delimited(tmp_path / "m.csv")
    assert next(rows) == (3, {"id": "1", "caption": "two\nlines"})
    assert next(rows) == (4, {"id": "2", "caption": "short"})
    with pytest.raises(DataError, match=r"m\.csv:5: expected 2 fields \(id, caption\), found 1\. Quote"):
        next(rows)


def test_jsonl_errors_name_file_and_line_or_go_to_on_bad(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"a": 1, "b": null}\n\n{oops\n[1, 2]\ncaf\xe9\n{"a": "x"}\n')
    with pytest.raises(DataError, match=r"r\.jsonl:3: malformed JSON .*Each line must be one JSON object"):
        list(iter_jsonl(path))
    bad = []
    rows = list(iter_jsonl(path, on_bad=bad.append, stringify=True))
    assert rows == [(1, {"a": "1", "b": ""}), (6, {"a": "x"})]
    assert [m.split(": ", 1)[0].rsplit("/", 1)[1] for m in bad] == ["r.jsonl:3", "r.jsonl:4", "r.jsonl:5"]
    assert "expected a JSON object, got list" in bad[1] and "not valid UTF-8 (byte 0xe9" in bad[2]
    assert list(iter_jsonl(path, on_bad=bad.append))[0] == (1, {"a": 1, "b": None})  # raw values by default


def test_gzip_and_missing_files(tmp_path):
    with gzip.open(tmp_path / "p.jsonl.gz", "wt") as f:
        f.write('{"sentence1": "a", "sentence2": "b", "score": 3}\n')
    assert list(iter_table(tmp_path / "p.jsonl.gz")) == [(1, {"sentence1": "a", "sentence2": "b", "score": "3"})]
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        iter_table(tmp_path / "nope.csv")
    (tmp_path / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    assert list(iter_lines(tmp_path / "crlf.txt")) == [(1, "one"), (2, "two")]


def test_an_unterminated_quote_is_an_error_naming_the_line_where_it_opens(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text('id,caption\n1,a dog\n2,"two cats asleep\n3,a red car\n4,a bird\n')
    rows = iter_delimited(path)
    assert next(rows) == (2, {"id": "1", "caption": "a dog"})
    with pytest.raises(DataError, match=r"u\.csv:3: unterminated quote: the quoted field that opens on line 3 never "
                                        r"closes"):
        next(rows)  # lenient parsing returned one row whose caption swallowed lines 3-5


def test_text_after_a_closing_quote_is_an_error_not_a_merged_field(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('id,caption\n1,"a dog\n2,a cat\n3,"a bird"\n')  # the quote of line 2 closes on line 4
    with pytest.raises(DataError, match=r"t\.csv:2: text after the closing quote .* on line 4 \(the row starts on "
                                        r"line 2\)"):
        list(iter_delimited(path))
    (tmp_path / "ok.csv").write_text('id,caption\n1,"a ""quoted"" word"\n2,"two\nlines"\n')
    assert [r["caption"] for _, r in iter_delimited(tmp_path / "ok.csv")] == ['a "quoted" word', "two\nlines"]


def _gz_cut_short(path, text: str) -> None:
    data = gzip.compress(text.encode())
    path.write_bytes(data[: len(data) - 12])  # the end-of-stream marker and the last block are gone


def test_a_gz_that_is_not_gzip_or_is_cut_short_names_the_file(tmp_path):
    (tmp_path / "plain.jsonl.gz").write_text('{"a": 1}\n')
    with pytest.raises(DataError, match=r"plain\.jsonl\.gz:1: not a gzip file.*remove the \.gz suffix"):
        list(iter_table(tmp_path / "plain.jsonl.gz"))
    _gz_cut_short(tmp_path / "cut.csv.gz", "caption\n" + "".join(f"row {i}\n" for i in range(2000)))
    with pytest.raises(DataError, match=r"cut\.csv\.gz:\d+: the gzip data ends early .*gzip -t"):
        list(iter_table(tmp_path / "cut.csv.gz"))


def test_jsonl_nested_too_deeply_or_with_huge_numbers_is_a_bad_line(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"a": 1}\n' + '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}\n" + '{"n": ' + "9" * 5000 + "}\n")
    with pytest.raises(DataError, match=r"deep\.jsonl:2: JSON nested too deeply"):
        list(iter_jsonl(path))
    bad = []
    assert [n for n, _ in iter_jsonl(path, on_bad=bad.append)] == [1]
    assert "deep.jsonl:2:" in bad[0] and "deep.jsonl:3: JSON value that cannot be read" in bad[1]


def test_a_field_over_the_csv_limit_is_named_as_too_long_with_line_and_limit(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("id,caption\n1,short\n2," + "x" * 200_000 + "\n")
    with pytest.raises(DataError, match=r"long\.csv:3: a field longer than 131,072 characters") as info:
        list(iter_delimited(path))
    assert "quot" in str(info.value)  # says what usually causes it
    (tmp_path / "longhead.csv").write_text("id," + "h" * 200_000 + "\n1,2\n")
    with pytest.raises(DataError, match=r"longhead\.csv:1: a field longer than"):
        list(iter_delimited(tmp_path / "longhead.csv"))


def test_a_lone_carriage_return_is_named_as_mixed_line_endings(tmp_path):
    (tmp_path / "cr.csv").write_bytes(b"id,caption\n1,a dog\n2,a\rcat\n")
    with pytest.raises(DataError, match=r"cr\.csv:3: a lone carriage return .*dos2unix"):
        list(iter_delimited(tmp_path / "cr.csv"))
    (tmp_path / "crhead.csv").write_bytes(b"id,cap\rtion\n1,a dog\n")
    with pytest.raises(DataError, match=r"crhead\.csv:1: a lone carriage return"):
        list(iter_delimited(tmp_path / "crhead.csv"))
