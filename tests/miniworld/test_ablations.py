"""The arms as data (the pipeline test trains and scores them on a smoke world)."""

from __future__ import annotations

from paraclip.miniworld.arms import (
    ABLATION_ARMS, CLIP_FT, LACLIP, PARACLIP, TEXTS_PER_PARACLIP_SAMPLE, main_arms, run_kind, text_samples_per_step,
)
from paraclip.miniworld.config import MiniWorldConfig
from paraclip.training.losses import LOSS_PRESETS


def test_every_arm_is_a_loss_preset_and_the_paper_comes_first():
    assert ABLATION_ARMS[0].name == "paraclip" and ABLATION_ARMS[0].kind == "paper"
    for arm in ABLATION_ARMS + (PARACLIP, LACLIP, CLIP_FT):
        LOSS_PRESETS.get(arm.loss)
    names = {arm.name for arm in ABLATION_ARMS}
    assert names == {"paraclip", "no-l1", "no-l2", "no-l3", "l1-only", "l2-only", "l3-only"}


def test_controls_see_as_many_text_samples_as_paraclip():
    paper = text_samples_per_step(PARACLIP, 128)
    assert paper == TEXTS_PER_PARACLIP_SAMPLE * 128
    assert text_samples_per_step(LACLIP, 128) == text_samples_per_step(CLIP_FT, 128) == paper
    assert text_samples_per_step(next(a for a in ABLATION_ARMS if a.name == "l1-only"), 128) == 128
    assert text_samples_per_step(next(a for a in ABLATION_ARMS if a.name == "no-l2"), 128) == 256


def test_main_arms_follow_the_controls_setting():
    assert main_arms(MiniWorldConfig()) == (PARACLIP, LACLIP, CLIP_FT)
    assert main_arms(MiniWorldConfig(controls=False)) == (PARACLIP,)


def test_the_selection_seed_has_one_run_per_rate_the_others_one_run():
    cfg = MiniWorldConfig(seeds=[3, 4], lr_grid=[5e-4, 2e-3])
    assert run_kind(cfg, LACLIP, 3, 5e-4) == "laclip-lr0.0005" and run_kind(cfg, LACLIP, 3, 2e-3) == "laclip-lr0.002"
    assert run_kind(cfg, LACLIP, 4) == "laclip"
