"""The held-out rewriter: readable words, phrasings no training text has, meaning kept."""

from __future__ import annotations

import numpy as np
import pytest

from paraclip.miniworld.checker import check
from paraclip.miniworld.evalsets import make_pair_sets, training_vocabulary
from paraclip.miniworld.heldout import (
    bigram_novelty, heldout_paraphrase, heldout_phrases, make_heldout_pairs, phrases_in_training,
)
from paraclip.miniworld.rewriter import SceneRewriter, words
from paraclip.miniworld.world import iter_scenes


@pytest.fixture(scope="module")
def world():
    eval_scenes = list(iter_scenes(7, "eval", 300))
    keys = {s.spec.meaning_key() for s in eval_scenes}
    rewriter = SceneRewriter()
    texts = []
    for s in iter_scenes(7, "train", 3000, exclude=keys):
        texts += [s.caption, *rewriter.paraphrase(s.spec, s.image_id)]
    return eval_scenes, texts


def test_every_word_is_readable_and_no_phrase_was_seen_in_training(world):
    eval_scenes, texts = world
    assert phrases_in_training(texts) == []
    pairs = make_heldout_pairs(eval_scenes, texts)
    assert len(pairs) == len(eval_scenes) and not pairs.dropped
    vocab = training_vocabulary(texts)
    by_id = {s.image_id: s for s in eval_scenes}
    for text, image_id in zip(pairs.paraphrases, pairs.image_ids):
        assert set(words(text)) <= vocab
        assert check(text, by_id[image_id].spec).ok, text
        assert any(f" {p} " in f" {' '.join(words(text))} " for p in heldout_phrases()), text


def test_phrasing_is_newer_than_the_in_vocabulary_sets(world):
    eval_scenes, texts = world
    in_vocab, _ = make_pair_sets(eval_scenes, training_vocabulary(texts))
    heldout = make_heldout_pairs(eval_scenes, texts)
    assert bigram_novelty(heldout.paraphrases, texts) > bigram_novelty(in_vocab.paraphrases, texts)
    assert bigram_novelty(texts[:500], texts) == 0.0


def test_a_leaked_phrase_is_refused(world):
    eval_scenes, texts = world
    assert phrases_in_training(texts + ["a ruby red circle"]) == ["ruby red"]
    with pytest.raises(ValueError, match="ruby red"):
        make_heldout_pairs(eval_scenes[:5], texts + ["a ruby red circle"])


def test_deterministic_in_the_seed_and_scene(world):
    eval_scenes, _ = world
    spec = eval_scenes[0].spec
    a = heldout_paraphrase(spec, np.random.default_rng(3))
    assert a == heldout_paraphrase(spec, np.random.default_rng(3))
