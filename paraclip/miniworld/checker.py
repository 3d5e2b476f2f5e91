"""The scene-spec checker: does a text say exactly what a scene shows?

Used to filter paraphrases from an LLM (the pipeline's second paraphrase source) and to
verify the mini-world's own generators. :func:`parse_caption` reads a caption — canonical,
from the rewriter, from the evaluation generator, or from an LLM — into a :class:`SceneSpec`;
:func:`check` compares it with the true spec up to meaning (``A left of B`` = ``B right of A``)
and names the first difference: an attribute changed or dropped, a count changed, the
relation changed, or a text it cannot read. It is deliberately strict: anything it cannot
parse is rejected (and counted as such), so an accepted text says what is drawn.

The lexicon is the union of the canonical grammar, the rewriter's inventory, the evaluation
generator's synonyms (in- and out-of-vocabulary), the held-out rewriter's phrases and a few
words LLMs use; words that change
a meaning and that the world has no value for ("several", "a group of", "white", "next to",
"between", "not", ...) reject a text outright. Other unknown words are filler.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from paraclip.miniworld import rewriter, wording
from paraclip.miniworld.wording import words
from paraclip.miniworld.world import (
    COLOURS, CONVERSE, COUNT_WORDS, RELATIONS, SHAPE_PLURALS, SHAPES, SIZES, TEXTURES, ObjectGroup, SceneSpec,
)

# Item kinds
COUNT, SIZE, COLOUR, TEXTURE, SHAPE, REL, ITS, HAS, POS, BLOCK = (
    "count", "size", "colour", "texture", "shape", "rel", "its", "has", "pos", "block")

# Words LLMs use that the other inventories do not, mapped to world values.
EXTRA = {
    COLOUR: {"red": ("reddish",), "yellow": ("gold", "yellowish"), "purple": ("violet-coloured",),
             "blue": ("bluish",), "green": ("greenish",), "orange": ("orangey",)},
    SIZE: {"small": ("smaller-sized",), "large": ("larger-sized",)},
    TEXTURE: {"striped": ("stripes", "stripe", "lines"), "dotted": ("dots", "polka dot", "polka dots", "spots",
                                                                      "polka dotted", "spotty")},
    SHAPE: {"circle": (("round object", "round objects"), ("disk", "disks")),
            "square": (("square shape", "square shapes"),), "triangle": (("triangle shape", "triangle shapes"),),
            "star": (("star shape", "star shapes"),), "cross": (("cross shape", "cross shapes"),)},
}
COUNT_EXTRA = {1: ("an", "another", "single", "1"), None: ("the", "this", "these", "those")}
HAS_WORDS = ("with", "has", "have", "having", "featuring", "containing")
POSITIONS = {("on", "the", "left"): "left", ("on", "the", "right"): "right", ("at", "the", "left"): "left",
             ("at", "the", "right"): "right", ("at", "the", "top"): "top", ("at", "the", "bottom"): "bottom",
             ("on", "top"): "top", ("at", "top"): "top", ("at", "bottom"): "bottom", ("on", "the", "bottom"): "bottom"}
POSITION_PAIRS = {("left", "right"): "left of", ("right", "left"): "right of", ("top", "bottom"): "above",
                  ("bottom", "top"): "below"}
# Words that carry a meaning the world cannot express: a text with one is rejected.
BLOCKED = (
    "several some many few group groups couple multiple bunch number lots various numerous both pairs "
    "four five six seven eight 4 5 6 7 8 no not without none neither nor "
    "white black pink brown grey gray cyan magenta teal navy maroon beige silver "
    "rectangle rectangles oval ovals ellipse hexagon hexagons pentagon pentagons diamond diamonds heart hearts "
    "line lines ring rings dot spot "
    "next beside besides near nearby between behind front inside within around center centre middle corner "
    "adjacent diagonal diagonally far close alongside opposite across "
    "larger smaller bigger tinier medium largest smallest biggest"
).split()


@dataclass(frozen=True)
class Item:
    kind: str
    value: object = None
    plural: bool = False
    text: str = ""


def _phrase(text: str) -> tuple[str, ...]:
    return tuple(words(text))


@functools.lru_cache(maxsize=1)
def lexicon() -> dict[tuple[str, ...], Item]:
    """phrase (tuple of words) -> item, from every inventory (built once)."""
    lex: dict[tuple[str, ...], Item] = {}

    def add(text: str, item: Item) -> None:
        key = _phrase(text)
        if key and key not in lex:
            lex[key] = Item(item.kind, item.value, item.plural, " ".join(key))

    for word in BLOCKED:  # first, so no inventory can claim them
        add(word, Item(BLOCK))
    for n, word in COUNT_WORDS.items():
        add(word, Item(COUNT, n))
    for table in (rewriter.COUNT_PHRASES, wording.OOV_COUNTS):  # the rewriter's include the shared ones
        for n, options in table.items():
            for text in options:
                add(text, Item(COUNT, n))
    for n, options in COUNT_EXTRA.items():
        for text in options:
            add(text, Item(COUNT, n))
    simple = ((SIZE, SIZES, (wording.SIZE_WORDS, wording.OOV_SIZES)),
              (COLOUR, tuple(COLOURS), (wording.COLOUR_WORDS, wording.OOV_COLOURS)))
    for kind, values, tables in simple:
        for value in values:
            add(value, Item(kind, value))
            for table in tables:
                for text in table.get(value, ()):
                    add(text, Item(kind, value))
            for text in EXTRA[kind].get(value, ()):
                add(text, Item(kind, value))
    for value in TEXTURES:
        if value != "plain":
            add(value, Item(TEXTURE, value))
        for _, text in rewriter.TEXTURE_WORDS[value]:
            add(text, Item(TEXTURE, value))
        for table in (wording.EVAL_TEXTURES, wording.OOV_TEXTURES):
            for text in table.get(value, ()):
                add(text, Item(TEXTURE, value))
        for text in EXTRA[TEXTURE].get(value, ()):
            add(text, Item(TEXTURE, value))
    for shape in SHAPES:
        forms = [(shape, SHAPE_PLURALS[shape]), *wording.SHAPE_WORDS[shape], *wording.OOV_SHAPES.get(shape, ()),
                 *EXTRA[SHAPE].get(shape, ())]
        for singular, plural in forms:
            add(plural, Item(SHAPE, shape, plural=True))
            add(singular, Item(SHAPE, shape))
    for relation in RELATIONS:
        add(relation, Item(REL, relation))
        for table in (wording.RELATION_PHRASES, wording.OOV_RELATIONS, wording.HELDOUT_RELATIONS):
            for text in table.get(relation, ()):
                add(text, Item(REL, relation))
        for table in (wording.ANAPHORIC_PHRASES, wording.HELDOUT_ANAPHORIC):
            for text in table.get(relation, ()):
                add(text, Item(ITS, relation))
    for words_, where in POSITIONS.items():
        add(" ".join(words_), Item(POS, where))
    for word in HAS_WORDS:
        add(word, Item(HAS))
    return lex


def lex(text: str) -> list[Item]:
    """Greedy longest-match of the lexicon over the text's words; other words are dropped as filler."""
    table = lexicon()
    longest = max(len(k) for k in table)
    tokens = words(text)
    out, i = [], 0
    while i < len(tokens):
        for n in range(min(longest, len(tokens) - i), 0, -1):
            item = table.get(tuple(tokens[i:i + n]))
            if item is not None:
                out.append(item)
                i += n
                break
        else:
            i += 1
    return out


class Unreadable(ValueError):
    """The checker cannot read the text as a scene (the reason says why)."""


@dataclass
class _Mention:
    count: int | None = None
    counts_seen: int = 0
    sizes: set = field(default_factory=set)
    colours: set = field(default_factory=set)
    textures: set = field(default_factory=set)
    shape: str | None = None
    plural: bool = False
    position: str | None = None

    def has_modifiers(self) -> bool:
        return bool(self.sizes or self.colours or self.textures)

    def absorb(self, other: "_Mention") -> None:
        self.sizes |= other.sizes
        self.colours |= other.colours
        self.textures |= other.textures

    def group(self) -> ObjectGroup:
        for what, values in (("size", self.sizes), ("colour", self.colours), ("texture", self.textures)):
            if len(values) > 1:
                raise Unreadable(f"two {what}s for one {self.shape}: {', '.join(sorted(values))}")
        count = self.count
        if count is None:
            if self.plural:
                raise Unreadable(f"no count for the {SHAPE_PLURALS[self.shape]}")
            count = 1
        elif count == 1 and self.plural:
            raise Unreadable(f"count 1 with plural {SHAPE_PLURALS[self.shape]}")
        return _LooseGroup(count, next(iter(self.sizes), None), next(iter(self.colours), None),
                           next(iter(self.textures), "plain"), self.shape)


@dataclass(frozen=True)
class _LooseGroup:
    """An object group whose size or colour may be unstated (None)."""

    count: int
    size: str | None
    colour: str | None
    texture: str
    shape: str


@dataclass(frozen=True)
class ParsedScene:
    groups: tuple[_LooseGroup, ...]
    relation: str | None

    def normalized(self) -> "ParsedScene":
        if self.relation in ("right of", "below"):
            return ParsedScene((self.groups[1], self.groups[0]), CONVERSE[self.relation])
        return self

    def to_spec(self) -> SceneSpec:
        """As a :class:`SceneSpec` (raises :class:`Unreadable` if it leaves something unsaid or is impossible)."""
        for g in self.groups:
            if g.size is None or g.colour is None:
                raise Unreadable(f"no {'size' if g.size is None else 'colour'} for the {g.shape}")
        try:
            return SceneSpec(tuple(ObjectGroup(g.count, g.size, g.colour, g.texture, g.shape) for g in self.groups),
                             self.relation)
        except ValueError as exc:
            raise Unreadable(str(exc)) from None


def parse_caption(text: str) -> ParsedScene:
    """Read a caption into groups and a relation; raises :class:`Unreadable`."""
    items = lex(text)
    blocked = [it.text for it in items if it.kind == BLOCK]
    if blocked:
        raise Unreadable(f"meaning the world cannot express: {blocked[0]!r}")
    mentions: list[_Mention] = []
    elements: list[tuple[str, object]] = []
    pending = _Mention()
    open_mention: _Mention | None = None  # the last noun, which may still take post-modifiers

    def flush_post() -> None:
        nonlocal pending
        if pending.has_modifiers() and pending.count is None and open_mention is not None:
            open_mention.absorb(pending)
            pending = _Mention()

    for it in items:
        if it.kind == SIZE:
            pending.sizes.add(it.value)
        elif it.kind == COLOUR:
            pending.colours.add(it.value)
        elif it.kind == TEXTURE:
            pending.textures.add(it.value)
        elif it.kind == COUNT:
            flush_post()
            if pending.has_modifiers() and pending.count is not None and it.value is not None:
                raise Unreadable(f"two counts for one noun ({pending.count}, {it.value})")
            if not pending.has_modifiers():  # "a picture of two discs": the later determiner is the noun's
                pending.count = it.value
            elif it.value is not None:
                pending.count = it.value
            pending.counts_seen += 1
        elif it.kind == SHAPE:
            pending.shape, pending.plural = it.value, it.plural
            mentions.append(pending)
            elements.append(("M", len(mentions) - 1))
            open_mention, pending = pending, _Mention()
        else:  # REL, ITS, HAS, POS
            flush_post()
            if pending.has_modifiers():
                raise Unreadable(f"modifiers without a shape before {it.text!r}")
            pending = _Mention()  # a lone determiner belonged to a filler noun ("an image with ...")
            if it.kind == POS and open_mention is not None:
                open_mention.position = it.value
            elements.append((it.kind, it.value))
            open_mention = open_mention if it.kind == POS else None
    flush_post()
    if pending.has_modifiers():
        raise Unreadable("modifiers without a shape at the end")
    if not mentions:
        raise Unreadable("no shape named")
    if len(mentions) > 2:
        raise Unreadable(f"{len(mentions)} noun phrases (a scene has one or two groups)")
    groups = [m.group() for m in mentions]
    # leading frame words ("an image with ...", "the picture has ...") carry no relation
    while elements and elements[0][0] == HAS:
        elements.pop(0)
    shape_of = [k for k, _ in elements]
    if shape_of == ["M"]:
        return ParsedScene((groups[0],), None)
    if len(groups) != 2:
        raise Unreadable("a relation without two groups" if len(groups) == 1 else "two groups without a relation")
    patterns = {
        ("M", REL, "M"): lambda e: (0, e[1][1]),            # A rel B
        (REL, "M", "M"): lambda e: (1, e[0][1]),            # rel B (there is) A
        ("M", "M", ITS): lambda e: (1, e[2][1]),            # B, A to its left
        ("M", HAS, "M", ITS): lambda e: (1, e[3][1]),       # B has/with A to its left
        ("M", POS, "M", POS): lambda e: (0, POSITION_PAIRS.get((e[1][1], e[3][1]))),  # A on the left and B on the right
    }
    resolve = patterns.get(tuple(shape_of))
    if resolve is None:
        raise Unreadable("sentence structure not recognised: " + " ".join(str(k) for k in shape_of))
    subject, relation = resolve(elements)
    if relation is None:
        raise Unreadable("positions do not form a relation")
    a, b = (groups[0], groups[1]) if subject == 0 else (groups[1], groups[0])
    return ParsedScene((a, b), relation)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    reason: str = ""  # "" when ok; else e.g. "colour changed", "count changed", "relation changed", "unreadable"
    detail: str = ""

    def __bool__(self) -> bool:
        return self.ok


FIELDS = ("count", "size", "colour", "texture", "shape")


def _field_diffs(got: _LooseGroup, want: ObjectGroup) -> list[str]:
    diffs = []
    for name in FIELDS:
        g, w = getattr(got, name), getattr(want, name)
        if g != w:
            diffs.append(f"{name} dropped" if g is None else f"{name} changed")
    return diffs


def check(text: str, spec: SceneSpec) -> CheckResult:
    """Whether ``text`` says exactly what ``spec`` shows, with the first difference when not."""
    try:
        parsed = parse_caption(text)
    except Unreadable as exc:
        return CheckResult(False, "unreadable", str(exc))
    want = spec.normalized()
    got = parsed.normalized()
    if len(got.groups) != len(want.groups):
        return CheckResult(False, "object count changed", f"{len(got.groups)} groups instead of {len(want.groups)}")
    if len(want.groups) == 1:
        diffs = _field_diffs(got.groups[0], want.groups[0])
        return CheckResult(not diffs, diffs[0] if diffs else "", ", ".join(diffs))
    straight = _field_diffs(got.groups[0], want.groups[0]) + _field_diffs(got.groups[1], want.groups[1])
    crossed = _field_diffs(got.groups[1], want.groups[0]) + _field_diffs(got.groups[0], want.groups[1])
    if not straight and got.relation == want.relation:
        return CheckResult(True)
    if not straight or not crossed:
        return CheckResult(False, "relation changed", f"{got.relation!r} vs {want.relation!r} (or the order)")
    diffs = straight if len(straight) <= len(crossed) else crossed
    return CheckResult(False, diffs[0], ", ".join(diffs))


def accepts(text: str, spec: SceneSpec) -> bool:
    return check(text, spec).ok


__all__ = ["CheckResult", "ParsedScene", "Unreadable", "accepts", "check", "lex", "lexicon", "parse_caption"]
