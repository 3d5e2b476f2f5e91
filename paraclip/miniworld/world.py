"""The mini-world: procedural scenes of one to three shapes, their specs and canonical captions.

A scene is one or two *groups* of identical objects (count 1-3 in all; each group has a
size, colour, texture and shape) and, with two groups, a spatial relation between them.
Everything is a pure function of ``(seed, split, index)``: ``sample_spec`` draws the spec,
``sample_layout`` places the objects, ``render`` draws them (PIL, 4x supersampled, then
downsampled with antialiasing). So a scene can be made on the fly from its id, or cached.

The canonical caption comes from one grammar::

    scene    := group | group RELATION group
    group    := COUNT SIZE COLOUR [TEXTURE] SHAPE(s)     (texture omitted when plain)
    RELATION := left of | right of | above | below

e.g. ``two small red striped circles left of a large blue square``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw

# -- the world's attributes (canonical words) -----------------------------------------

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 38, 38),
    "green": (34, 160, 60),
    "blue": (38, 80, 220),
    "yellow": (236, 204, 26),
    "purple": (138, 52, 178),
    "orange": (244, 128, 24),
}
SHAPES = ("circle", "square", "triangle", "star", "cross")
SHAPE_PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars",
                 "cross": "crosses"}
SIZES = ("small", "large")
TEXTURES = ("plain", "striped", "dotted")
RELATIONS = ("left of", "right of", "above", "below")
CONVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
COUNT_WORDS = {1: "a", 2: "two", 3: "three"}

# Object radius in pixels at 64 px (scaled with the image size), before a +-10 % jitter.
SIZE_RADIUS = {"small": 6.5, "large": 11.5}


@dataclass(frozen=True)
class ObjectGroup:
    """``count`` identical objects."""

    count: int
    size: str
    colour: str
    texture: str
    shape: str

    def __post_init__(self):
        if self.count not in (1, 2, 3):
            raise ValueError(f"count must be 1-3, got {self.count}")
        for value, allowed, what in ((self.size, SIZES, "size"), (self.colour, COLOURS, "colour"),
                                     (self.texture, TEXTURES, "texture"), (self.shape, SHAPES, "shape")):
            if value not in allowed:
                raise ValueError(f"unknown {what} {value!r}; one of {', '.join(allowed)}")

    def looks(self) -> tuple[str, str, str, str]:
        return (self.size, self.colour, self.texture, self.shape)


@dataclass(frozen=True)
class SceneSpec:
    """What a scene shows: one group, or two groups and the relation of the first to the second."""

    groups: tuple[ObjectGroup, ...]
    relation: str | None = None

    def __post_init__(self):
        if len(self.groups) not in (1, 2):
            raise ValueError("a scene has one or two groups")
        if (len(self.groups) == 2) != (self.relation is not None):
            raise ValueError("a relation is given exactly when there are two groups")
        if self.relation is not None and self.relation not in RELATIONS:
            raise ValueError(f"unknown relation {self.relation!r}")
        if sum(g.count for g in self.groups) > 3:
            raise ValueError("at most three objects per scene")
        if len(self.groups) == 2 and self.groups[0].looks() == self.groups[1].looks():
            raise ValueError("the two groups must differ in at least one attribute")

    @property
    def n_objects(self) -> int:
        return sum(g.count for g in self.groups)

    def normalized(self) -> "SceneSpec":
        """The same meaning written one way: relations 'left of' / 'above' only.

        ``A right of B`` means ``B left of A``; so two specs mean the same exactly when their
        normalised forms are equal.
        """
        if self.relation in ("right of", "below"):
            return SceneSpec((self.groups[1], self.groups[0]), CONVERSE[self.relation])
        return self

    def meaning_key(self) -> str:
        """A string equal for specs with the same meaning (used for train/eval disjointness)."""
        n = self.normalized()
        parts = ["|".join(map(str, (g.count, *g.looks()))) for g in n.groups]
        return " ; ".join(parts) + (f" ; {n.relation}" if n.relation else "")

    def to_dict(self) -> dict:
        return {"groups": [asdict(g) for g in self.groups], "relation": self.relation}

    @classmethod
    def from_dict(cls, d: dict) -> "SceneSpec":
        return cls(tuple(ObjectGroup(**g) for g in d["groups"]), d.get("relation"))


def noun_phrase(group: ObjectGroup) -> str:
    """``two small red striped circles`` — the canonical words, in canonical order."""
    words = [COUNT_WORDS[group.count], group.size, group.colour]
    if group.texture != "plain":
        words.append(group.texture)
    words.append(SHAPE_PLURALS[group.shape] if group.count > 1 else group.shape)
    return " ".join(words)


def canonical_caption(spec: SceneSpec) -> str:
    """The grammar's caption for a spec (see the module docstring)."""
    first = noun_phrase(spec.groups[0])
    if spec.relation is None:
        return first
    return f"{first} {spec.relation} {noun_phrase(spec.groups[1])}"


# -- sampling ----------------------------------------------------------------------------

# Group counts of two-group scenes (at most three objects, and a group of three needs the
# whole canvas, so it only appears alone).
TWO_GROUP_COUNTS = ((1, 1), (1, 1), (2, 1), (1, 2))
P_TWO_GROUPS = 0.7


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """An independent random stream per scene, so any scene can be made alone from its id."""
    digest = hashlib.sha256(f"{seed}|{split}|{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _sample_group(rng: np.random.Generator, count: int) -> ObjectGroup:
    return ObjectGroup(
        count=count,
        size=SIZES[rng.integers(len(SIZES))],
        colour=list(COLOURS)[rng.integers(len(COLOURS))],
        texture=TEXTURES[rng.integers(len(TEXTURES))],
        shape=SHAPES[rng.integers(len(SHAPES))],
    )


def sample_spec(rng: np.random.Generator, groups: int | None = None) -> SceneSpec:
    """A spec drawn from ``rng``: one group with probability 1 - P_TWO_GROUPS, unless ``groups`` fixes it."""
    if groups is None:
        groups = 1 if rng.random() >= P_TWO_GROUPS else 2
    if groups == 1:
        return SceneSpec((_sample_group(rng, int(rng.integers(1, 4))),))
    counts = TWO_GROUP_COUNTS[rng.integers(len(TWO_GROUP_COUNTS))]
    while True:
        a, b = _sample_group(rng, counts[0]), _sample_group(rng, counts[1])
        if a.looks() != b.looks():
            return SceneSpec((a, b), RELATIONS[rng.integers(len(RELATIONS))])


# The spec space by composition. One-group meanings are few: 3 counts x 2 sizes x 6 colours x
# 3 textures x 5 shapes = 540 (180 of them a single object). Two-group meanings number in the tens
# of millions (pairs of differing looks, counts and a relation up to its converse).
ONE_GROUP_MEANINGS = 3 * len(SIZES) * len(COLOURS) * len(TEXTURES) * len(SHAPES)


def evaluation_one_group_share(n_scenes: int) -> float:
    """The share of one-group scenes in each evaluation world (test and validation alike), for
    evaluation worlds of ``n_scenes`` scenes in all.

    The natural share (1 - P_TWO_GROUPS = 30 %) cannot hold in every world: the 540 one-group
    meanings run out, so a world drawn later got fewer of them (validation 13.9 % against the test
    world's 24.2 % before this was fixed). Fixing one share for both worlds keeps their mixes equal;
    it leaves at least a fifth of the one-group meanings unused by the evaluation worlds."""
    return round(min(1 - P_TWO_GROUPS, 0.8 * ONE_GROUP_MEANINGS / max(1, n_scenes)), 4)


# -- layout ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlacedObject:
    """One drawn object, in pixels of the final image."""

    group: int
    cx: float
    cy: float
    radius: float
    angle: float  # degrees; circles ignore it


@dataclass(frozen=True)
class Layout:
    objects: tuple[PlacedObject, ...]
    background: tuple[int, int, int]
    colour_jitter: tuple[tuple[int, int, int], ...]  # one RGB offset per group


def _place_in_box(rng, radii, box, others, gap, tries: int = 64) -> list[tuple[float, float]] | None:
    """Sample non-overlapping centres for ``radii`` inside ``box`` = (x0, y0, x1, y1), or None.

    For each object ``tries`` candidates are drawn at once; the first that keeps ``gap`` pixels
    from every object placed so far is taken.
    """
    x0, y0, x1, y1 = box
    placed = np.array([(x, y, r) for x, y, r in others], dtype=float).reshape(-1, 3)
    out = []
    for r in radii:
        if x1 - x0 < 2 * r or y1 - y0 < 2 * r:
            return None
        cand = rng.uniform((x0 + r, y0 + r), (x1 - r, y1 - r), size=(tries, 2))
        if len(placed):
            dist = np.hypot(cand[:, None, 0] - placed[None, :, 0], cand[:, None, 1] - placed[None, :, 1])
            ok = (dist >= r + placed[None, :, 2] + gap).all(axis=1)
        else:
            ok = np.ones(tries, dtype=bool)
        hits = np.flatnonzero(ok)
        if not len(hits):
            return None
        cx, cy = cand[hits[0]]
        placed = np.vstack([placed, (cx, cy, r)])
        out.append((float(cx), float(cy)))
    return out


def sample_layout(spec: SceneSpec, rng: np.random.Generator, image_size: int = 64) -> Layout:
    """Place every object so that the relation holds with a clear gap and no overlaps.

    For ``A left of B`` every A object lies wholly left of every B object (a vertical band
    of at least ``gap`` pixels between them) and the groups' centres differ less along the
    other axis than along the relation's axis, so the relation is unambiguous.
    """
    s = image_size / 64.0
    margin, gap = 2.0 * s, 3.0 * s
    radii = [[SIZE_RADIUS[g.size] * s * rng.uniform(0.9, 1.1) for _ in range(g.count)] for g in spec.groups]
    bg = tuple(int(v) for v in rng.integers(225, 256, size=3))
    jitter = tuple(tuple(int(v) for v in rng.integers(-14, 15, size=3)) for _ in spec.groups)
    for _attempt in range(100):
        if spec.relation is None:
            centres = [_place_in_box(rng, radii[0], (margin, margin, image_size - margin, image_size - margin), [], gap)]
        else:
            centres = _place_two_groups(spec, rng, radii, image_size, margin, gap)
        if centres is not None and all(c is not None for c in centres):
            objects = tuple(
                PlacedObject(gi, cx, cy, r, float(rng.uniform(-15, 15)))
                for gi, (group_centres, group_radii) in enumerate(zip(centres, radii))
                for (cx, cy), r in zip(group_centres, group_radii)
            )
            return Layout(objects, bg, jitter)
    raise RuntimeError(f"could not lay out {canonical_caption(spec)!r} in {image_size} px")  # pragma: no cover


def _place_two_groups(spec, rng, radii, size, margin, gap):
    # Work in "first is left of / above second" form; remember whether the groups were swapped.
    swapped = spec.relation in ("right of", "below")
    horizontal = spec.relation in ("left of", "right of")
    first_r, second_r = (radii[1], radii[0]) if swapped else (radii[0], radii[1])
    # Split the canvas along the relation's axis at a random point, with a gap between the bands.
    lo = margin + 2 * max(first_r)
    hi = size - margin - 2 * max(second_r) - gap
    if hi < lo:
        return None
    split = rng.uniform(lo, hi)
    band_first, band_second = (margin, split), (split + gap, size - margin)
    # Along the other axis both groups share one window, so neither is clearly beside/above
    # the other in the second direction; it is wide enough to hold the larger group.
    span = size - 2 * margin
    need = max(sum(2 * r for r in first_r), sum(2 * r for r in second_r)) + gap * max(len(first_r), len(second_r))
    width = min(span, max(need, rng.uniform(0.55, 1.0) * span))
    start = margin + rng.uniform(0, span - width)

    def place(band, radii):
        # a group of several objects: one cell each along the window, so they always fit
        cell = width / len(radii)
        centres = []
        for k, r in enumerate(radii):
            lo_c = start + k * cell + (gap / 2 if k else 0.0)
            hi_c = start + (k + 1) * cell - (gap / 2 if k < len(radii) - 1 else 0.0)
            box = (band[0], lo_c, band[1], hi_c) if horizontal else (lo_c, band[0], hi_c, band[1])
            got = _place_in_box(rng, [r], box, [], gap)
            if got is None:
                return None
            centres += got
        return centres

    first = place(band_first, first_r)
    second = place(band_second, second_r)
    if first is None or second is None:
        return None
    return [second, first] if swapped else [first, second]


# -- rendering ---------------------------------------------------------------------------

SUPERSAMPLE = 4


def _shape_polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    a = math.radians(angle)

    def rot(px, py):
        return (cx + px * math.cos(a) - py * math.sin(a), cy + px * math.sin(a) + py * math.cos(a))

    if shape == "square":
        h = r * 0.85
        pts = [(-h, -h), (h, -h), (h, h), (-h, h)]
    elif shape == "triangle":
        pts = [(r * math.cos(math.radians(t)), r * math.sin(math.radians(t)) + r * 0.15) for t in (-90, 30, 150)]
    elif shape == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.45
            t = math.radians(-90 + 36 * k)
            pts.append((rad * math.cos(t), rad * math.sin(t)))
    elif shape == "cross":
        w, h = r * 0.34, r
        pts = [(-w, -h), (w, -h), (w, -w), (h, -w), (h, w), (w, w), (w, h), (-w, h), (-w, w), (-h, w), (-h, -w), (-w, -w)]
    else:
        raise ValueError(shape)
    return [rot(px, py) for px, py in pts]


def _texture_fill(texture: str, colour, width: int, height: int, origin: tuple[int, int], scale: float) -> Image.Image:
    """An RGB fill of ``width`` x ``height`` in ``colour`` with the texture (dark stripes or dots).

    The pattern is laid on the whole canvas's grid (``origin`` is the box's top-left corner),
    with a period of 4 px of the final image (``scale`` = supersampled px per final px).
    """
    fill = Image.new("RGB", (width, height), colour)
    if texture == "plain":
        return fill
    dark = tuple(int(c * 0.3) for c in colour)
    draw = ImageDraw.Draw(fill)
    period = 4.0 * scale
    ox, oy = origin
    if texture == "striped":  # diagonal stripes, half a period wide
        first = int((ox + oy) // period) - 1
        for k in range(first, first + int((width + height) / period) + 3):
            x = k * period - ox - oy  # stripe where x + y (canvas) == k * period
            draw.polygon([(x, 0), (x + period / 2, 0), (x + period / 2 - height, height), (x - height, height)],
                         fill=dark)
    elif texture == "dotted":  # a staggered grid of dots
        dot = period * 0.28
        for row in range(int(oy // period) - 1, int((oy + height) // period) + 2):
            y = row * period + period / 2 - oy
            shift = period / 2 if row % 2 else 0.0
            for col in range(int(ox // period) - 1, int((ox + width) // period) + 2):
                x = col * period + period / 2 + shift - ox
                draw.ellipse([x - dot, y - dot, x + dot, y + dot], fill=dark)
    return fill


def render(spec: SceneSpec, layout: Layout, image_size: int = 64) -> Image.Image:
    """Draw a laid-out scene as an RGB PIL image of ``image_size`` pixels."""
    big = image_size * SUPERSAMPLE
    scale = SUPERSAMPLE * image_size / 64.0
    canvas = Image.new("RGB", (big, big), layout.background)
    for obj in layout.objects:
        group = spec.groups[obj.group]
        base = COLOURS[group.colour]
        colour = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(base, layout.colour_jitter[obj.group]))
        cx, cy, r = obj.cx * SUPERSAMPLE, obj.cy * SUPERSAMPLE, obj.radius * SUPERSAMPLE
        # draw in the object's box only: the shape's mask, and its texture fill
        x0, y0 = max(0, int(cx - r) - 2), max(0, int(cy - r) - 2)
        x1, y1 = min(big, int(cx + r) + 3), min(big, int(cy + r) + 3)
        mask = Image.new("L", (x1 - x0, y1 - y0), 0)
        draw = ImageDraw.Draw(mask)
        if group.shape == "circle":
            draw.ellipse([cx - r - x0, cy - r - y0, cx + r - x0, cy + r - y0], fill=255)
        else:
            draw.polygon(_shape_polygon(group.shape, cx - x0, cy - y0, r, obj.angle), fill=255)
        canvas.paste(_texture_fill(group.texture, colour, x1 - x0, y1 - y0, (x0, y0), scale), (x0, y0), mask)
    return canvas.resize((image_size, image_size), Image.Resampling.LANCZOS)


# -- scenes --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scene:
    """One scene of the world: id, spec, layout and canonical caption (the image is rendered on demand)."""

    image_id: str
    spec: SceneSpec
    layout: Layout
    image_size: int = 64
    caption: str = field(default="", compare=False)

    def image(self) -> Image.Image:
        return render(self.spec, self.layout, self.image_size)

    def record(self) -> dict:
        return {"image_id": self.image_id, "caption": self.caption, "spec": self.spec.to_dict()}


def make_scene(seed: int, split: str, index: int, image_size: int = 64, spec: SceneSpec | None = None) -> Scene:
    """Scene ``index`` of ``split`` for world ``seed`` (its spec drawn from the same stream unless given)."""
    rng = scene_rng(seed, split, index)
    spec = spec if spec is not None else sample_spec(rng)
    layout = sample_layout(spec, rng, image_size)
    return Scene(f"{split}-{index:06d}", spec, layout, image_size, canonical_caption(spec))


def iter_scenes(seed: int, split: str, n: int, image_size: int = 64, exclude: set[str] | None = None,
                start: int = 0, one_group_share: float | None = None) -> Iterator[Scene]:
    """``n`` scenes of ``split``; specs whose meaning is in ``exclude`` (or already produced) are redrawn.

    Redrawing uses further draws of the scene's own stream, so the result stays a pure
    function of the seed and the excluded set. With ``one_group_share`` each scene's composition
    (one group or two) is drawn first, with that probability of one group, and kept while its
    spec is redrawn, so the share holds however many one-group meanings are excluded.
    """
    seen: set[str] = set()
    exclude = exclude or set()
    for index in range(start, start + n):
        rng = scene_rng(seed, split, index)
        groups = None if one_group_share is None else (1 if rng.random() < one_group_share else 2)
        for _ in range(5000):
            spec = sample_spec(rng, groups)
            key = spec.meaning_key()
            if key not in exclude and key not in seen:
                break
        else:  # only the 540 one-group meanings can run out (see ONE_GROUP_MEANINGS)
            raise RuntimeError(f"could not draw a new {'one-group ' if groups == 1 else ''}scene for {split} "
                               f"{index}: the meanings left are too few; use fewer evaluation scenes")
        seen.add(key)
        layout = sample_layout(spec, rng, image_size)
        yield Scene(f"{split}-{index:06d}", spec, layout, image_size, canonical_caption(spec))

