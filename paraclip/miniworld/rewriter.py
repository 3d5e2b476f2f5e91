"""The scene-aware two-step rewriter: the mini-world's stand-in for the paper's LLM.

ParaCLIP (Kim et al., 2024, Sec. 3) asks an LLM to paraphrase each caption twice: step 1
``Paraphrase the given caption "{}" concisely while preserving the meaning.``, step 2 the
same on step 1's output ``... and avoiding use of existing words.``. No offline LLM does that
faithfully for scene captions (measured when the mini-world was built: the best, a 1.5B model, kept the meaning
of ~93 % but reworded only ~37 %, and its errors — dropped "small"/"striped", counts turned
into "a group of", inverted relations — are exactly what the evaluation probes). So this
rewriter plays the LLM's role with the scene's spec in hand:

* step 1 rewords the caption: a sentence frame and, per slot, a word or phrase from the
  inventory below (keeping the caption's own word with some probability, as LLMs do);
* step 2 rewords step 1's text, choosing for every slot an option none of whose content words
  occur in step 1's text, and a different frame, wherever the inventory allows.

The synonym tables live in ``wording.py`` (the evaluation generator's in-vocabulary pairs use
them too, in their own frames); its out-of-vocabulary words never occur here (tested).
Every output is deterministic in (seed, image id).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from paraclip.miniworld.wording import (
    ANAPHORIC_PHRASES, COLOUR_WORDS, RELATION_PHRASES, SHAPE_WORDS, SIZE_WORDS, fix_articles, words,
)
from paraclip.miniworld.wording import COUNT_PHRASES as SHARED_COUNTS
from paraclip.miniworld.world import CONVERSE, ObjectGroup, SceneSpec

# -- inventory: slot value -> options (the first is the canonical word; shared tables in wording.py) --

# Counts may also be said in digits here.
COUNT_PHRASES = {1: SHARED_COUNTS[1], 2: SHARED_COUNTS[2] + ("2",), 3: SHARED_COUNTS[3] + ("3",)}
# Texture options: ("pre", word) goes before the noun, ("post", phrase) after it; plain may be unsaid.
TEXTURE_WORDS = {
    "plain": (("pre", ""), ("pre", "plain"), ("pre", "solid")),
    "striped": (("pre", "striped"), ("pre", "stripy"), ("post", "with stripes")),
    "dotted": (("pre", "dotted"), ("pre", "spotted"), ("post", "with dots")),
}
# Frames for one group ({a} = its noun phrase) and for two ({a} relation {b}).
ONE_GROUP_FRAMES = ("{a}", "there {be} {a}", "a picture of {a}", "an image with {a}", "a picture that shows {a}",
                    "the image has {a}")
TWO_GROUP_FRAMES = ("{a} {rel} {b}", "{b} {conv} {a}", "there {be} {a} {rel} {b}", "{a} {be} {rel} {b}",
                    "{a} {sit} {rel} {b}", "{b} with {a} {its}")
# Noun-phrase orders: canonical pre-modifiers, or a relative clause for size and colour.
NP_ORDERS = ("pre", "pre", "relative")

# Words every option may share with step 1's text (a paraphrase must keep its grammar words).
FUNCTION_WORDS = frozenset("a an the of to on there is are with and that it its".split())
KEEP_CANONICAL = 0.4  # step 1 keeps the caption's word for a slot this often


def inventory_vocabulary() -> set[str]:
    """Every word this rewriter can emit."""
    texts: list[str] = []
    for table in (COLOUR_WORDS, SIZE_WORDS, COUNT_PHRASES, RELATION_PHRASES, ANAPHORIC_PHRASES):
        texts += [o for opts in table.values() for o in opts]
    texts += [w for opts in TEXTURE_WORDS.values() for _, w in opts]
    texts += [w for opts in SHAPE_WORDS.values() for pair in opts for w in pair]
    texts += list(ONE_GROUP_FRAMES) + list(TWO_GROUP_FRAMES) + ["is are sits sit that an"]
    return {w for t in texts for w in words(re.sub(r"\{\w+\}", " ", t))}


# -- realisation ----------------------------------------------------------------------------------

class _Chooser:
    """Picks one option per slot: freely (step 1) or avoiding given words (step 2)."""

    def __init__(self, rng: np.random.Generator, avoid: frozenset[str] = frozenset(), keep_canonical: float = 0.0):
        self.rng, self.avoid, self.keep_canonical = rng, avoid, keep_canonical

    def pick(self, options, text_of=lambda o: o):
        options = list(options)
        if self.avoid:
            fresh = [o for o in options if not (set(words(text_of(o))) - FUNCTION_WORDS) & self.avoid]
            # an option that says nothing (plain texture unsaid) is always "fresh"; prefer real words
            worded = [o for o in fresh if words(text_of(o))]
            pool = worded or fresh or options
            return pool[self.rng.integers(len(pool))]
        if self.keep_canonical and self.rng.random() < self.keep_canonical:
            return options[0]
        return options[self.rng.integers(len(options))]


def _noun_phrase(group: ObjectGroup, choose: _Chooser) -> str:
    count = choose.pick(COUNT_PHRASES[group.count])
    size = choose.pick(SIZE_WORDS[group.size])
    colour = choose.pick(COLOUR_WORDS[group.colour])
    where, texture = choose.pick(TEXTURE_WORDS[group.texture], text_of=lambda o: o[1])
    singular, plural = choose.pick(SHAPE_WORDS[group.shape], text_of=lambda o: " ".join(o))
    noun = plural if group.count > 1 else singular
    pre = texture if where == "pre" else ""
    post = texture if where == "post" else ""
    if NP_ORDERS[choose.rng.integers(len(NP_ORDERS))] == "relative":
        be = "are" if group.count > 1 else "is"
        parts = [count, pre, noun, post, "that", be, size, "and", colour]
    else:
        parts = [count, size, colour, pre, noun, post]
    return " ".join(p for p in parts if p)


def realise(spec: SceneSpec, choose: _Chooser, frame: str) -> str:
    """One sentence for ``spec`` in ``frame`` with the chooser's word choices."""
    a = _noun_phrase(spec.groups[0], choose)
    plural_a = spec.groups[0].count > 1
    fill = {"a": a, "be": "are" if plural_a else "is", "sit": "sit" if plural_a else "sits"}
    if spec.relation is not None:
        fill["b"] = _noun_phrase(spec.groups[1], choose)
        fill["rel"] = choose.pick(RELATION_PHRASES[spec.relation])
        fill["conv"] = choose.pick(RELATION_PHRASES[CONVERSE[spec.relation]])
        fill["its"] = choose.pick(ANAPHORIC_PHRASES[spec.relation])
    return fix_articles(" ".join(frame.format(**fill).split()))


@dataclass
class SceneRewriter:
    """Two-step paraphrases of scene captions, from the scene's spec (see the module docstring)."""

    seed: int = 0
    keep_canonical: float = KEEP_CANONICAL
    name: str = "miniworld-rewriter"

    def _rng(self, key: str, step: int) -> np.random.Generator:
        digest = hashlib.sha256(f"{self.seed}|{key}|{step}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    @staticmethod
    def _frames(spec: SceneSpec) -> tuple[str, ...]:
        return TWO_GROUP_FRAMES if spec.relation is not None else ONE_GROUP_FRAMES

    def step1(self, spec: SceneSpec, key: str) -> tuple[str, str]:
        """(text, frame): a rewording of the caption of ``spec`` (never the caption itself)."""
        from paraclip.miniworld.world import canonical_caption

        rng = self._rng(key, 1)
        frames = self._frames(spec)
        caption = canonical_caption(spec)
        for _ in range(20):  # a copy is not a paraphrase (the engine rejects copies too): draw again
            frame = frames[rng.integers(len(frames))]
            text = realise(spec, _Chooser(rng, keep_canonical=self.keep_canonical), frame)
            if text != caption:
                break
        return text, frame

    def step2(self, spec: SceneSpec, text1: str, frame1: str, key: str) -> str:
        """A rewording of ``text1`` that avoids its content words and its frame where possible."""
        rng = self._rng(key, 2)
        frames = [f for f in self._frames(spec) if f != frame1] or list(self._frames(spec))
        frame = frames[rng.integers(len(frames))]
        return realise(spec, _Chooser(rng, avoid=frozenset(words(text1)) - FUNCTION_WORDS), frame)

    def paraphrase(self, spec: SceneSpec, key: str) -> tuple[str, str]:
        """(paraphrase_1, paraphrase_2) for the scene ``key`` (its image id)."""
        text1, frame1 = self.step1(spec, key)
        return text1, self.step2(spec, text1, frame1, key)
