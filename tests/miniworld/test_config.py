"""MiniWorldConfig checks every field when it is made: types from the annotations, ranges and choices
from each field's setting; the CLI turns a bad --set, --seeds or --sample into exit 2 naming the key,
and its options override the preset both ways."""

from __future__ import annotations

import argparse

import pytest

from paraclip.cli import main
from paraclip.commands import miniworld as command
from paraclip.errors import ConfigError, ParaclipError
from paraclip.miniworld.config import PRESETS, MiniWorldConfig


def test_defaults_and_presets_are_valid():
    for name in PRESETS:
        MiniWorldConfig.preset(name)
    assert MiniWorldConfig.bounds("threads").describe() == "in [1, 4096]"  # what --threads checks


@pytest.mark.parametrize("override, words", [
    ({"n_train": "abc"}, ("n_train", "an integer", "'abc'")),
    ({"n_train": -5}, ("n_train", "got -5")),
    ({"n_eval": 2.5}, ("n_eval", "an integer")),
    ({"baseline_lr": float("nan")}, ("baseline_lr", "finite")),
    ({"lr_grid": [0]}, ("lr_grid", "got 0")),
    ({"lr_grid": []}, ("lr_grid", "at least one")),
    ({"baseline_batch_size": 10**12}, ("baseline_batch_size",)),
    ({"seeds": []}, ("seeds", "at least one")),
    ({"seeds": [0, "x"]}, ("seeds", "'x'")),
    ({"seeds": 3}, ("seeds", "a list")),
    ({"ablation_seeds": [-1]}, ("ablation_seeds", "got -1")),
    ({"world_seed": 10**30}, ("world_seed",)),
    ({"arch": "paraclip-mnii"}, ("arch", "Did you mean 'paraclip-mini'")),
    ({"paraclip_loss": "paraclp"}, ("paraclip_loss", "Did you mean 'paraclip'")),
    ({"llm_backend": "openia"}, ("llm_backend", "one of local, openai", "Did you mean 'openai'")),
    ({"sts": "yes"}, ("sts", "true or false")),
    ({"threads": 0}, ("threads", "got 0")),
    ({"llm_model": 5}, ("llm_model", "text")),
])
def test_bad_values_name_the_key(override, words):
    with pytest.raises(ParaclipError) as caught:
        MiniWorldConfig.preset("smoke", **override)
    for word in words:
        assert word in str(caught.value)


def test_good_overrides_pass():
    cfg = MiniWorldConfig.preset("smoke", baseline_lr=1e-3, seeds=[0, 4294967295], threads=None, llm_model="m",
                                 llm_backend="openai", paraclip_loss="no-l2", ablation_seeds=[])
    assert cfg.seeds == [0, 4294967295]


@pytest.mark.parametrize("argv, words", [
    (["--set", "n_train=-1"], ("n_train", "got -1")),
    (["--set", "baseline_lr=NaN"], ("baseline_lr", "finite")),
    (["--set", "n_boot=ten"], ("n_boot", "'ten'")),
    (["--seeds", ""], ("seeds", "at least one")),
    (["--seeds", "1,x"], ("--seeds",)),
    (["--set", "paraclip_los=clip"], ("paraclip_los", "paraclip_loss")),
])
def test_cli_refuses_bad_settings_with_exit_2(argv, words, tmp_path, capsys):
    assert main(["miniworld", "--reproduce", "--out", str(tmp_path / "run"), *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(word in err for word in words), err
    assert not (tmp_path / "run").exists()  # refused before any work


@pytest.mark.parametrize("value", ["-3", "0", "1e9", "x"])
def test_sample_count_is_checked(value, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["miniworld", "--sample", value])
    assert caught.value.code == 2 and "--sample" in capsys.readouterr().err


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(["--reproduce", *argv])


def test_options_override_the_preset_both_ways():
    assert MiniWorldConfig.preset("full").ablations is True
    assert command._config(_args("--preset", "full", "--no-ablations")).ablations is False
    assert command._config(_args("--preset", "full")).ablations is True  # not given: the preset's value
    assert command._config(_args("--ablations")).ablations is True
    assert command._config(_args("--llm-captions", "7", "--set", "llm_captions=3")).llm_captions == 7
    assert command._config(_args("--set", "llm_captions=3")).llm_captions == 3


def test_an_option_is_named_in_its_error():
    with pytest.raises(ConfigError, match=r"^--set paraclip_steps must be in \[1, 1000000\] \(got 0\)"):
        command._config(_args("--set", "paraclip_steps=0"))
    with pytest.raises(SystemExit):  # argparse: the option's range is the field's
        _args("--threads", "5000")
