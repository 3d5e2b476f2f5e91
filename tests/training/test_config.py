import pytest

from paraclip.errors import ConfigError, DataError, ParaclipError
from paraclip.training.config import TrainConfig, apply_overrides, changed_fields, load_config


def test_yaml_then_overrides_with_types_coerced(tmp_path):
    (tmp_path / "data.jsonl").write_text("{}\n")
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("model: paraclip-tiny\npretrained: null\ndata: data.jsonl\nlr: 1e-4\nbatch_size: 64\n"
                        "loss_weights: {l1: 1, l2: 0.5}\nvalidation: [stsb-dev, heldout]\n")
    cfg = load_config(cfg_file, {"batch-size": "32", "freeze_image": "false", "grad-clip": "none",
                                 "validation": "heldout"})
    assert cfg.model == "paraclip-tiny" and cfg.pretrained is None
    assert cfg.data == str(tmp_path / "data.jsonl")  # relative to the YAML file
    assert cfg.lr == 1e-4 and isinstance(cfg.lr, float)  # YAML reads 1e-4 as a string; coerced
    assert cfg.batch_size == 32 and cfg.freeze_image is False and cfg.grad_clip is None
    assert cfg.loss_weights == {"l1": 1.0, "l2": 0.5}
    assert cfg.validation == ["heldout"]


def test_loss_weights_from_the_command_line():
    cfg = apply_overrides(TrainConfig(), {"loss_weights": "l1=2,l3=0"})
    assert cfg.loss_weights == {"l1": 2.0, "l3": 0.0}


def test_unknown_key_names_file_and_suggests(tmp_path):
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("batch_sise: 8\n")
    with pytest.raises(ParaclipError, match=r"run.yaml:1: unknown training option 'batch_sise'. Did you mean "
                                            r"'batch_size'"):
        load_config(cfg_file)


def test_bad_value_names_the_field():
    with pytest.raises(ParaclipError, match="batch_size"):
        apply_overrides(TrainConfig(), {"batch_size": "many"})
    with pytest.raises(ParaclipError, match="freeze_image"):
        apply_overrides(TrainConfig(), {"freeze_image": "maybe"})


def test_invalid_yaml_names_the_line(tmp_path):
    cfg_file = tmp_path / "bad.yaml"
    cfg_file.write_text("lr: 1\nsteps: [1,\n")
    with pytest.raises(DataError, match="bad.yaml:"):
        load_config(cfg_file)


def _printed(capsys, *argv: str) -> dict:
    import yaml

    from paraclip.cli import main

    assert main(["train", *argv, "--print-config"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("yaml_text, flags, expected", [
    ("freeze_image: true\n", ["--no-freeze-image"], {"freeze_image": False}),  # a flag turns a YAML true off
    ("freeze_image: true\n", ["--freeze-image", "false"], {"freeze_image": False}),
    ("freeze_image: false\n", ["--freeze-image"], {"freeze_image": True}),  # and a YAML false on
    ("freeze_image: false\n", [], {"freeze_image": False}),  # a flag not given leaves the file's value
    ("resume: false\nlr: 1e-4\n", ["--resume", "--lr", "3e-5"], {"resume": True, "lr": 3e-5}),
    ("lr: 1e-4\nbatch_size: 64\n", ["--batch-size", "8"], {"lr": 1e-4, "batch_size": 8}),
    ("grad_clip: 2\n", ["--grad-clip", "none"], {"grad_clip": None}),
    ("", ["--lr", "2e-3"], {"lr": 2e-3, "freeze_image": True}),  # defaults below both
])
def test_flags_override_the_yaml_both_ways(tmp_path, capsys, yaml_text, flags, expected):
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text(yaml_text)
    printed = _printed(capsys, "--config", str(cfg_file), *flags)
    assert {key: printed[key] for key in expected} == expected


@pytest.mark.parametrize("yaml_text, words", [
    ("lr: -1\n", ("run.yaml:1: lr must be > 0 (got -1)",)),
    ("batch_size: 1\n", ("run.yaml:1: batch_size must be >= 2 (got 1)",)),
    ("seed: -1\n", ("seed must be in [0, 4294967295] (got -1)",)),
    ("beta2: 1.0\n", ("beta2 must be in [0, 1) (got 1)",)),
    ("steps: 2.5\n", ("steps must be an integer >= 1 (got 2.5)",)),
    ("freeze_image: maybe\n", ("freeze_image must be true or false (got 'maybe')",)),
    ("precision: fp16\n", ("precision must be one of auto, fp32, bf16 (got 'fp16')", "Did you mean 'bf16'")),
    ("logit_scale: fixd\n", ("Did you mean 'fixed'",)),
    ("validation: [heldot]\n", ("validation must name validators from stsb-dev, heldout", "Did you mean 'heldout'")),
    ("loss_weights: {l1: -1}\n", ("loss_weights must be >= 0 (got -1)",)),
    ("learning_rate: 1\n", ("unknown training option 'learning_rate'", "Did you mean 'lr'")),
])
def test_a_bad_yaml_value_names_file_line_field_and_what_is_allowed(tmp_path, yaml_text, words):
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text(yaml_text)
    with pytest.raises(ConfigError) as caught:
        load_config(cfg_file)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_a_bad_flag_is_named_as_the_flag(tmp_path, capsys):
    from paraclip.cli import main

    assert main(["train", "--lr", "0", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "--lr must be > 0 (got 0)" in err and "Traceback" not in err


def test_good_values_pass_and_ranges_are_readable():
    cfg = apply_overrides(TrainConfig(data="d.jsonl"), {"lr": "5e-4", "batch_size": 2, "beta2": 0, "seed": 2**32 - 1,
                                                       "val_split": 0.5, "validation": "sts-b-dev,heldout"})
    assert cfg.validate() is cfg and cfg.batch_size == 2 and cfg.lr == 5e-4
    assert TrainConfig.bounds("batch_size").low == 2 and TrainConfig.bounds("lr").describe() == "> 0"


def test_validate_requires_data_and_sane_values():
    with pytest.raises(ParaclipError, match="data"):
        TrainConfig().validate()
    with pytest.raises(ParaclipError, match="logit_scale"):
        TrainConfig(data="x.jsonl", logit_scale="frozen").validate()


def test_changed_fields_ignores_run_length_and_hardware():
    saved = TrainConfig(data="d.jsonl", steps=10).to_dict()
    assert changed_fields(saved, TrainConfig(data="d.jsonl", steps=20, device="cpu", checkpoint_every=3)) == {}
    assert set(changed_fields(saved, TrainConfig(data="d.jsonl", lr=1.0))) == {"lr"}


def test_example_configs_load():
    from pathlib import Path

    from paraclip.training.losses import LOSS_PRESETS

    files = sorted((Path(__file__).resolve().parents[2] / "configs" / "train").glob("*.yaml"))
    assert files
    for path in files:
        cfg = load_config(path)
        LOSS_PRESETS.get(cfg.loss_preset)
        assert cfg.data, path
