"""The held-out rewriter: a third paraphrase set whose phrasings no training arm saw.

The in-vocabulary evaluation pairs (``evalsets.py``) use the training rewriter's own synonym
table, so a gain there can simply mean "the fine-tuned model learnt the rewriter's words". The
out-of-vocabulary pairs use words no training text contains, which no model trained here can
read. This set sits between the two: every *word* occurs in the training text (so every model
can read it), but its synonyms and sentence structures are compositions that occur in no
training text (checked mechanically when the sets are made, like the OOV words):

* colours as compounds of two training colour words (``ruby red``, ``cobalt blue``);
* shapes with a ``shape`` suffix (``disc shape``, ``wedge shapes``);
* textures as a prepositional or relative phrase (``with dots on it``, ``that are striped``);
* relations as new multi-word phrases (``on the left of``, ``over the top of``, ``underneath
  it``, ``to the right of it``);
* frames that neither the rewriter nor the evaluation generator uses (``there is B and A is on
  its left``, ``on the left of B sits A``, ``a picture with A on it``).

Sizes and counts keep the training words (the training vocabulary has no unused compositions
for them that read naturally). Each paraphrase is verified by the scene-spec checker to keep
the scene's meaning. Deterministic in (seed, image id). The phrase tables are
``wording.HELDOUT_*``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from paraclip.miniworld.evalsets import pairs_from, training_vocabulary
from paraclip.miniworld.wording import (
    COUNT_PHRASES, HELDOUT_ANAPHORIC, HELDOUT_COLOURS, HELDOUT_RELATIONS, HELDOUT_SHAPES, HELDOUT_TEXTURES, SIZE_WORDS,
    fix_articles, words,
)
from paraclip.miniworld.world import ObjectGroup, SceneSpec

ONE_GROUP_FRAMES = ("an image of {a}", "the image shows {a}", "a picture with {a} on it")
TWO_GROUP_FRAMES = ("there {be_b} {b} and {a} {be_a} {its}", "{b} and {a} {its}", "{a} {be_a} there {rel} {b}",
                    "{rel} {b} {sit} {a}")


def heldout_phrases() -> set[str]:
    """The multi-word phrases that make this set new (each must occur in no training text)."""
    out = {o for opts in HELDOUT_COLOURS.values() for o in opts}
    out |= {w for opts in HELDOUT_SHAPES.values() for pair in opts for w in pair}
    out |= {o.replace("{be}", be) for opts in HELDOUT_TEXTURES.values() for o in opts for be in ("is", "are")}
    out |= {o for table in (HELDOUT_RELATIONS, HELDOUT_ANAPHORIC) for opts in table.values() for o in opts}
    return out


def _pick(rng: np.random.Generator, options: Sequence):
    return options[rng.integers(len(options))]


def _noun_phrase(group: ObjectGroup, rng: np.random.Generator, definite: bool = False, on_it: bool = True) -> str:
    """``definite``: after a relation that brings its own "the" (one object: no count word);
    ``on_it``: whether "with dots on it" may be used (not inside a frame that says "on it")."""
    be = "are" if group.count > 1 else "is"
    singular, plural = _pick(rng, HELDOUT_SHAPES[group.shape])
    texture = ""
    if group.texture != "plain":
        options = [o for o in HELDOUT_TEXTURES[group.texture] if (group.count == 1 and on_it) or "on it" not in o]
        texture = _pick(rng, options).replace("{be}", be)
    count = {1: "", 2: "two", 3: "three"}[group.count] if definite else _pick(rng, COUNT_PHRASES[group.count])
    parts = [count, _pick(rng, SIZE_WORDS[group.size]), _pick(rng, HELDOUT_COLOURS[group.colour]),
             plural if group.count > 1 else singular, texture]
    return " ".join(p for p in parts if p)


def heldout_paraphrase(spec: SceneSpec, rng: np.random.Generator) -> str:
    """A paraphrase of ``spec``'s caption in the held-out phrasings."""
    if spec.relation is None:
        frame = _pick(rng, ONE_GROUP_FRAMES)
        return fix_articles(frame.format(a=_noun_phrase(spec.groups[0], rng, on_it="on it" not in frame)))
    frame = _pick(rng, TWO_GROUP_FRAMES)
    a, b = spec.groups
    rel = _pick(rng, HELDOUT_RELATIONS[spec.relation])
    fill = {"a": _noun_phrase(a, rng), "b": _noun_phrase(b, rng, definite="{rel}" in frame and rel.endswith(" the")),
            "be_a": "are" if a.count > 1 else "is", "be_b": "are" if b.count > 1 else "is",
            "sit": "sit" if a.count > 1 else "sits", "rel": rel, "its": _pick(rng, HELDOUT_ANAPHORIC[spec.relation])}
    return fix_articles(" ".join(frame.format(**fill).split()))


def phrases_in_training(texts: Iterable[str]) -> list[str]:
    """Held-out phrases that do occur in ``texts`` (as whole-word sequences); [] when the set is clean."""
    phrases = {p: " " + " ".join(words(p)) + " " for p in heldout_phrases()}
    found = set()
    for text in texts:
        padded = " " + " ".join(words(text)) + " "
        found |= {p for p, needle in phrases.items() if needle in padded}
    return sorted(found)


def bigram_novelty(texts: Sequence[str], train_texts: Iterable[str]) -> float:
    """Share of the word bigrams of ``texts`` that no training text contains (a structure measure)."""
    seen = set()
    for t in train_texts:
        w = words(t)
        seen.update(zip(w, w[1:]))
    grams = [g for t in texts for g in zip(words(t), words(t)[1:])]
    return sum(g not in seen for g in grams) / max(len(grams), 1)


def make_heldout_pairs(scenes, train_texts: Sequence[str], seed: int = 0):
    """Held-out pairs (canonical caption, held-out paraphrase) for ``scenes``, as an evalsets ``PairSet``.

    Raises when a held-out phrase occurs in the training text (the set would not be held out);
    a paraphrase with a word outside the training vocabulary, or one the checker rejects, is
    dropped and counted."""
    leaked = phrases_in_training(train_texts)
    if leaked:
        raise ValueError(f"held-out phrases occur in the training text: {leaked}")
    vocab = training_vocabulary(train_texts)
    return pairs_from(scenes, "held-out rewriter", seed, "heldout", heldout_paraphrase,
                      lambda t: set(words(t)) <= vocab)


__all__ = ["bigram_novelty", "heldout_paraphrase", "heldout_phrases", "make_heldout_pairs", "phrases_in_training"]
