"""The one checkpoint format ParaCLIP writes: open_clip's ``{"state_dict", "arch", ...}``.

``open_clip.create_model_and_transforms(arch, pretrained=path)`` reads the ``state_dict`` key
and :func:`paraclip.models.load_encoder` reads ``arch``; anything else (the trainer's optimiser
and RNG state, a final checkpoint's ``paraclip`` metadata) rides along as extra keys. The file
is written atomically (a crash or a full disk leaves the old file or none, never half of one).
It lives with the models, not the trainer, so that code that only makes or ships weights
(random-init defaults, fp16 assets) need not import the trainer. :func:`read_checkpoint` and
:func:`checkpoint_weights` read any checkpoint back and say plainly when a file is not one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from paraclip.errors import ModelLoadError
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


def read_checkpoint(path: Path):
    """What a ``.pt``/``.pth``/``.bin`` (weights only) or ``.safetensors`` file holds; unreadable files raise
    ModelLoadError. A safetensors file's ``arch`` metadata comes back as ``{"state_dict", "arch"}``."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(str(path), "pt") as f:
                arch = (f.metadata() or {}).get("arch")
            tensors = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - turned into a readable error
            raise ModelLoadError(f"Could not read safetensors file {path}: {type(exc).__name__}. Re-export it "
                                 f"(e.g. `paraclip miniworld --export-assets`).") from exc
        # the architecture rides in the metadata (``paraclip miniworld --export-assets`` writes it)
        return {"state_dict": tensors, "arch": arch} if arch else tensors
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - turned into a readable error
        raise ModelLoadError(
            f"Could not read checkpoint {path}: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}. "
            f"Only weights are loaded "
            f"(torch.load(weights_only=True)); re-save the file as a state dict if it pickles objects."
        ) from exc


def checkpoint_weights(ckpt, path: Path) -> dict:
    """The weights of a checkpoint (``{"state_dict": ...}`` or a bare state dict), checked: a mapping
    of names to tensors. Anything else is a file that is not a model checkpoint."""
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
    where = "its 'state_dict' entry" if isinstance(ckpt, dict) and "state_dict" in ckpt else "it"
    if not isinstance(state, dict):
        kind = "a single tensor" if torch.is_tensor(state) else f"a {type(state).__name__}"
        raise ModelLoadError(
            f"{path} is not a model checkpoint: {where} holds {kind}, not a state dict (a mapping of parameter "
            f"names to tensors). Pass the checkpoint written by training (`paraclip train`, open_clip) or "
            f"`torch.save(model.state_dict(), PATH)`."
        )
    bad = [k for k, v in state.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    if bad:
        shown = ", ".join(f"{k!r} ({type(state[k]).__name__})" for k in bad[:3])
        raise ModelLoadError(
            f"{path} is not a model checkpoint: {where} holds {len(bad)} entr{'y' if len(bad) == 1 else 'ies'} "
            f"that are not named tensors (e.g. {shown}). A state dict maps parameter names to tensors; re-save "
            f"it with `torch.save(model.state_dict(), PATH)`.", file_text=[str(k) for k in bad[:3]]
        )
    # NaN weights (a diverged run, a damaged file) load fine and then score everything as NaN or
    # garbage: refuse them here. Infinities are left alone: attention masks legitimately hold -inf.
    broken = [k for k, v in state.items() if v.is_floating_point() and bool(torch.isnan(v).any())]
    if broken:
        raise ModelLoadError(
            f"{path} holds NaN weights in {len(broken)} tensor{'' if len(broken) == 1 else 's'} (e.g. "
            f"{', '.join(broken[:3])}): the run that wrote it diverged or the file is damaged. Use an earlier "
            f"checkpoint of the run (step-N.pt) or retrain with a lower --lr.", file_text=broken[:3]
        )
    return state
