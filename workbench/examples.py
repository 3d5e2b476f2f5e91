"""Ready-made data for a first visit: paraphrase pairs for Compare's AO@k / JS@k and example
training data for the Train tab.

Pairs: the shipped ones (``assets/pairs``, see :mod:`paraclip.miniworld.assets`) or those of the trained
mini-world run next to its gallery; otherwise the app makes them once from the procedural mini-world,
in seconds and without any model. Training data is always made here (seconds), from scenes the
Compare gallery does not contain:

* pairs — for each scene of the rendered mini-world gallery, its canonical caption and an
  in-vocabulary rewording from the held-out generator (:mod:`paraclip.miniworld.evalsets`),
  checked to keep the scene's meaning;
* training data — scenes of the world's *train* split (never the gallery's scenes), rendered,
  with two-step paraphrases from the scene-aware rewriter, as a paraphrase JSONL with image ids
  plus the image folder.
"""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

from paraclip.paraphrase.io import write_records

PAIRS_NAME = "pairs-in-vocab.jsonl"
EXAMPLE_SIZE = 240
_lock = threading.Lock()


def _gallery_ids(gallery_dir: Path) -> list[str]:
    with open(gallery_dir / "captions.csv", newline="", encoding="utf-8") as f:
        return [row.get("image_id") or Path(row["file"]).stem for row in csv.DictReader(f)]


def _pairs_match(pairs: Path, gallery_ids: set[str]) -> bool:
    """True when every image id of the pairs file is an image of the gallery."""
    try:
        with open(pairs, encoding="utf-8") as f:
            ids = [json.loads(line).get("image_id") for line in f if line.strip()]
    except (OSError, ValueError):
        return False
    return bool(ids) and all(i in gallery_ids for i in ids)


def default_pairs(services, gallery_label: str | None) -> str | None:
    """The default paraphrase pairs for ``gallery_label`` (a path), or None when there are none.

    Looks next to the gallery (shipped assets and the trained mini-world run keep their pair sets
    there), then makes them for the app's rendered mini-world gallery.
    """
    if not gallery_label:
        return None
    spec = services.defaults.gallery_choices().get(gallery_label, gallery_label)
    folder = Path(str(spec))
    if not (folder / "captions.csv").is_file():
        return None
    ids = set(_gallery_ids(folder))
    shipped = [Path(p) for label, p in services.defaults.pairs_choices().items() if "in-vocabulary" in label]
    candidates = [*shipped, folder / PAIRS_NAME, folder.parent / PAIRS_NAME, folder.parent / "evalsets" / PAIRS_NAME,
                  folder.parent.parent / "evalsets" / PAIRS_NAME]
    for path in candidates:
        if path.is_file() and _pairs_match(path, ids):
            return str(path)
    made = folder.parent / f"{folder.name}-pairs" / PAIRS_NAME
    with _lock:
        if not made.is_file():
            if not _write_miniworld_pairs(folder, made):
                return None
    return str(made) if _pairs_match(made, ids) else None


def _write_miniworld_pairs(gallery_dir: Path, out: Path) -> bool:
    """In-vocabulary pairs for a gallery rendered from the mini-world's ``test`` split (seed 0)."""
    from paraclip.miniworld.evalsets import make_pair_sets
    from paraclip.miniworld.rewriter import inventory_vocabulary
    from paraclip.miniworld.world import iter_scenes

    ids = _gallery_ids(gallery_dir)
    if not ids or not all(i.startswith("test-") for i in ids):
        return False  # not a gallery the app rendered from the mini-world
    scenes = [s for s in iter_scenes(seed=0, split="test", n=len(ids)) if s.image_id in set(ids)]
    in_vocab, _ = make_pair_sets(scenes, inventory_vocabulary(), seed=0)
    write_records(out, in_vocab.records())
    return len(in_vocab) > 0


def example_training_root(services) -> Path:
    """Where the example training data is made (the app's own data: readable in public mode)."""
    return Path(services.config.app_dir) / "defaults" / "example-training"


def example_training_data(services) -> tuple[str, str]:
    """``(paraphrase JSONL with image ids, image folder)`` ready to train on (made once). Scenes of the
    world's train split, so training on them never sees the Compare gallery's images."""
    root = example_training_root(services)
    data, images = root / "paraphrases.jsonl", root / "images"
    with _lock:
        if not data.is_file():
            _write_example_training(root, EXAMPLE_SIZE, avoid_test=services.config.gallery_size,
                                    avoid_captions=_default_gallery_captions(services))
    return str(data), str(images)


def _default_gallery_captions(services) -> set[str]:
    """Captions of the default gallery (the shipped one is the world's eval split, not ``test``)."""
    label = next(iter(services.defaults.gallery_choices()), None)
    if label is None:
        return set()
    return {caption for captions in services.defaults.load_gallery(label).captions for caption in captions}


def _write_example_training(root: Path, n: int, avoid_test: int, avoid_captions: set[str] = frozenset()) -> None:
    """``n`` train-split scenes whose meanings differ from the first ``avoid_test`` gallery scenes and
    whose captions are not among ``avoid_captions``."""
    from paraclip.miniworld.rewriter import SceneRewriter
    from paraclip.miniworld.world import iter_scenes

    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rewriter = SceneRewriter(seed=0)
    gallery_meanings = {s.spec.meaning_key() for s in iter_scenes(seed=0, split="test", n=avoid_test)}
    records = []
    scenes = (s for s in iter_scenes(seed=0, split="train", n=2 * n, exclude=gallery_meanings)
              if s.caption not in avoid_captions)
    for index, scene in zip(range(n), scenes):
        scene.image().save(images / f"{scene.image_id}.png")
        p1, p2 = rewriter.paraphrase(scene.spec, scene.image_id)
        records.append({"index": index, "image_id": scene.image_id, "caption": scene.caption, "paraphrase_1": p1,
                        "paraphrase_2": p2, "status": "ok", "backend": rewriter.name, "review": "unreviewed"})
    write_records(root / "paraphrases.jsonl", records)

