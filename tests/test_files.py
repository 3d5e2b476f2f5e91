"""One cache root and one atomic writer (paraclip.files)."""

from __future__ import annotations

import errno
import json
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


# -- a full disk: the message names the file, the exit status is 1, finished work is kept ---------------------

def test_a_write_error_without_a_file_name_names_the_target(tmp_path, monkeypatch):
    from paraclip.checks import describe_os_error
    from tests.faults import failing_fsync

    target = tmp_path / "kept.txt"
    target.write_text("old")
    failed = failing_fsync(monkeypatch)
    with pytest.raises(OSError) as caught:
        atomic_write_text(target, "new")
    assert failed and caught.value.filename == str(target)  # the target, not the removed temporary
    assert describe_os_error(caught.value, "write").startswith(f"could not write {target}: No space left on device")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["kept.txt"]


def test_a_real_full_disk_names_the_file(tmp_path):
    from tests.faults import fill_disk, tiny_disk

    with tiny_disk(tmp_path) as disk:
        (disk / "kept.txt").write_text("old")
        fill_disk(disk)
        with pytest.raises(OSError) as caught:
            atomic_write_text(disk / "kept.txt", "new" * 5000)
        assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(disk / "kept.txt")
        assert (disk / "kept.txt").read_text() == "old"
        assert sorted(p.name for p in disk.iterdir()) == ["filler.bin", "kept.txt"]


def _cli(argv, capsys) -> tuple[int, str]:
    from paraclip.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    return code, text


STS_CSV = "sentence1,sentence2,score\n" + "".join(f"{a},{b},{s}\n" for a, b, s in [
    ("a red circle", "a circle that is red", 4.8), ("a red circle", "a blue square", 0.5),
    ("two dogs", "a pair of dogs", 4.5), ("two dogs", "a tree", 0.2), ("a cat", "a kitten", 3.9)])


def test_paraphrase_out_on_a_full_disk(tmp_path, capsys):
    from paraclip.testing.mock_server import MockChatServer
    from tests.faults import fill_disk, tiny_disk

    (tmp_path / "captions.txt").write_text("".join(f"a dog number {i} runs on the beach\n" for i in range(60)))
    with tiny_disk(tmp_path, "256k") as disk, MockChatServer() as server:
        fill_disk(disk, free_pages=2)  # the run lock and a few records fit, then the kernel's ENOSPC
        out = disk / "out.jsonl"
        code, text = _cli(["paraphrase", tmp_path / "captions.txt", "--out", out, "--backend", "openai",
                           "--model", "mock", "--base-url", server.base_url, "--concurrency", "1", "--no-cache"],
                          capsys)
        assert code == 1 and str(out) in text and "No space left on device" in text, text
        lines = out.read_text().splitlines()
        finished = [json.loads(line) for line in lines[:-1]]  # the last line may be torn by the full disk
        assert 0 < len(finished) < 60 and all(r["paraphrase_1"] for r in finished)
        (disk / "filler.bin").unlink()  # space freed: the same command resumes and keeps what was finished
        code, text = _cli(["paraphrase", tmp_path / "captions.txt", "--out", out, "--backend", "openai",
                           "--model", "mock", "--base-url", server.base_url, "--no-cache"], capsys)
        assert code == 0 and f"({len(finished)} of 60 already done)" in text, text
        assert sorted(json.loads(line)["index"] for line in out.read_text().splitlines()) == list(range(60))


def test_sts_out_on_a_full_disk(tmp_path, capsys, monkeypatch):
    import tempfile

    from tests.faults import fill_disk, tiny_disk

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the results are rescued to
    (tmp_path / "good.csv").write_text(STS_CSV)
    with tiny_disk(tmp_path) as disk:
        fill_disk(disk)
        out = disk / "results.json"
        code, text = _cli(["sts", "--model", "paraclip-tiny", "--device", "cpu", "--tasks", tmp_path / "good.csv",
                           "--out", out], capsys)
        assert code == 1 and str(out) in text and "No space left on device" in text, text
        assert not out.exists()
    (rescued,) = tmp_path.glob("paraclip-sts-*.json")
    assert json.loads(rescued.read_text())["results"][0]["task"] == "good"


def test_evaluate_out_on_a_full_disk(tmp_path, capsys):
    from tests.faults import fill_disk, tiny_disk

    (tmp_path / "sts-a.csv").write_text(STS_CSV)
    (tmp_path / "sts-b.csv").write_text(STS_CSV)
    with tiny_disk(tmp_path) as disk:
        fill_disk(disk, free_pages=3)  # the lock, the first result and the manifest fit; the second result hits ENOSPC
        out = disk / "eval"
        code, text = _cli(["evaluate", "--models", "paraclip-tiny", "--tasks",
                           f"{tmp_path / 'sts-a.csv'},{tmp_path / 'sts-b.csv'}", "--bootstrap", "10",
                           "--device", "cpu", "--out", out], capsys)
        from paraclip.results import result_file_name

        first, second = (result_file_name("paraclip-tiny", None, task) for task in ("sts-a", "sts-b"))
        assert code == 1 and "No space left" in text, text
        assert str(out) in text, text  # the message names the file it could not write
        assert first in [p.name for p in out.glob("*.json")]  # the finished one is kept
        assert not (out / second).exists()


def test_train_out_dir_when_a_checkpoint_cannot_be_synced(tmp_path, capsys, monkeypatch):
    import yaml

    from paraclip.training.checkpoint import load_checkpoint
    from tests.faults import failing_fsync
    from tests.training.helpers import make_world, tiny_config

    world = make_world(tmp_path / "world", n=16)
    out = tmp_path / "run"
    config = tiny_config(world, out, steps=4, checkpoint_every=2).to_dict()
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    failed = failing_fsync(monkeypatch, lambda name: "step-00000004" in name)
    code, text = _cli(["train", "--config", tmp_path / "run.yaml"], capsys)
    assert failed and code == 1 and "No space left on device" in text, text
    assert str(out / "checkpoints" / "step-00000004.pt") in text
    assert load_checkpoint(out / "checkpoints" / "step-00000002.pt")["step"] == 2  # the finished checkpoint is kept
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
