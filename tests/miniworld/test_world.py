"""Scenes: deterministic per seed, captions that name what is drawn, layouts that make relations true."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from paraclip.miniworld.checker import parse_caption
from paraclip.miniworld.world import (
    COLOURS, ObjectGroup, SceneSpec, canonical_caption, iter_scenes, make_scene,
)


def _pixels(scene) -> np.ndarray:
    return np.asarray(scene.image(), dtype=np.int16)


def test_same_seed_same_scenes_and_pixels():
    a = list(iter_scenes(7, "train", 12))
    b = list(iter_scenes(7, "train", 12))
    assert [s.caption for s in a] == [s.caption for s in b]
    assert all(np.array_equal(_pixels(x), _pixels(y)) for x, y in zip(a, b))
    # a scene made alone from its id equals the same scene made in sequence
    alone = make_scene(7, "train", 5)
    assert alone.caption == a[5].caption and np.array_equal(_pixels(alone), _pixels(a[5]))


def test_other_seed_or_split_gives_other_scenes():
    base = [s.caption for s in iter_scenes(7, "train", 20)]
    assert base != [s.caption for s in iter_scenes(8, "train", 20)]
    assert base != [s.caption for s in iter_scenes(7, "eval", 20)]


def test_iter_scenes_never_repeats_a_meaning_and_honours_exclude():
    scenes = list(iter_scenes(0, "eval", 300))
    keys = [s.spec.meaning_key() for s in scenes]
    assert len(set(keys)) == len(keys)
    train = list(iter_scenes(0, "train", 300, exclude=set(keys)))
    assert not {s.spec.meaning_key() for s in train} & set(keys)


def test_converse_relations_mean_the_same():
    red = ObjectGroup(1, "small", "red", "plain", "circle")
    blue = ObjectGroup(2, "large", "blue", "striped", "square")
    assert SceneSpec((red, blue), "left of").meaning_key() == SceneSpec((blue, red), "right of").meaning_key()
    assert SceneSpec((red, blue), "above").meaning_key() == SceneSpec((blue, red), "below").meaning_key()
    assert SceneSpec((red, blue), "left of").meaning_key() != SceneSpec((blue, red), "left of").meaning_key()
    assert canonical_caption(SceneSpec((red, blue), "left of")) == \
        "a small red circle left of two large blue striped squares"


@pytest.mark.parametrize("bad", [
    dict(groups=(ObjectGroup(2, "small", "red", "plain", "circle"), ObjectGroup(2, "small", "blue", "plain", "star")),
         relation="above"),  # four objects
    dict(groups=(ObjectGroup(1, "small", "red", "plain", "circle"),) * 2, relation="above"),  # identical groups
    dict(groups=(ObjectGroup(1, "small", "red", "plain", "circle"),), relation="above"),  # relation, one group
])
def test_impossible_specs_are_refused(bad):
    with pytest.raises(ValueError):
        SceneSpec(**bad)


def test_every_caption_names_what_is_drawn():
    """From the spec: the caption parses back to it; from the pixels: the objects, colours and relation."""
    for scene in iter_scenes(3, "train", 60):
        assert parse_caption(scene.caption).to_spec() == scene.spec, scene.caption
        px = _pixels(scene)
        background = np.array(scene.layout.background)
        # objects are where the layout says, in the spec's colour, and nothing else is drawn
        foreground = np.abs(px - background).sum(-1) > 60
        _, n_blobs = ndimage.label(foreground, structure=np.ones((3, 3)))  # 8-connected: thin star tips
        assert n_blobs == scene.spec.n_objects, scene.caption
        for obj in scene.layout.objects:
            group = scene.spec.groups[obj.group]
            assert sum(1 for o in scene.layout.objects if o.group == obj.group) == group.count
            y, x = int(round(obj.cy)), int(round(obj.cx))
            patch = px[max(0, y - 1):y + 2, max(0, x - 1):x + 2].reshape(-1, 3)
            target = np.array(COLOURS[group.colour]) + np.array(scene.layout.colour_jitter[obj.group])
            dark = target * 0.3  # stripes and dots are the colour darkened
            best = min(np.abs(patch - target).sum(-1).min(), np.abs(patch - dark).sum(-1).min())
            assert best < 60, (scene.caption, group.colour, patch)
        if scene.spec.relation is not None:
            _assert_relation_holds(scene)


def _assert_relation_holds(scene):
    spec, objs = scene.spec, scene.layout.objects
    a = [o for o in objs if o.group == 0]
    b = [o for o in objs if o.group == 1]
    axis, sign = {"left of": ("cx", 1), "right of": ("cx", -1), "above": ("cy", 1), "below": ("cy", -1)}[spec.relation]
    for oa in a:
        for ob in b:
            gap = sign * (getattr(ob, axis) - getattr(oa, axis)) - oa.radius - ob.radius
            assert gap > 0, (scene.caption, oa, ob)  # wholly on the named side, no overlap


def test_sizes_differ_visibly():
    small = make_scene(0, "t", 0, spec=SceneSpec((ObjectGroup(1, "small", "red", "plain", "square"),)))
    large = make_scene(0, "t", 0, spec=SceneSpec((ObjectGroup(1, "large", "red", "plain", "square"),)))
    area = lambda s: int((np.abs(_pixels(s) - np.array(s.layout.background)).sum(-1) > 60).sum())  # noqa: E731
    assert area(large) > 2.5 * area(small)


@pytest.mark.parametrize("relation", ["left of", "right of", "above", "below"])
def test_the_most_crowded_scenes_always_lay_out(relation):
    """Three large objects in two groups: the tightest case must never fail to fit."""
    from paraclip.miniworld.world import sample_layout, scene_rng

    spec = SceneSpec((ObjectGroup(1, "large", "blue", "plain", "cross"),
                      ObjectGroup(2, "large", "yellow", "plain", "cross")), relation)
    for i in range(200):
        layout = sample_layout(spec, scene_rng(1, relation, i))
        assert len(layout.objects) == 3


def test_evaluation_worlds_share_one_scene_mix():
    """The validation world is drawn after the test world and must avoid its meanings; with one fixed
    share of one-group scenes both keep the same mix (before, the later world got half as many)."""
    from paraclip.miniworld.world import ONE_GROUP_MEANINGS, evaluation_one_group_share

    assert ONE_GROUP_MEANINGS == 540
    share = evaluation_one_group_share(1200)
    test = list(iter_scenes(0, "test3", 600, one_group_share=share))
    val = list(iter_scenes(0, "val", 600, exclude={s.spec.meaning_key() for s in test}, one_group_share=share))
    shares = [sum(len(s.spec.groups) == 1 for s in split) / len(split) for split in (test, val)]
    assert all(abs(x - share) < 0.05 for x in shares), shares
    assert not {s.spec.meaning_key() for s in test} & {s.spec.meaning_key() for s in val}
    assert evaluation_one_group_share(2000) == round(0.8 * 540 / 2000, 4)  # never more than the meanings allow


def test_running_out_of_one_group_meanings_is_said():
    import pytest

    with pytest.raises(RuntimeError, match="one-group scene .* too few"):
        list(iter_scenes(0, "x", 600, one_group_share=1.0))
