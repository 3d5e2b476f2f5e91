"""JSON-lines files of the mini-world's run folder, and its scenes read back from them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from paraclip.data.tables import iter_jsonl
from paraclip.errors import DataError
from paraclip.files import DamagedCacheWarning, atomic_write_text, parse_json, read_json

if TYPE_CHECKING:
    from paraclip.miniworld.world import SceneSpec


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSONL file of the run folder; a damaged file is a DataError naming its line
    (the shared table reader), since a run folder can be edited or cut short by a full disk."""
    return [record for _, record in iter_jsonl(path)]


def read_run_json(path: Path, redo: Path) -> dict:
    """The JSON object a stage wrote to ``path``; damage is a DataError naming the file and saying to
    delete ``redo`` (the stage's output, so that the stage runs again)."""
    try:
        value = read_json(path)
    except DataError as exc:
        raise DataError(f"{exc} It was written by an earlier stage of this run: delete {redo} and rerun, and "
                        f"that stage runs again.") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(value).__name__}. It was written by an "
                        f"earlier stage of this run: delete {redo} and rerun, and that stage runs again.")
    return value


def read_metrics_rows(path: Path) -> list[dict]:
    """The rows of a training run's ``metrics.jsonl``; damaged rows (a line cut by a crash, garbage) are
    left out with a note: the file is the trainer's log, read here only for plots."""
    rows, damaged = [], 0
    for number, raw in enumerate(path.read_bytes().splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = parse_json(raw.decode("utf-8"), f"{path}:{number}")
        except (DataError, UnicodeDecodeError):
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            damaged += 1
    if damaged:
        warnings.warn(f"{path}: {damaged} damaged rows left out of the training curves.", DamagedCacheWarning,
                      stacklevel=2)
    return rows


def write_jsonl(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def load_scenes(run, split: str) -> list[tuple[str, str, SceneSpec]]:
    """(image id, caption, spec) of the split's scenes, from the run's world folder (the layouts
    come back from the same per-scene streams when a scene is re-made from its spec)."""
    from paraclip.miniworld.world import SceneSpec  # numpy and PIL: only when scenes are read

    return [(rec["image_id"], rec["caption"], SceneSpec.from_dict(rec["spec"]))
            for rec in read_jsonl(run.world / f"{split}.jsonl")]
