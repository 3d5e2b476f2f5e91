import pytest

from paraclip.errors import DataError, ParaclipError
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
    with pytest.raises(ParaclipError, match=r"batch_sise.*run.yaml.*batch_size"):
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
