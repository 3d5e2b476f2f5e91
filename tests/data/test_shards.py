"""Webdataset shards: (key, member) pairs listed once, members read back by offset, bad shards named."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from paraclip.data.shards import sample_key, shard_members
from paraclip.errors import DataError


def _shard(path, files: dict[str, bytes]):
    with tarfile.open(path, "w") as tar:
        dir_info = tarfile.TarInfo("images")
        dir_info.type = tarfile.DIRTYPE
        tar.addfile(dir_info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_keys_follow_the_webdataset_convention():
    assert sample_key("images/000042.jpg") == "images/000042"
    assert sample_key("000042.seg.png") == "000042"
    assert sample_key("a/b/noext") == "a/b/noext"


def test_members_in_order_with_their_bytes(tmp_path):
    first = _shard(tmp_path / "0.tar", {"images/0001.jpg": b"jpeg-1", "images/0001.txt": b"a cat\n",
                                         "0002.seg.png": b"mask"})
    second = _shard(tmp_path / "1.tar", {"0003.txt": b"a dog"})
    listed = shard_members([first, second])
    assert [(key, m.ext) for key, m in listed] == [
        ("images/0001", "jpg"), ("images/0001", "txt"), ("0002", "seg.png"), ("0003", "txt")]  # no directory entry
    assert [m.read() for _, m in listed] == [b"jpeg-1", b"a cat\n", b"mask", b"a dog"]
    assert listed[-1][1].shard == second


def test_unreadable_and_compressed_shards_are_named(tmp_path):
    broken = tmp_path / "broken.tar"
    broken.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(DataError, match=r"broken.tar: not a readable tar shard"):
        shard_members([broken])
    plain = _shard(tmp_path / "plain.tar", {"0001.txt": b"x"})
    packed = tmp_path / "packed.tar"
    packed.write_bytes(gzip.compress(plain.read_bytes()))  # member offsets would point into compressed data
    with pytest.raises(DataError, match=r"packed.tar: not a readable tar shard"):
        shard_members([packed])
