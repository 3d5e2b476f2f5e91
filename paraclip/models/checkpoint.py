"""The one checkpoint format ParaCLIP writes: open_clip's ``{"state_dict", "arch", ...}``.

``open_clip.create_model_and_transforms(arch, pretrained=path)`` reads the ``state_dict`` key
and :func:`paraclip.models.load_encoder` reads ``arch``; anything else (the trainer's optimiser
and RNG state, a final checkpoint's ``paraclip`` metadata) rides along as extra keys. The file
is written atomically (a crash or a full disk leaves the old file or none, never half of one).
It lives with the models, not the trainer, so that code that only makes or ships weights
(random-init defaults, fp16 assets) need not import the trainer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from paraclip.files import atomic_write


def checkpoint_dict(state_dict: Mapping[str, torch.Tensor], arch: str, **fields: Any) -> dict[str, Any]:
    """``{"state_dict": weights on the CPU, "arch": arch, **fields}``."""
    return {"state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}, "arch": arch, **fields}


def save_checkpoint(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor], arch: str,
                    **fields: Any) -> Path:
    """Write :func:`checkpoint_dict` to ``path`` atomically; returns the path."""
    path = Path(path)
    state = checkpoint_dict(state_dict, arch, **fields)
    atomic_write(path, lambda f: torch.save(state, f), binary=True)
    return path
