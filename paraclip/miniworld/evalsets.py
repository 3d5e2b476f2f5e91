"""Held-out evaluation sets of the mini-world, written by a generator of their own (not the rewriter's).

* **Paraphrase pairs** (query = the canonical caption of a held-out scene, paraphrase = this
  module's rewording) for paraphrased retrieval (AO@k / JS@k), in two subsets reported apart:

  - *in-vocabulary*: every word occurs somewhere in the training text (captions and training
    paraphrases): the rewriter's synonyms (``wording.py``) in this generator's own frames and
    word orders — fronting ("to the left of a blue square there is a red circle"), possession ("a blue square has a red circle to its
    left"), converse relations with a copula, absolute positions ("... on the left and ... on
    the right"), adjective reordering, relative clauses, counts in words;
  - *out-of-vocabulary*: one or more slots say their value with a synonym that no training
    text contains (``wording.OOV_*``). A text encoder trained here has never seen those words, so
    this subset measures the limit honestly.

  Which subset a paraphrase is in is decided mechanically from the training vocabulary, and
  every paraphrase is verified by the scene-spec checker to keep the scene's meaning.
* **Swap pairs**, offline analogs of ARO's VG-Relation / VG-Attribution (Yuksekgonul et al.,
  2023): the true canonical caption vs the same words with the two groups' roles swapped
  (relation swap) or one adjective swapped between the groups (attribute swap).
"""

from __future__ import annotations

import hashlib
import re
import string
from typing import ClassVar, Iterable, Sequence

import numpy as np

from paraclip.miniworld.checker import check
from paraclip.miniworld.wording import (
    ANAPHORIC_PHRASES, COLOUR_WORDS, COUNT_PHRASES, EVAL_TEXTURES, OOV_COLOURS, OOV_COUNTS, OOV_RELATIONS, OOV_SHAPES,
    OOV_SIZES, OOV_TEXTURES, RELATION_PHRASES, SHAPE_WORDS, SIZE_WORDS, fix_articles, words,
)
from paraclip.miniworld.world import CONVERSE, ObjectGroup, Scene, SceneSpec, canonical_caption


def oov_words() -> set[str]:
    """Every word of the out-of-vocabulary synonyms except the grammar words "a" and "of"."""
    texts = [t for table in (OOV_COLOURS, OOV_SIZES, OOV_TEXTURES, OOV_COUNTS, OOV_RELATIONS)
             for opts in table.values() for t in opts]
    texts += [w for opts in OOV_SHAPES.values() for pair in opts for w in pair]
    grammar = {"a", "of"}
    return {w for t in texts for w in words(t)} - grammar


# Frames: {a} = first group, {b} = second; {rel} relation of a to b, {conv} its converse,
# {its} anaphoric relation of a to b ("to its left"), {be_a}/{be_b} agree with a/b.
ONE_GROUP_FRAMES = ("{a}", "the picture shows {a}", "an image that has {a}")
TWO_GROUP_FRAMES = (
    "{rel} {b} there {be_a} {a}",
    "{rel} {b} {be_a} {a}",
    "{b} has {a} {its}",              # only when b is one object ("has")
    "{b} {be_b} {conv} {a}",
    "the image has {a} {rel} {b}",
    "{a} on the left and {b} on the right",   # only for "left of"
    "{b} on the left and {a} on the right",   # only for "right of"
)
NP_ORDERS = ("colour-first", "texture-first", "relative-colour", "relative-colour-size")


def _frame_fits(frame: str, spec: SceneSpec) -> bool:
    if "has {a} {its}" in frame:
        return spec.groups[1].count == 1
    if frame.startswith("{a} on the left"):
        return spec.relation == "left of"
    if frame.startswith("{b} on the left"):
        return spec.relation == "right of"
    return True


# -- choosing words -------------------------------------------------------------------------------

class _Words:
    """Per-slot options: in-vocabulary ones (filtered by the training vocabulary) or OOV ones."""

    def __init__(self, rng: np.random.Generator, vocab: set[str] | None, oov_slots: frozenset[str]):
        self.rng, self.vocab, self.oov_slots = rng, vocab, oov_slots
        self.used_oov: list[str] = []

    def _known(self, text: str) -> bool:
        return self.vocab is None or all(w in self.vocab for w in words(text))

    def pick(self, slot: str, options: Sequence, oov: Sequence = (), text_of=lambda o: o):
        if slot in self.oov_slots and oov:
            choice = oov[self.rng.integers(len(oov))]
            self.used_oov.append(text_of(choice))
            return choice
        known = [o for o in options if self._known(text_of(o))]
        if not known:  # a tiny training set may lack every wording; the vocabulary check then drops the pair
            return options[0]
        return known[self.rng.integers(len(known))]


def _noun_phrase(group: ObjectGroup, w: _Words, tag: str) -> str:
    count = w.pick(f"count{tag}", COUNT_PHRASES[group.count], OOV_COUNTS.get(group.count, ()))
    size = w.pick(f"size{tag}", SIZE_WORDS[group.size], OOV_SIZES[group.size])
    colour = w.pick(f"colour{tag}", COLOUR_WORDS[group.colour], OOV_COLOURS[group.colour])
    texture = w.pick(f"texture{tag}", EVAL_TEXTURES[group.texture], OOV_TEXTURES.get(group.texture, ()))
    singular, plural = w.pick(f"shape{tag}", SHAPE_WORDS[group.shape], OOV_SHAPES[group.shape],
                              text_of=lambda o: " ".join(o))
    noun = plural if group.count > 1 else singular
    pre, post = ("", texture) if texture.startswith("with ") else (texture, "")
    be = "are" if group.count > 1 else "is"
    order = NP_ORDERS[w.rng.integers(len(NP_ORDERS))]
    if order == "colour-first":
        parts = [count, colour, size, pre, noun, post]
    elif order == "texture-first" and pre:
        parts = [count, pre, size, colour, noun, post]
    elif order == "relative-colour-size":
        parts = [count, pre, noun, post, "that", be, colour, "and", size]
    else:  # relative-colour (also texture-first without a pre-noun texture)
        parts = [count, size, pre, noun, post, "that", be, colour]
    return " ".join(p for p in parts if p)


def eval_paraphrase(spec: SceneSpec, rng: np.random.Generator, vocab: set[str] | None = None,
                    oov_slots: Iterable[str] = ()) -> tuple[str, list[str]]:
    """(paraphrase, OOV phrases used) of ``spec`` in this generator's frames.

    ``vocab`` restricts in-vocabulary choices to words it contains; ``oov_slots`` (e.g.
    ``colour0``, ``relation``) are said with out-of-vocabulary synonyms instead.
    """
    w = _Words(rng, vocab, frozenset(oov_slots))
    frames = ONE_GROUP_FRAMES if spec.relation is None else [f for f in TWO_GROUP_FRAMES if _frame_fits(f, spec)]
    frames = [f for f in frames if w._known(re.sub(r"\{\w+\}", " ", f))] or list(frames)
    frame = frames[rng.integers(len(frames))]
    needed = {name for _, name, _, _ in string.Formatter().parse(frame) if name}
    fill = {}
    for name in ("a", "b", "rel", "conv", "its"):  # a fixed order keeps the draws reproducible
        if name not in needed:
            continue
        if name in ("a", "b"):
            fill[name] = _noun_phrase(spec.groups[0 if name == "a" else 1], w, "0" if name == "a" else "1")
        elif name == "rel":
            fill[name] = w.pick("relation", RELATION_PHRASES[spec.relation], OOV_RELATIONS[spec.relation])
        elif name == "conv":
            conv = CONVERSE[spec.relation]
            fill[name] = w.pick("relation", RELATION_PHRASES[conv], OOV_RELATIONS[conv])
        else:
            fill[name] = w.pick("anaphoric", ANAPHORIC_PHRASES[spec.relation])
    fill["be_a"] = "are" if spec.groups[0].count > 1 else "is"
    if spec.relation is not None:
        fill["be_b"] = "are" if spec.groups[1].count > 1 else "is"
    text = fix_articles(" ".join(frame.format(**fill).split()))
    return text, w.used_oov


def _slots(spec: SceneSpec) -> list[str]:
    """Slots of a spec that have out-of-vocabulary synonyms."""
    out = []
    for tag, g in enumerate(spec.groups):
        out += [f"size{tag}", f"colour{tag}", f"shape{tag}"]
        if g.texture in OOV_TEXTURES:
            out.append(f"texture{tag}")
        if g.count in OOV_COUNTS:
            out.append(f"count{tag}")
    if spec.relation is not None:
        out.append("relation")
    return out


# -- the sets --------------------------------------------------------------------------------------

class _Columns:
    """A set kept column-wise: a list per column, one entry per item, appended together. A subclass
    names its columns once, in ``COLUMNS`` (record key -> attribute); ``records()`` zips them into
    one dict per item, in that key order."""

    COLUMNS: ClassVar[dict[str, str]] = {}

    def __init__(self, name: str):
        self.name = name
        for attribute in self.COLUMNS.values():
            setattr(self, attribute, [])

    def __len__(self) -> int:
        return len(self.image_ids)

    def records(self) -> list[dict]:
        columns = [getattr(self, attribute) for attribute in self.COLUMNS.values()]
        return [dict(zip(self.COLUMNS, row)) for row in zip(*columns)]


class PairSet(_Columns):
    """Paraphrase pairs of one subset: the image, the original (its canonical caption), the paraphrase
    and the OOV phrases it uses (none for in-vocabulary); ``dropped`` counts the pairs left out, by why."""

    COLUMNS = {"image_id": "image_ids", "original": "originals", "paraphrase": "paraphrases", "oov": "oov"}

    def __init__(self, name: str):
        super().__init__(name)
        self.dropped: dict[str, int] = {}


class SwapSet(_Columns):
    """True/false caption pairs of one kind (relation or attribute swap); the group of each is the
    relation or the swapped attribute."""

    COLUMNS = {"image_id": "image_ids", "true_caption": "true_captions", "false_caption": "false_captions",
               "group": "groups"}


def _rng(seed: int, what: str, image_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}|{what}|{image_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def make_pair_sets(scenes: Sequence[Scene], train_vocab: set[str], seed: int = 0) -> tuple[PairSet, PairSet]:
    """(in-vocabulary, out-of-vocabulary) pairs for ``scenes``, one of each per scene.

    Every paraphrase is checked: it must keep the scene's meaning (scene-spec checker), an
    in-vocabulary one may use only ``train_vocab`` words, an OOV one must contain at least one
    OOV word and no other unknown word. Pairs failing a check are dropped and counted.
    """
    leaked = oov_words() & train_vocab
    if leaked:
        raise ValueError(f"out-of-vocabulary words occur in the training text: {sorted(leaked)}")
    oov_set = oov_words()
    in_vocab, out_vocab = PairSet("in-vocabulary"), PairSet("out-of-vocabulary")
    for scene in scenes:
        rng = _rng(seed, "in-vocab", scene.image_id)
        text, _ = eval_paraphrase(scene.spec, rng, train_vocab)
        _add(in_vocab, scene, text, [], lambda t: set(words(t)) <= train_vocab)
        rng = _rng(seed, "oov", scene.image_id)
        slots = _slots(scene.spec)
        for _ in range(20):  # redraw until a chosen slot is said (a frame may not use the relation)
            chosen = [s for s in slots if rng.random() < 0.5] or [slots[rng.integers(len(slots))]]
            text, used = eval_paraphrase(scene.spec, rng, train_vocab, chosen)
            if used:
                break
        unknown = lambda t: set(words(t)) - train_vocab  # noqa: E731
        _add(out_vocab, scene, text, used, lambda t: bool(unknown(t)) and unknown(t) <= oov_set)
    return in_vocab, out_vocab


def _add(target: PairSet, scene: Scene, text: str, used: list[str], vocab_ok) -> None:
    if text == scene.caption:
        target.dropped["same as the caption"] = target.dropped.get("same as the caption", 0) + 1
        return
    if not vocab_ok(text):
        target.dropped["vocabulary check failed"] = target.dropped.get("vocabulary check failed", 0) + 1
        return
    result = check(text, scene.spec)
    if not result.ok:  # pragma: no cover - the generator is tested to always keep the meaning
        key = f"meaning check failed ({result.reason})"
        target.dropped[key] = target.dropped.get(key, 0) + 1
        return
    target.originals.append(scene.caption)
    target.paraphrases.append(text)
    target.image_ids.append(scene.image_id)
    target.oov.append(used)


def pairs_from(scenes: Sequence[Scene], name: str, seed: int, what: str, paraphrase, vocab_ok) -> PairSet:
    """One pair per scene from ``paraphrase(spec, rng)`` (``rng`` a pure function of seed, ``what`` and the
    image id); a pair failing ``vocab_ok(text)`` or the meaning check is dropped and counted."""
    pairs = PairSet(name)
    for scene in scenes:
        _add(pairs, scene, paraphrase(scene.spec, _rng(seed, what, scene.image_id)), [], vocab_ok)
    return pairs


SWAPPABLE_ATTRIBUTES = ("colour", "size", "texture")  # adjectives, as VG-Attribution swaps adjectives


def make_swap_sets(scenes: Sequence[Scene], seed: int = 0) -> tuple[SwapSet, SwapSet]:
    """(relation swaps, attribute swaps) for the two-group scenes, in the canonical grammar.

    Relation swap: ``B rel A`` for ``A rel B`` (same words, roles exchanged; grouped by relation).
    Attribute swap: one adjective that differs between the groups exchanged between them
    (grouped by attribute). Both false captions always mean something else than the scene.
    """
    relation, attribute = SwapSet("relation-swap"), SwapSet("attribute-swap")
    for scene in scenes:
        spec = scene.spec
        if spec.relation is None:
            continue
        a, b = spec.groups
        false_rel = canonical_caption(SceneSpec((b, a), spec.relation))
        relation.image_ids.append(scene.image_id)
        relation.true_captions.append(scene.caption)
        relation.false_captions.append(false_rel)
        relation.groups.append(spec.relation)
        differing = [name for name in SWAPPABLE_ATTRIBUTES if getattr(a, name) != getattr(b, name)]
        if not differing:
            continue
        name = differing[_rng(seed, "attribute-swap", scene.image_id).integers(len(differing))]
        a2 = ObjectGroup(**{**a.__dict__, name: getattr(b, name)})
        b2 = ObjectGroup(**{**b.__dict__, name: getattr(a, name)})
        swapped = SceneSpec((a2, b2), spec.relation)
        attribute.image_ids.append(scene.image_id)
        attribute.true_captions.append(scene.caption)
        attribute.false_captions.append(canonical_caption(swapped))
        attribute.groups.append(name)
    return relation, attribute


def training_vocabulary(texts: Iterable[str]) -> set[str]:
    """Every word of the training text (captions and paraphrases)."""
    vocab: set[str] = set()
    for t in texts:
        vocab.update(words(t))
    return vocab


__all__ = ["PairSet", "SwapSet", "eval_paraphrase", "make_pair_sets", "make_swap_sets", "oov_words",
           "training_vocabulary"]
