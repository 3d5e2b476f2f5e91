"""Ready-made mini-world data for a first try: paraphrase pairs for a mini-world gallery and example
training data, made in seconds without any model.

* :func:`gallery_pairs` — in-vocabulary (caption, paraphrase) pairs whose image ids are all images of a
  gallery folder: a set given by the caller (the shipped ones), the pairs of the mini-world run the
  gallery belongs to (:class:`paraclip.miniworld.runner.Run`: ``world/eval-images`` and
  ``evalsets/pairs-in-vocab.jsonl``), else made once beside a gallery rendered from the world's ``test``
  split (``<gallery>-pairs/pairs-in-vocab.jsonl``): each scene's canonical caption and a rewording from
  the held-out generator (:mod:`paraclip.miniworld.evalsets`) checked to keep the scene's meaning.
* :func:`training_examples` — scenes of the world's *train* split (never a gallery's scenes), rendered,
  with two-step paraphrases from the scene-aware rewriter: a paraphrase JSONL of
  :class:`~paraclip.paraphrase.records.ParaphraseRecord` lines with image ids, and the image folder.

Galleries are read with :func:`paraclip.data.galleries.folder_gallery`, the reader every evaluation uses.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Iterable

from paraclip.errors import DataError
from paraclip.paraphrase.io import write_records

PAIRS_NAME = "pairs-in-vocab.jsonl"
EXAMPLE_SIZE = 240
_lock = threading.Lock()  # one maker at a time: concurrent first visits make the files once


def gallery_image_ids(folder: str | os.PathLike) -> list[str]:
    """The image ids of a gallery folder, as the evaluations read it; [] when it is not a gallery folder
    (no captions file, unreadable, no usable image)."""
    from paraclip.data.galleries import find_captions_file, folder_gallery  # torch: only when used

    folder = Path(folder).expanduser()
    if not folder.is_dir() or find_captions_file(folder) is None:
        return []
    try:
        return list(folder_gallery(folder).ids)
    except (DataError, OSError):
        return []


def pairs_match(pairs: str | os.PathLike, gallery_ids: Iterable[str]) -> bool:
    """True when ``pairs`` has records and every image id in it is an image of the gallery."""
    ids = set(gallery_ids)
    try:
        with open(pairs, encoding="utf-8") as f:
            found = [json.loads(line).get("image_id") for line in f if line.strip()]
    except (OSError, ValueError, AttributeError):  # missing, not JSON, a line that is not an object
        return False
    return bool(found) and all(i in ids for i in found)


def run_pairs(gallery: Path) -> Path | None:
    """The in-vocabulary pairs of the mini-world run whose test-world gallery is ``gallery`` (the run
    folder's layout, :class:`~paraclip.miniworld.runner.Run`); None when ``gallery`` is not one."""
    from paraclip.miniworld.config import MiniWorldConfig
    from paraclip.miniworld.runner import Run

    run = Run(MiniWorldConfig(), gallery.parent.parent)
    return run.evalsets / PAIRS_NAME if run.gallery_dir == gallery else None


def made_pairs_path(gallery: Path) -> Path:
    """Where :func:`gallery_pairs` makes the pairs of a rendered gallery: a folder beside it."""
    return gallery.parent / f"{gallery.name}-pairs" / PAIRS_NAME


def gallery_pairs(gallery: str | os.PathLike, known: Iterable[str | os.PathLike] = ()) -> Path | None:
    """In-vocabulary pairs for the gallery folder ``gallery`` (see the module docstring), or None when
    it is not a mini-world gallery. ``known``: pair files to try first (the shipped in-vocabulary set)."""
    folder = Path(gallery).expanduser()
    ids = set(gallery_image_ids(folder))
    if not ids:
        return None
    candidates = [Path(p) for p in known] + [p for p in (run_pairs(folder), made_pairs_path(folder)) if p]
    for path in candidates:
        if path.is_file() and pairs_match(path, ids):
            return path
    made = made_pairs_path(folder)
    with _lock:
        if not made.is_file() and not write_pairs(folder, made):
            return None
    return made if pairs_match(made, ids) else None


def write_pairs(gallery: Path, out: Path, seed: int = 0) -> bool:
    """In-vocabulary pairs for a gallery rendered from the mini-world's ``test`` split (``seed``), written
    to ``out``; False (nothing written) when the gallery's images are not such scenes."""
    from paraclip.miniworld.evalsets import make_pair_sets
    from paraclip.miniworld.rewriter import inventory_vocabulary
    from paraclip.miniworld.world import iter_scenes

    ids = gallery_image_ids(gallery)
    if not ids or not all(i.startswith("test-") for i in ids):
        return False  # not a gallery rendered from the mini-world's test split
    wanted = set(ids)
    scenes = [s for s in iter_scenes(seed=seed, split="test", n=len(ids)) if s.image_id in wanted]
    in_vocab, _ = make_pair_sets(scenes, inventory_vocabulary(), seed=seed)
    if len(in_vocab) == 0:
        return False
    write_records(out, in_vocab.records())
    return True


def training_examples(root: str | os.PathLike, n: int = EXAMPLE_SIZE, avoid_test: int = 0,
                      avoid_captions: Iterable[str] = ()) -> tuple[Path, Path]:
    """``(paraphrase JSONL with image ids, image folder)`` under ``root``, made once: ``n`` train-split
    scenes whose meanings differ from the first ``avoid_test`` test-split scenes (the rendered gallery)
    and whose captions are not among ``avoid_captions`` (another gallery's)."""
    root = Path(root)
    data, images = root / "paraphrases.jsonl", root / "images"
    with _lock:
        if not data.is_file():
            write_training_examples(root, n, avoid_test, set(avoid_captions))
    return data, images


def write_training_examples(root: Path, n: int, avoid_test: int, avoid_captions: set[str] = frozenset(),
                            seed: int = 0) -> int:
    """Render the scenes of :func:`training_examples` into ``root/images`` and write their records to
    ``root/paraphrases.jsonl`` (the records last, so a present file means complete data); how many."""
    from paraclip.miniworld.stages import rewriter_records
    from paraclip.miniworld.world import iter_scenes

    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    gallery_meanings = {s.spec.meaning_key() for s in iter_scenes(seed=seed, split="test", n=avoid_test)}
    scenes = (s for s in iter_scenes(seed=seed, split="train", n=2 * n, exclude=gallery_meanings)
              if s.caption not in avoid_captions)
    chosen = [scene for _, scene in zip(range(n), scenes)]
    for scene in chosen:
        scene.image().save(images / f"{scene.image_id}.png")
    # the mini-world's own rewriter + checker loop: a paraphrase that breaks the scene is marked filtered
    records = [r.to_json() for r in rewriter_records([(s.image_id, s.caption, s.spec) for s in chosen], seed)]
    write_records(root / "paraphrases.jsonl", records)
    return len(records)


__all__ = ["EXAMPLE_SIZE", "PAIRS_NAME", "gallery_image_ids", "gallery_pairs", "pairs_match", "run_pairs",
           "training_examples", "write_pairs", "write_training_examples"]
