"""The scene-spec checker accepts faithful rewordings and rejects attribute, count and relation changes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraclip.miniworld.checker import check, parse_caption
from paraclip.miniworld.world import (
    COLOURS, RELATIONS, SHAPES, SIZES, TEXTURES, ObjectGroup, SceneSpec, canonical_caption,
)

RED_CIRCLE = ObjectGroup(1, "small", "red", "plain", "circle")
BLUE_SQUARES = ObjectGroup(2, "large", "blue", "striped", "square")
SCENE = SceneSpec((RED_CIRCLE, BLUE_SQUARES), "left of")  # a small red circle left of two large blue striped squares


@pytest.mark.parametrize("text", [
    "a small red circle left of two large blue striped squares",
    "two large blue striped squares right of a small red circle",
    "there is a tiny crimson disc to the left of a pair of huge azure boxes with stripes",
    "a pair of big stripy blocks that are cobalt with a little ruby round shape to its left",
    "to the left of two large striped blue squares there is one small red circle",
    "a small red circle on the left and two large blue striped squares on the right",
    "Two big blue striped squares are to the right of a small red circle.",
    "An image with a small, red circle sitting left of 2 large striped squares that are blue",
    "a petite scarlet orb west of a duo of giant banded sapphire tiles",  # OOV synonyms keep the meaning
])
def test_faithful_rewordings_are_accepted(text):
    result = check(text, SCENE)
    assert result.ok, result


@pytest.mark.parametrize("text, reason", [
    ("a small green circle left of two large blue striped squares", "colour changed"),
    ("a large red circle left of two large blue striped squares", "size changed"),
    ("a small red dotted circle left of two large blue striped squares", "texture changed"),
    ("a small red star left of two large blue striped squares", "shape changed"),
    ("a small red circle left of two large blue squares", "texture changed"),   # "striped" dropped
    ("a red circle left of two large blue striped squares", "size dropped"),     # "small" dropped
    ("a small red circle left of three large blue striped squares", "count changed"),
    ("a small red circle left of a large blue striped square", "count changed"),
    ("two small red circles left of two large blue striped squares", "count changed"),
    ("a small red circle right of two large blue striped squares", "relation changed"),
    ("two large blue striped squares left of a small red circle", "relation changed"),
    ("a small red circle above two large blue striped squares", "relation changed"),
    ("a small red circle below two large blue striped squares", "relation changed"),
    ("a small red circle left of a group of large blue striped squares", "unreadable"),
    ("a small red circle next to two large blue striped squares", "unreadable"),
    ("a small red circle and two large blue striped squares", "unreadable"),  # relation dropped
    ("two large blue striped squares", "object count changed"),
    ("a small red circle left of several large blue striped squares", "unreadable"),
    ("a small white circle left of two large blue striped squares", "unreadable"),
])
def test_meaning_changes_are_rejected(text, reason):
    result = check(text, SCENE)
    assert not result.ok
    assert result.reason == reason, result


def test_unreadable_texts_say_why():
    for text in ("", "a picture", "small red", "a red circle, a blue square, a green star"):
        result = check(text, SCENE)
        assert not result.ok and result.reason == "unreadable" and result.detail


groups = st.builds(ObjectGroup, count=st.sampled_from([1]), size=st.sampled_from(SIZES),
                   colour=st.sampled_from(sorted(COLOURS)), texture=st.sampled_from(TEXTURES),
                   shape=st.sampled_from(SHAPES))


@st.composite
def scenes(draw):
    a = draw(groups)
    if draw(st.booleans()):
        return SceneSpec((ObjectGroup(draw(st.sampled_from([1, 2, 3])), *a.looks()),))
    b = draw(groups.filter(lambda g: g.looks() != a.looks()))
    counts = draw(st.sampled_from([(1, 1), (1, 2), (2, 1)]))
    a, b = ObjectGroup(counts[0], *a.looks()), ObjectGroup(counts[1], *b.looks())
    return SceneSpec((a, b), draw(st.sampled_from(RELATIONS)))


FIELDS = {"size": SIZES, "colour": sorted(COLOURS), "texture": TEXTURES, "shape": SHAPES, "count": (1, 2, 3)}


@settings(max_examples=150, deadline=None)
@given(spec=scenes(), which=st.sampled_from(sorted(FIELDS)), group=st.integers(0, 1), data=st.data())
def test_any_single_change_is_rejected(spec, which, group, data):
    """Change one attribute or count of one group (or the relation): the canonical caption of the
    changed scene is rejected for the original scene, and the original's caption is accepted."""
    assert check(canonical_caption(spec), spec).ok
    group = min(group, len(spec.groups) - 1)
    old = spec.groups[group]
    new_value = data.draw(st.sampled_from([v for v in FIELDS[which] if v != getattr(old, which)]))
    changed = ObjectGroup(**{**old.__dict__, which: new_value})
    groups_ = list(spec.groups)
    groups_[group] = changed
    try:
        other = SceneSpec(tuple(groups_), spec.relation)
    except ValueError:
        return  # e.g. four objects or identical groups: not a scene
    if other.meaning_key() == spec.meaning_key():
        return
    assert not check(canonical_caption(other), spec).ok


@settings(max_examples=80, deadline=None)
@given(spec=scenes().filter(lambda s: s.relation is not None), relation=st.sampled_from(RELATIONS))
def test_relation_changes_are_rejected(spec, relation):
    other = SceneSpec(spec.groups, relation)
    swapped = SceneSpec((spec.groups[1], spec.groups[0]), spec.relation)
    for candidate in (other, swapped):
        if candidate.meaning_key() != spec.meaning_key():
            result = check(canonical_caption(candidate), spec)
            assert not result.ok and result.reason == "relation changed", (canonical_caption(candidate), result)


def test_parse_reads_counts_in_words_and_digits():
    for text in ("three small red circles", "3 small red circles", "a trio of small red circles"):
        assert parse_caption(text).to_spec() == SceneSpec((ObjectGroup(3, "small", "red", "plain", "circle"),))
