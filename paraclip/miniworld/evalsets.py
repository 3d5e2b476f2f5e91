"""Held-out evaluation sets of the mini-world, written by a generator independent of the rewriter.

* **Paraphrase pairs** (query = the canonical caption of a held-out scene, paraphrase = this
  module's rewording) for paraphrased retrieval (AO@k / JS@k), in two subsets reported apart:

  - *in-vocabulary*: every word occurs somewhere in the training text (captions and training
    paraphrases), in this generator's own frames and word orders — fronting ("to the left of
    a blue square there is a red circle"), possession ("a blue square has a red circle to its
    left"), converse relations with a copula, absolute positions ("... on the left and ... on
    the right"), adjective reordering, relative clauses, counts in words;
  - *out-of-vocabulary*: one or more slots say their value with a synonym that no training
    text contains (``OOV_*`` below). A text encoder trained here has never seen those words, so
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
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from paraclip.miniworld.world import (
    CONVERSE,
    SHAPE_PLURALS,
    ObjectGroup,
    Scene,
    SceneSpec,
    canonical_caption,
)

# -- the generator's inventory -------------------------------------------------------------------
# Candidates for the in-vocabulary subset (only those whose words occur in training text are used).
EVAL_COLOURS = {
    "red": ("red", "crimson", "ruby"), "green": ("green", "emerald", "lime"), "blue": ("blue", "azure", "cobalt"),
    "yellow": ("yellow", "golden", "lemon"), "purple": ("purple", "violet", "lilac"),
    "orange": ("orange", "amber", "tangerine"),
}
EVAL_SIZES = {"small": ("small", "little", "tiny"), "large": ("large", "big", "huge")}
EVAL_TEXTURES = {"plain": ("", "plain", "solid"), "striped": ("striped", "stripy", "with stripes"),
                 "dotted": ("dotted", "spotted", "with dots")}
EVAL_SHAPES = {
    "circle": (("circle", "circles"), ("disc", "discs"), ("round shape", "round shapes")),
    "square": (("square", "squares"), ("box", "boxes"), ("block", "blocks")),
    "triangle": (("triangle", "triangles"), ("wedge", "wedges"), ("trigon", "trigons")),
    "star": (("star", "stars"), ("pentagram", "pentagrams"), ("spiky shape", "spiky shapes")),
    "cross": (("cross", "crosses"), ("plus sign", "plus signs"), ("cruciform shape", "cruciform shapes")),
}
EVAL_COUNTS = {1: ("a", "one", "a single"), 2: ("two", "a pair of"), 3: ("three", "a trio of")}
EVAL_RELATIONS = {
    "left of": ("left of", "to the left of", "on the left side of"),
    "right of": ("right of", "to the right of", "on the right side of"),
    "above": ("above", "over", "on top of"),
    "below": ("below", "under", "underneath"),
}
EVAL_ANAPHORIC = {"left of": ("to its left", "on its left side"), "right of": ("to its right", "on its right side"),
                  "above": ("above it", "over it"), "below": ("below it", "under it")}

# Out-of-vocabulary synonyms: never in any training text (checked in the pipeline and the tests).
OOV_COLOURS = {"red": ("scarlet", "vermilion"), "green": ("jade", "verdant"), "blue": ("sapphire", "cerulean"),
               "yellow": ("saffron", "mustard"), "purple": ("plum", "amethyst"), "orange": ("apricot", "pumpkin")}
OOV_SIZES = {"small": ("petite", "miniature"), "large": ("giant", "enormous")}
OOV_TEXTURES = {"striped": ("banded", "pinstriped"), "dotted": ("speckled", "freckled")}
OOV_SHAPES = {"circle": (("orb", "orbs"), ("roundel", "roundels")), "square": (("tile", "tiles"),),
              "triangle": (("pyramid", "pyramids"),), "star": (("sparkle", "sparkles"),),
              "cross": (("crucifix", "crucifixes"),)}
OOV_COUNTS = {2: ("a duo of",), 3: ("a triad of",)}
OOV_RELATIONS = {"left of": ("west of", "leftward of"), "right of": ("east of", "rightward of"),
                 "above": ("atop", "higher than"), "below": ("beneath", "lower than")}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def oov_words() -> set[str]:
    """Every word of the out-of-vocabulary synonyms except the grammar words "a" and "of"."""
    texts = [t for table in (OOV_COLOURS, OOV_SIZES, OOV_TEXTURES, OOV_COUNTS, OOV_RELATIONS)
             for opts in table.values() for t in opts]
    texts += [w for opts in OOV_SHAPES.values() for pair in opts for w in pair]
    grammar = {"a", "of"}
    return {w for t in texts for w in _words(t)} - grammar


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
        return self.vocab is None or all(w in self.vocab for w in _words(text))

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
    count = w.pick(f"count{tag}", EVAL_COUNTS[group.count], OOV_COUNTS.get(group.count, ()))
    size = w.pick(f"size{tag}", EVAL_SIZES[group.size], OOV_SIZES[group.size])
    colour = w.pick(f"colour{tag}", EVAL_COLOURS[group.colour], OOV_COLOURS[group.colour])
    texture = w.pick(f"texture{tag}", EVAL_TEXTURES[group.texture], OOV_TEXTURES.get(group.texture, ()))
    singular, plural = w.pick(f"shape{tag}", EVAL_SHAPES[group.shape], OOV_SHAPES[group.shape],
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


def _fix_articles(text: str) -> str:
    text = re.sub(r"\ba (?=[aeiou])", "an ", text)
    return re.sub(r"\ban (?=[^aeiou\W])", "a ", text)


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
            fill[name] = w.pick("relation", EVAL_RELATIONS[spec.relation], OOV_RELATIONS[spec.relation])
        elif name == "conv":
            conv = CONVERSE[spec.relation]
            fill[name] = w.pick("relation", EVAL_RELATIONS[conv], OOV_RELATIONS[conv])
        else:
            fill[name] = w.pick("anaphoric", EVAL_ANAPHORIC[spec.relation])
    fill["be_a"] = "are" if spec.groups[0].count > 1 else "is"
    if spec.relation is not None:
        fill["be_b"] = "are" if spec.groups[1].count > 1 else "is"
    text = _fix_articles(" ".join(frame.format(**fill).split()))
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

@dataclass
class PairSet:
    """Paraphrase pairs of one subset: original (canonical caption), paraphrase, image id."""

    name: str
    originals: list[str] = field(default_factory=list)
    paraphrases: list[str] = field(default_factory=list)
    image_ids: list[str] = field(default_factory=list)
    oov: list[list[str]] = field(default_factory=list)  # OOV phrases per pair (empty for in-vocabulary)
    dropped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.originals)

    def records(self) -> list[dict]:
        return [{"image_id": i, "original": o, "paraphrase": p, "oov": v}
                for i, o, p, v in zip(self.image_ids, self.originals, self.paraphrases, self.oov)]


@dataclass
class SwapSet:
    """True/false caption pairs of one kind (relation or attribute swap)."""

    name: str
    image_ids: list[str] = field(default_factory=list)
    true_captions: list[str] = field(default_factory=list)
    false_captions: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.image_ids)

    def records(self) -> list[dict]:
        return [{"image_id": i, "true_caption": t, "false_caption": f, "group": g}
                for i, t, f, g in zip(self.image_ids, self.true_captions, self.false_captions, self.groups)]


def _rng(seed: int, what: str, image_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}|{what}|{image_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def make_pair_sets(scenes: Sequence[Scene], train_vocab: set[str], seed: int = 0) -> tuple[PairSet, PairSet]:
    """(in-vocabulary, out-of-vocabulary) pairs for ``scenes``, one of each per scene.

    Every paraphrase is checked: it must keep the scene's meaning (scene-spec checker), an
    in-vocabulary one may use only ``train_vocab`` words, an OOV one must contain at least one
    OOV word and no other unknown word. Pairs failing a check are dropped and counted.
    """
    from paraclip.miniworld.checker import check

    leaked = oov_words() & train_vocab
    if leaked:
        raise ValueError(f"out-of-vocabulary words occur in the training text: {sorted(leaked)}")
    oov_set = oov_words()
    in_vocab, out_vocab = PairSet("in-vocabulary"), PairSet("out-of-vocabulary")
    for scene in scenes:
        rng = _rng(seed, "in-vocab", scene.image_id)
        text, _ = eval_paraphrase(scene.spec, rng, train_vocab)
        _add(in_vocab, scene, text, [], check, lambda t: set(_words(t)) <= train_vocab)
        rng = _rng(seed, "oov", scene.image_id)
        slots = _slots(scene.spec)
        for _ in range(20):  # redraw until a chosen slot is said (a frame may not use the relation)
            chosen = [s for s in slots if rng.random() < 0.5] or [slots[rng.integers(len(slots))]]
            text, used = eval_paraphrase(scene.spec, rng, train_vocab, chosen)
            if used:
                break
        unknown = lambda t: set(_words(t)) - train_vocab  # noqa: E731
        _add(out_vocab, scene, text, used, check, lambda t: bool(unknown(t)) and unknown(t) <= oov_set)
    return in_vocab, out_vocab


def _add(target: PairSet, scene: Scene, text: str, used: list[str], check, vocab_ok) -> None:
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
        vocab.update(_words(t))
    return vocab


# -- the pipeline's stage --------------------------------------------------------------------------

def write_evalsets(run) -> dict:
    """Paraphrase pairs (in-vocabulary, out-of-vocabulary, held-out rewriter) and swap pairs for the
    test world (``evalsets/``) and the validation world (``evalsets/val/``)."""
    import json

    from paraclip.files import atomic_write_text
    from paraclip.miniworld.heldout import bigram_novelty, make_heldout_pairs
    from paraclip.miniworld.pipeline import load_scenes, read_jsonl, write_jsonl
    from paraclip.miniworld.world import make_scene

    cfg = run.config
    train_texts = [t for r in read_jsonl(run.paraphrases) if r["status"] == "ok"
                   for t in (r["caption"], r["paraphrase_1"], r["paraphrase_2"])]
    vocab = training_vocabulary(train_texts)
    summary: dict = {"training_vocabulary": len(vocab), "oov_words": sorted(oov_words()),
                               "oov_words_in_training_text": sorted(oov_words() & vocab)}
    for split, out in (("eval", run.evalsets), ("val", run.evalsets / "val")):
        scenes = [make_scene(cfg.world_seed, split, int(image_id.split("-")[1]), cfg.image_size, spec=spec)
                  for image_id, _, spec in load_scenes(run, split)]
        in_vocab, out_vocab = make_pair_sets(scenes, vocab, seed=cfg.world_seed)
        heldout = make_heldout_pairs(scenes, train_texts, seed=cfg.world_seed)
        relation, attribute = make_swap_sets(scenes, seed=cfg.world_seed)
        write_jsonl(out / "pairs-in-vocab.jsonl", in_vocab.records())
        write_jsonl(out / "pairs-oov.jsonl", out_vocab.records())
        write_jsonl(out / "pairs-heldout.jsonl", heldout.records())
        write_jsonl(out / "swaps-relation.jsonl", relation.records())
        write_jsonl(out / "swaps-attribute.jsonl", attribute.records())
        counts = {"in_vocab_pairs": len(in_vocab), "in_vocab_dropped": in_vocab.dropped,
                  "oov_pairs": len(out_vocab), "oov_dropped": out_vocab.dropped,
                  "heldout_pairs": len(heldout), "heldout_dropped": heldout.dropped,
                  "relation_swaps": len(relation), "attribute_swaps": len(attribute)}
        if split == "eval":
            summary.update(counts)
            # share of each set's word bigrams that no training text contains: how new its phrasing is
            summary["bigram_novelty"] = {name: round(bigram_novelty(pairs.paraphrases, train_texts), 3)
                                         for name, pairs in (("in_vocab", in_vocab), ("oov", out_vocab),
                                                             ("heldout", heldout))}
        else:
            summary["val"] = counts
    atomic_write_text(run.evalsets / "summary.json", json.dumps(summary, indent=1))
    return summary


__all__ = ["EVAL_COLOURS", "OOV_COLOURS", "PairSet", "SwapSet", "eval_paraphrase", "make_pair_sets", "make_swap_sets",
           "oov_words", "training_vocabulary", "write_evalsets", "SHAPE_PLURALS"]
