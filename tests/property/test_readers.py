"""Every reader of a user's table, fed arbitrary bytes: it returns, or raises a ParaclipError naming the file.

Captions to paraphrase (txt/CSV/TSV/JSONL/JSON/Parquet, also gzipped), STS files in each release format,
paraphrase pair sets, training-data JSONL, image lists, paraphrase output files and the mini-world's JSONL.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from paraclip.data.sts import read_sts_file
from paraclip.data.tables import iter_table
from paraclip.evaluation.paraphrased import load_pairs
from paraclip.miniworld.jsonl import read_jsonl
from paraclip.paraphrase.io import load_records, read_captions, recover_output
from paraclip.training.data import ImageIndex, read_records

from .strategies import JSONL_TEXT, TABLE_TEXT, assert_clean_failure, contents, gz_variants, reproducible

TABLE_NAMES = st.sampled_from(["t.csv", "t.tsv", "t.jsonl", "t.csv.gz", "t.jsonl.gz"])


def _table_bytes(name: str) -> st.SearchStrategy[bytes]:
    data = contents(JSONL_TEXT if ".jsonl" in name or ".json" in name else TABLE_TEXT)
    return gz_variants(data) if name.endswith(".gz") else data


def _named_file(names):
    return names.flatmap(lambda name: st.tuples(st.just(name), _table_bytes(name)))


@reproducible(60)
@given(_named_file(st.sampled_from(["c.txt", "c.csv", "c.tsv", "c.jsonl", "c.json", "c.parquet", "c.txt.gz",
                                    "c.jsonl.gz"])), st.booleans())
def test_caption_files(tmp_path, file, skip_bad_lines):
    name, data = file
    path = tmp_path / name
    path.write_bytes(data)
    assert_clean_failure(lambda p: read_captions(p, skip_bad_lines=skip_bad_lines), path)


@reproducible(50)
@given(_named_file(st.sampled_from(["STS.input.headlines.tsv", "SICK_test_annotated.txt", "sts-test.csv",
                                    "pairs.csv", "pairs.jsonl", "pairs.tsv.gz"])))
def test_sts_files(tmp_path, file):
    name, data = file
    path = tmp_path / name
    path.write_bytes(data)
    assert_clean_failure(read_sts_file, path)


@reproducible(40)
@given(_named_file(TABLE_NAMES))
def test_pair_sets_and_tables(tmp_path, file):
    name, data = file
    path = tmp_path / name
    path.write_bytes(data)
    assert_clean_failure(load_pairs, path)
    assert_clean_failure(lambda p: list(iter_table(p)), path)


@reproducible(50)
@given(_named_file(st.sampled_from(["train.jsonl", "train.jsonl.gz"])))
def test_training_data(tmp_path, file):
    name, data = file
    path = tmp_path / name
    path.write_bytes(data)
    assert_clean_failure(lambda p: read_records(p, ["caption", "paraphrase_1", "paraphrase_2"]), path)


@reproducible(30)
@given(_named_file(st.sampled_from(["images.csv", "images.tsv", "images.jsonl"])))
def test_image_lists(tmp_path, file):
    name, data = file
    path = tmp_path / name
    path.write_bytes(data)
    assert_clean_failure(ImageIndex.from_spec, path)


@reproducible(40)
@given(contents(JSONL_TEXT))
def test_paraphrase_output_and_miniworld_jsonl(tmp_path, data):
    path = tmp_path / "out.jsonl"
    path.write_bytes(data)
    assert_clean_failure(load_records, path)
    assert_clean_failure(read_jsonl, path)
    assert_clean_failure(recover_output, path)  # last: it may cut a torn last line off the file
