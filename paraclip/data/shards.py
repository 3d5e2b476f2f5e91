"""Webdataset ``.tar`` shards: which files each sample holds, and where they lie in the shard.

The webdataset convention: the files of one sample share a key, the member's path up to the first
dot of its file name (``images/000042.jpg`` and ``images/000042.txt`` are sample
``images/000042``). :func:`shard_members` lists ``(key, member)`` pairs once; training reads an
image member's bytes straight from its offset, and a gallery extracts its images and captions.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from paraclip.errors import DataError


@dataclass(frozen=True)
class ShardMember:
    """One regular file inside a tar shard: its name, and the byte range of its data."""

    shard: Path
    name: str
    offset: int
    size: int

    @property
    def ext(self) -> str:
        """The extension after the key (``"jpg"``, ``"txt"``, ``"seg.png"``), lower-cased."""
        return os.path.basename(self.name).partition(".")[2].lower()

    def read(self) -> bytes:
        with open(self.shard, "rb") as f:
            f.seek(self.offset)
            return f.read(self.size)


def sample_key(member_name: str) -> str:
    """The webdataset key of a member: its path up to the first dot of the file name."""
    parent, base = os.path.split(member_name)
    stem = base.partition(".")[0]
    return f"{parent}/{stem}" if parent else stem


def shard_members(shards: Iterable[str | os.PathLike]) -> list[tuple[str, ShardMember]]:
    """``(key, member)`` for every regular file of ``shards``, in shard then archive order."""
    out: list[tuple[str, ShardMember]] = []
    for shard in map(Path, shards):
        try:
            with tarfile.open(shard, "r:") as tar:  # uncompressed: member offsets are file offsets
                for info in tar:
                    if info.isfile():
                        out.append((sample_key(info.name), ShardMember(shard, info.name, info.offset_data, info.size)))
        except tarfile.TarError as exc:
            raise DataError(f"{shard}: not a readable tar shard ({exc}). Write or download it again.") from None
    return out
