"""The ablation arms as data (the pipeline test trains and scores them on a smoke world)."""

from __future__ import annotations

from paraclip.miniworld.ablations import ARMS, TEXTS_PER_PARACLIP_SAMPLE, text_samples_per_step
from paraclip.training.losses import LOSS_PRESETS


def test_every_arm_is_a_loss_preset_and_the_paper_comes_first():
    assert ARMS[0].name == "paraclip" and ARMS[0].kind == "paper"
    for arm in ARMS:
        LOSS_PRESETS.get(arm.loss)
    names = {arm.name for arm in ARMS}
    assert {"no-l1", "no-l2", "no-l3", "l1-only", "l2-only", "l3-only", "clip", "laclip"} <= names


def test_controls_see_as_many_text_samples_as_paraclip():
    paper = text_samples_per_step(ARMS[0], 128)
    assert paper == TEXTS_PER_PARACLIP_SAMPLE * 128
    for arm in ARMS:
        if arm.kind == "control":
            assert text_samples_per_step(arm, 128) == paper
    assert text_samples_per_step(next(a for a in ARMS if a.name == "l1-only"), 128) == 128
