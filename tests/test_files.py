"""One cache root and one atomic writer (paraclip.files)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from paraclip.files import atomic_write, atomic_write_text, cache_root


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PARACLIP_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("PARACLIP_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / ".cache" / "paraclip"


def test_written_files_get_normal_permissions_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a" / "text.json", "{}")
        atomic_write(tmp_path / "bytes.bin", lambda f: f.write(b"\x00\x01"), binary=True)
    finally:
        os.umask(old)
    assert (tmp_path / "a" / "text.json").read_text() == "{}"
    assert (tmp_path / "bytes.bin").read_bytes() == b"\x00\x01"
    for name in ("a/text.json", "bytes.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "kept.txt"
    target.write_text("old")

    def explode(f):
        f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, explode)
    assert target.read_text() == "old"
    assert [p.name for p in Path(tmp_path).iterdir()] == ["kept.txt"]


def test_checkpoints_and_rewritten_jsonl_are_not_private(tmp_path):
    import torch

    from paraclip.models.checkpoint import save_checkpoint
    from paraclip.paraphrase.io import write_records

    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "step.pt", {"x": torch.zeros(2)}, "paraclip-tiny")
        write_records(tmp_path / "out.jsonl", [{"index": 0}])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "step.pt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "out.jsonl").stat().st_mode) == 0o644
    assert torch.load(tmp_path / "step.pt")["state_dict"]["x"].shape == (2,)


# -- the shared reading layer ---------------------------------------------------------------------

# libyaml refuses more than 1000 levels; the pure-Python loader runs out of recursion first
TOO_DEEP = r"c\.yaml(:1: not valid YAML \(exceeded maximum nesting depth|: YAML nested too deeply)"


@pytest.mark.parametrize("text,expected", [
    ("lr: 1\n1: 2\n", r"c\.yaml:2: the key '1' is read as a number, not text; names of things are text"),
    ("lr: 1\n2024-01-01: x\n", r"c\.yaml:2: the key '2024-01-01' is read as a date"),
    ("lr: 1\nnull: 3\n", r"c\.yaml:2: the key 'null' is read as null"),
    ("? [a, b]\n: 1\n", r"c\.yaml:1: not valid YAML \(found unhashable key\)"),
    ('lr: 1\ndata: "runs/a\\0b"\n', r"c\.yaml:2: a NUL character"),
    ("- a\n- b\n", r"c\.yaml: expected a mapping of things \(name: value lines\), found a list"),
    ("just text\n", r"c\.yaml: expected a mapping of things .*found a str"),
    ("a: [1, 2\n", r"c\.yaml:2: not valid YAML"),
    ("a: b\n\nc: d\x07\n", r"c\.yaml:3: not valid YAML \(character '\\x07' is not allowed"),
    ("a: " + "[" * 1500 + "]" * 1500 + "\n", TOO_DEEP),
    ("a: " + "{b: " * 1500 + "}" * 1500 + "\n", TOO_DEEP),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh")),
     r"c\.yaml: the YAML's anchors and aliases .* expand to more than 1,000,000 values"),
])
def test_yaml_mapping_errors_name_file_and_line(tmp_path, text, expected):
    from paraclip.errors import DataError
    from paraclip.files import read_yaml_mapping

    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=expected):
        read_yaml_mapping(tmp_path / "c.yaml", "things")


def test_yaml_mapping_lines_encodings_and_empty_files(tmp_path):
    from paraclip.errors import DataError
    from paraclip.files import read_yaml_mapping

    (tmp_path / "ok.yaml").write_bytes("\ufefflr: 0.1\n\n'1': quoted keys are text\n".encode())
    assert read_yaml_mapping(tmp_path / "ok.yaml") == ({"lr": 0.1, "1": "quoted keys are text"}, {"lr": 1, "1": 3})
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert read_yaml_mapping(tmp_path / "empty.yaml") == ({}, {})
    (tmp_path / "latin1.yaml").write_bytes("lr: 1\nname: caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.yaml:2: not valid UTF-8 \(byte 0xe9"):
        read_yaml_mapping(tmp_path / "latin1.yaml")
    (tmp_path / "utf16.yaml").write_bytes("lr: 1\n".encode("utf-16"))
    with pytest.raises(DataError, match=r"utf16\.yaml:1: not valid UTF-8"):
        read_yaml_mapping(tmp_path / "utf16.yaml")


def test_json_and_gzip_failures_are_data_errors(tmp_path):
    import gzip

    from paraclip.errors import DataError
    from paraclip.files import parse_json, read_json, read_text

    with pytest.raises(DataError, match=r"x:1: JSON nested too deeply"):
        parse_json("[" * 100_000, "x:1")
    with pytest.raises(DataError, match=r"x: JSON value that cannot be read \(Exceeds the limit"):
        parse_json("1" * 5000, "x")
    with pytest.raises(DataError, match=r"x: malformed JSON \(Expecting value at line 2, column 1\)"):
        parse_json("[1,\n", "x")
    # half of a surrogate pair is valid JSON but no character: refused here, not when written out as UTF-8
    assert parse_json('{"a": "\\ud83d\\ude00"}', "x") == {"a": "\U0001f600"}
    with pytest.raises(DataError, match=r"x:3: a .*half of a surrogate pair"):
        parse_json('{"a": ["ok", "\\ud83d cut"]}', "x:3")
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(b'{"a": [1, 2]}'))
    assert read_json(tmp_path / "a.json.gz") == {"a": [1, 2]}
    (tmp_path / "b.json.gz").write_bytes(gzip.compress(b'{"a": [1, 2]}')[:-6])
    with pytest.raises(DataError, match=r"b\.json\.gz: the gzip data ends early"):
        read_json(tmp_path / "b.json.gz")
    (tmp_path / "c.txt.gz").write_bytes(b"\x1f\x8b" + b"\x00" * 30)  # gzip magic, then garbage
    with pytest.raises(DataError, match=r"c\.txt\.gz: (not a gzip file|damaged gzip data)"):
        read_text(tmp_path / "c.txt.gz")
    with pytest.raises(DataError, match=r"none\.json: no such file"):
        read_json(tmp_path / "none.json")
