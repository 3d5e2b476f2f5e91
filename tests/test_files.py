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
