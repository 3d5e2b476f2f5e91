"""The canonical-word pair set: paraphrases made only of words the canonical captions use.

Every other paraphrase set carries synonyms: the in-vocabulary and held-out rewriter pairs use
words that only the training paraphrases contain (100 % of held-out pairs, 98.8 % of in-vocabulary
pairs hold a word the vocabulary-blind baseline never read), so their gains mix paraphrase
robustness with vocabulary exposure. This set tests robustness alone: every word of every
paraphrase occurs in the training *captions*, which every model here has read, and only the
construction changes:

* the adjectives of each object group in another order (``a large red dotted star`` →
  ``a dotted red large star``; the canonical grammar always says size, colour, texture);
* for two groups, the converse relation with the groups swapped (``A left of B`` → ``B right of A``).

Each paraphrase differs from its caption, uses only caption words (checked against the training
captions) and is verified by the scene-spec checker to keep the scene's meaning. Deterministic in
(seed, image id).
"""

from __future__ import annotations

from itertools import permutations
from typing import Iterable, Sequence

import numpy as np

from paraclip.miniworld.evalsets import PairSet, pairs_from, training_vocabulary
from paraclip.miniworld.wording import words
from paraclip.miniworld.world import CONVERSE, COUNT_WORDS, SHAPE_PLURALS, ObjectGroup, SceneSpec

CANONICAL_ORDER = ("size", "colour", "texture")


def _reordered_phrase(group: ObjectGroup, rng: np.random.Generator) -> str:
    """The group's noun phrase with its adjectives in an order other than the canonical one."""
    adjectives = {"size": group.size, "colour": group.colour, "texture": group.texture}
    present = [a for a in CANONICAL_ORDER if adjectives[a] != "plain"]
    orders = [order for order in permutations(present) if list(order) != present]
    order = orders[rng.integers(len(orders))]
    noun = SHAPE_PLURALS[group.shape] if group.count > 1 else group.shape
    return " ".join([COUNT_WORDS[group.count], *(adjectives[a] for a in order), noun])


def canonical_word_paraphrase(spec: SceneSpec, rng: np.random.Generator) -> str:
    """A paraphrase of ``spec``'s canonical caption in caption words only (see the module docstring)."""
    phrases = [_reordered_phrase(g, rng) for g in spec.groups]
    if spec.relation is None:
        return phrases[0]
    return f"{phrases[1]} {CONVERSE[spec.relation]} {phrases[0]}"


def make_canonical_pairs(scenes, train_captions: Iterable[str], seed: int = 0) -> PairSet:
    """(canonical caption, canonical-word paraphrase) pairs for ``scenes``; a paraphrase with a word no
    training caption contains, or one the checker rejects, is dropped and counted."""
    vocab = training_vocabulary(train_captions)
    return pairs_from(scenes, "canonical words", seed, "canonical", canonical_word_paraphrase,
                      lambda t: set(words(t)) <= vocab)


def unseen_word_share(paraphrases: Sequence[str], known: set[str]) -> float:
    """Share of ``paraphrases`` holding at least one word outside ``known`` (e.g. the captions' words)."""
    return sum(bool(set(words(p)) - known) for p in paraphrases) / max(1, len(paraphrases))


__all__ = ["canonical_word_paraphrase", "make_canonical_pairs", "unseen_word_share"]
