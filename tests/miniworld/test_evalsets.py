"""Held-out sets: disjoint from training, in/out-of-vocabulary split checked mechanically, valid swaps."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from paraclip.miniworld.checker import check
from paraclip.miniworld.evalsets import (
    eval_paraphrase, make_pair_sets, make_swap_sets, oov_words, training_vocabulary,
)
from paraclip.miniworld.rewriter import SceneRewriter, words
from paraclip.miniworld.world import canonical_caption, iter_scenes


@pytest.fixture(scope="module")
def world():
    eval_scenes = list(iter_scenes(5, "eval", 200))
    keys = {s.spec.meaning_key() for s in eval_scenes}
    train = list(iter_scenes(5, "train", 1500, exclude=keys))
    rewriter = SceneRewriter()
    texts = []
    for s in train:
        texts += [s.caption, *rewriter.paraphrase(s.spec, s.image_id)]
    return eval_scenes, train, texts


def test_no_eval_scene_or_caption_occurs_in_training(world):
    eval_scenes, train, texts = world
    assert not {s.spec.meaning_key() for s in eval_scenes} & {s.spec.meaning_key() for s in train}
    in_vocab, oov = make_pair_sets(eval_scenes, training_vocabulary(texts))
    eval_texts = {s.caption for s in eval_scenes} | set(in_vocab.paraphrases) | set(oov.paraphrases)
    assert not eval_texts & set(texts)


def test_oov_words_never_occur_in_training_text(world):
    _, _, texts = world
    vocab = training_vocabulary(texts)
    assert oov_words() and not oov_words() & vocab


def test_subsets_are_split_mechanically_and_keep_the_meaning(world):
    eval_scenes, _, texts = world
    vocab = training_vocabulary(texts)
    in_vocab, oov = make_pair_sets(eval_scenes, vocab)
    assert len(in_vocab) == len(oov) == len(eval_scenes)  # nothing dropped on a full-size vocabulary
    by_id = {s.image_id: s for s in eval_scenes}
    for text, image_id in zip(in_vocab.paraphrases, in_vocab.image_ids):
        assert set(words(text)) <= vocab
        assert check(text, by_id[image_id].spec).ok
    for text, image_id, used in zip(oov.paraphrases, oov.image_ids, oov.oov):
        unknown = set(words(text)) - vocab
        assert unknown and unknown <= oov_words() and used
        assert check(text, by_id[image_id].spec).ok


def test_in_vocabulary_pairs_use_new_structures(world):
    """The generator's frames are not the rewriter's: fronted relations, possession, positions."""
    eval_scenes, _, texts = world
    in_vocab, _ = make_pair_sets(eval_scenes, training_vocabulary(texts))
    starts = Counter(p.split()[0] for p in in_vocab.paraphrases)
    assert any(p.endswith(" on the right") for p in in_vocab.paraphrases)
    assert any(" has " in p and (" its " in p or p.endswith(" it")) for p in in_vocab.paraphrases)
    assert starts["above"] + starts["below"] + starts["to"] + starts["left"] + starts["under"] > 0
    assert not set(in_vocab.paraphrases) & set(texts)


def test_tiny_vocabulary_drops_pairs_and_counts_them():
    scenes = list(iter_scenes(5, "eval", 30))
    vocab = training_vocabulary([s.caption for s in iter_scenes(5, "train", 5)])
    in_vocab, oov = make_pair_sets(scenes, vocab)
    assert len(in_vocab) + sum(in_vocab.dropped.values()) == len(scenes)
    assert in_vocab.dropped.get("vocabulary check failed", 0) > 0


def test_leaked_oov_word_is_an_error():
    scenes = list(iter_scenes(5, "eval", 3))
    with pytest.raises(ValueError, match="scarlet"):
        make_pair_sets(scenes, {"scarlet", "a", "red"})


def test_swaps_keep_the_words_and_change_the_meaning():
    scenes = list(iter_scenes(5, "eval", 200))
    relation, attribute = make_swap_sets(scenes)
    assert len(relation) == sum(s.spec.relation is not None for s in scenes) and len(attribute) > 0.7 * len(relation)
    by_id = {s.image_id: s for s in scenes}
    for swaps in (relation, attribute):
        for image_id, true, false in zip(swaps.image_ids, swaps.true_captions, swaps.false_captions):
            spec = by_id[image_id].spec
            assert true == canonical_caption(spec)
            assert sorted(words(true)) == sorted(words(false))  # a bag of words cannot tell them apart
            assert not check(false, spec).ok
    assert set(relation.groups) <= {"left of", "right of", "above", "below"}
    assert set(attribute.groups) <= {"colour", "size", "texture"} and len(set(attribute.groups)) == 3


def test_eval_paraphrase_is_deterministic():
    scene = next(iter_scenes(5, "eval", 1))
    a = eval_paraphrase(scene.spec, np.random.default_rng(1))
    b = eval_paraphrase(scene.spec, np.random.default_rng(1))
    assert a == b
