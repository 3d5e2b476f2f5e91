"""ParaCLIP fine-tuning (and CLIP training from scratch for the mini-world).

The library never imports this package except through the ``paraclip train`` command,
as open_clip keeps its trainer apart from the model code.

    from paraclip.training import TrainConfig, train
    result = train(TrainConfig(model="ViT-B-32", pretrained="openai", data="paraphrases.jsonl",
                               images="images/", out_dir="runs/paraclip"))
    result.checkpoint  # final.pt: open_clip.create_model_and_transforms("ViT-B-32", pretrained=...)

Names are imported lazily so that building the CLI parser (which reads the config fields)
does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "config", "load_config": "config", "apply_overrides": "config",
    "LOSS_PRESETS": "losses", "LossPreset": "losses", "LossTerm": "losses", "contrastive_loss": "losses",
    "resolve_preset": "losses",
    "TrainResult": "trainer", "train": "trainer",
    "HeldOutValidator": "validation", "STSBDevValidator": "validation", "Validator": "validation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'paraclip.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"paraclip.training.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
