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
