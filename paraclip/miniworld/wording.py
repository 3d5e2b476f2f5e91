"""The mini-world's word inventories: what its text generators may say for each value of a scene.

One table per slot, ``value -> options``, shared by the generators that use it and read by the
scene-spec checker (``checker.py``), whose lexicon is their union:

* the in-vocabulary synonyms (``COLOUR_WORDS`` ... ``ANAPHORIC_PHRASES``): the training
  rewriter's inventory (``rewriter.py``; the first option is the canonical word), which the
  evaluation generator's in-vocabulary pairs also use (``evalsets.py``);
* ``OOV_*``: out-of-vocabulary synonyms, never in any training text (checked when the evaluation
  sets are made, and in the tests);
* ``HELDOUT_*``: the held-out rewriter's phrasings (``heldout.py``): training words in
  compositions that no training text contains.
"""

from __future__ import annotations

import re

# -- in-vocabulary synonyms: slot value -> options (the first is the canonical word) -----------

COLOUR_WORDS = {
    "red": ("red", "crimson", "ruby"),
    "green": ("green", "emerald", "lime"),
    "blue": ("blue", "azure", "cobalt"),
    "yellow": ("yellow", "golden", "lemon"),
    "purple": ("purple", "violet", "lilac"),
    "orange": ("orange", "amber", "tangerine"),
}
SIZE_WORDS = {
    "small": ("small", "little", "tiny"),
    "large": ("large", "big", "huge"),
}
# Shape options: (singular, plural).
SHAPE_WORDS = {
    "circle": (("circle", "circles"), ("disc", "discs"), ("round shape", "round shapes")),
    "square": (("square", "squares"), ("box", "boxes"), ("block", "blocks")),
    "triangle": (("triangle", "triangles"), ("wedge", "wedges"), ("trigon", "trigons")),
    "star": (("star", "stars"), ("pentagram", "pentagrams"), ("spiky shape", "spiky shapes")),
    "cross": (("cross", "crosses"), ("plus sign", "plus signs"), ("cruciform shape", "cruciform shapes")),
}
COUNT_PHRASES = {1: ("a", "one", "a single"), 2: ("two", "a pair of"), 3: ("three", "a trio of")}
RELATION_PHRASES = {
    "left of": ("left of", "to the left of", "on the left side of"),
    "right of": ("right of", "to the right of", "on the right side of"),
    "above": ("above", "over", "on top of"),
    "below": ("below", "under", "underneath"),
}
# "B with A <phrase>" means A is <relation> B: e.g. "a box with a disc to its left".
ANAPHORIC_PHRASES = {
    "left of": ("to its left", "on its left side"),
    "right of": ("to its right", "on its right side"),
    "above": ("above it", "over it"),
    "below": ("below it", "under it"),
}

# The evaluation generator's textures: a word before the noun, or a "with ..." phrase after it.
EVAL_TEXTURES = {"plain": ("", "plain", "solid"), "striped": ("striped", "stripy", "with stripes"),
                 "dotted": ("dotted", "spotted", "with dots")}

# -- out-of-vocabulary synonyms: never in any training text ----------------------------------------

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

# -- the held-out rewriter's phrasings --------------------------------------------------------------

HELDOUT_COLOURS = {
    "red": ("ruby red", "crimson red"), "green": ("emerald green", "lime green"),
    "blue": ("cobalt blue", "azure blue"), "yellow": ("lemon yellow", "golden yellow"),
    "purple": ("lilac purple", "violet purple"), "orange": ("tangerine orange", "amber orange"),
}
# (singular, plural) training shape words followed by "shape"; "round shape" etc. already say it
HELDOUT_SHAPES = {
    "circle": (("circle shape", "circle shapes"), ("disc shape", "disc shapes")),
    "square": (("box shape", "box shapes"), ("block shape", "block shapes")),
    "triangle": (("wedge shape", "wedge shapes"), ("trigon shape", "trigon shapes")),
    "star": (("pentagram shape", "pentagram shapes"),),
    "cross": (("plus sign shape", "plus sign shapes"),),
}
# texture after the noun: "{be}" agrees with the group; "on it" only reads right for one object
HELDOUT_TEXTURES = {
    "striped": ("with stripes on it", "that {be} striped"),
    "dotted": ("with dots on it", "that {be} dotted"),
}
HELDOUT_RELATIONS = {
    "left of": ("on the left of", "to the left side of"),
    "right of": ("on the right of", "to the right side of"),
    "above": ("over the top of",),
    "below": ("underneath the",),  # "underneath the blue box": the article is the phrase's own
}
HELDOUT_ANAPHORIC = {
    "left of": ("on the left of it", "to the left of it"),
    "right of": ("on the right of it", "to the right of it"),
    "above": ("on top of it", "over the top of it"),
    "below": ("underneath it",),
}


def words(text: str) -> list[str]:
    """Lower-case word tokens (letters and digits), as the vocabulary checks count them."""
    return re.findall(r"[a-z0-9]+", text.lower())


def fix_articles(text: str) -> str:
    """``a amber box`` -> ``an amber box`` (and back, for ``an`` before a consonant)."""
    text = re.sub(r"\ba (?=[aeiou])", "an ", text)
    return re.sub(r"\ban (?=[^aeiou\W])", "a ", text)
