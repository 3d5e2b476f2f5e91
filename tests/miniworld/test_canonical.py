"""The canonical-word pair set: caption words only, a new construction, the same meaning."""

from __future__ import annotations

from paraclip.miniworld.canonical import canonical_word_paraphrase, make_canonical_pairs, unseen_word_share
from paraclip.miniworld.checker import check
from paraclip.miniworld.evalsets import training_vocabulary
from paraclip.miniworld.world import CONVERSE, iter_scenes


def test_every_pair_keeps_the_meaning_in_caption_words_only():
    train = list(iter_scenes(3, "train", 2000))
    captions = [s.caption for s in train]
    scenes = list(iter_scenes(3, "test3", 300, exclude={s.spec.meaning_key() for s in train}))
    pairs = make_canonical_pairs(scenes, captions, seed=3)
    assert len(pairs) == len(scenes) and not pairs.dropped
    vocab = training_vocabulary(captions)
    assert unseen_word_share(pairs.paraphrases, vocab) == 0.0
    by_id = {s.image_id: s for s in scenes}
    for image_id, original, paraphrase in zip(pairs.image_ids, pairs.originals, pairs.paraphrases):
        scene = by_id[image_id]
        assert paraphrase != original and original == scene.caption
        assert check(paraphrase, scene.spec).ok
        if scene.spec.relation is not None:  # the converse relation, the groups swapped
            assert f" {CONVERSE[scene.spec.relation]} " in f" {paraphrase} "


def test_a_word_no_caption_has_drops_the_pair():
    scenes = list(iter_scenes(3, "test3", 20))
    captions_without_red = [s.caption for s in iter_scenes(3, "train", 400) if "red" not in s.caption]
    pairs = make_canonical_pairs(scenes, captions_without_red)
    assert pairs.dropped.get("vocabulary check failed", 0) == sum("red" in s.caption for s in scenes)


def test_same_seed_same_pairs():
    import numpy as np

    scene = next(iter_scenes(3, "test3", 1))
    texts = {canonical_word_paraphrase(scene.spec, np.random.default_rng(7)) for _ in range(3)}
    assert len(texts) == 1
    assert unseen_word_share(["a red circle", "a ruby circle"], {"a", "red", "circle"}) == 0.5
