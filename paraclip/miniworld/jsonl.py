"""JSON-lines files of the mini-world's run folder, and its scenes read back from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from paraclip.data.tables import iter_jsonl
from paraclip.files import atomic_write_text

if TYPE_CHECKING:
    from paraclip.miniworld.world import SceneSpec


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSONL file of the run folder; a damaged file is a DataError naming its line
    (the shared table reader), since a run folder can be edited or cut short by a full disk."""
    return [record for _, record in iter_jsonl(path)]


def write_jsonl(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def load_scenes(run, split: str) -> list[tuple[str, str, SceneSpec]]:
    """(image id, caption, spec) of the split's scenes, from the run's world folder (the layouts
    come back from the same per-scene streams when a scene is re-made from its spec)."""
    from paraclip.miniworld.world import SceneSpec  # numpy and PIL: only when scenes are read

    return [(rec["image_id"], rec["caption"], SceneSpec.from_dict(rec["spec"]))
            for rec in read_jsonl(run.world / f"{split}.jsonl")]
