"""Ready-made data: default pairs for the mini-world gallery, example training data."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.examples import default_pairs, example_training_data


def test_default_pairs_belong_to_the_gallery_and_keep_the_meaning(services):
    from paraclip.evaluation.paraphrased import load_pairs

    label = next(iter(services.defaults.gallery_choices()))
    path = default_pairs(services, label)
    gallery = services.gallery(label)
    pairs = load_pairs(path)
    assert len(pairs) > 0 and set(pairs.image_ids) <= set(gallery.ids)
    captions = {i: caps[0] for i, caps in zip(gallery.ids, gallery.captions)}
    assert all(captions[i] == o for i, o in zip(pairs.image_ids, pairs.originals))  # the gallery's own captions
    assert all(o != p for o, p in zip(pairs.originals, pairs.paraphrases))
    assert default_pairs(services, label) == path  # made once
    assert default_pairs(services, "no-such-gallery") is None and default_pairs(services, None) is None


def test_example_training_data_has_images_for_every_record_and_none_of_the_gallery(services):
    data, images = example_training_data(services)
    records = [json.loads(line) for line in open(data, encoding="utf-8")]
    assert len(records) >= 200 and all(r["status"] == "ok" and r["paraphrase_2"] for r in records)
    assert all((Path(images) / f"{r['image_id']}.png").is_file() for r in records)
    gallery = services.gallery(next(iter(services.defaults.gallery_choices())))
    gallery_captions = {caption for _, caption in gallery.caption_rows()}
    assert not gallery_captions & {r["caption"] for r in records}  # trains on other scenes than Compare scores
