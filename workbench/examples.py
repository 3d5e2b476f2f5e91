"""Ready-made data for a first visit, as the app offers it: paraphrase pairs for Compare's AO@k / JS@k
and example training data for the Train tab.

The data is made by :mod:`paraclip.miniworld.examples` (pairs for a mini-world gallery, training scenes
that no Compare gallery contains); this module says which gallery and which folders the app uses.
"""

from __future__ import annotations

from pathlib import Path

from paraclip.miniworld.examples import EXAMPLE_SIZE, gallery_pairs, training_examples


def default_pairs(services, gallery_label: str | None) -> str | None:
    """The default paraphrase pairs for ``gallery_label`` (a label of the defaults or a folder), or None
    when it has none (not a mini-world gallery: Tux Paint, a hub gallery, a folder of other images)."""
    if not gallery_label:
        return None
    spec = services.defaults.gallery_choices().get(gallery_label, gallery_label)
    shipped = [p for label, p in services.defaults.pairs_choices().items() if "in-vocabulary" in label]
    path = gallery_pairs(str(spec), known=shipped)
    return str(path) if path else None


def example_training_root(services) -> Path:
    """Where the example training data is made (the app's own data: readable in public mode)."""
    return Path(services.config.app_dir) / "defaults" / "example-training"


def example_training_data(services) -> tuple[str, str]:
    """``(paraphrase JSONL with image ids, image folder)`` ready to train on (made once). Scenes of the
    world's train split, so training on them never sees the Compare gallery's images."""
    data, images = training_examples(example_training_root(services), EXAMPLE_SIZE,
                                     avoid_test=services.config.gallery_size,
                                     avoid_captions=_default_gallery_captions(services))
    return str(data), str(images)


def _default_gallery_captions(services) -> set[str]:
    """Captions of the default gallery (the shipped one is the world's eval split, not ``test``); the
    gallery is the one Compare and Explore use (loaded once per app)."""
    label = next(iter(services.defaults.gallery_choices()), None)
    if label is None:
        return set()
    return {caption for captions in services.gallery(label).captions for caption in captions}
