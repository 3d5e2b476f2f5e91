"""Device names (``--device``, the ``device`` config field): parsed and checked against this machine.

A device that does not exist here (``cuda`` without a GPU, ``cuda:3`` on a one-GPU machine,
``mps`` off Apple silicon, a typo) is refused with one paragraph saying what this machine has,
before any model is loaded, instead of a torch stack trace half-way through a run.
"""

from __future__ import annotations

import torch

from paraclip.errors import ParaclipError

SUPPORTED = ("cpu", "cuda", "mps")
AUTO = ("", "auto")
NOT_A_DEVICE = ("is not a device name paraclip can use: give cpu, cuda, cuda:N (N counts GPUs from 0) or mps, "
                "or auto for the default (cuda when a GPU is visible, else cpu)")


def parse_device_name(spec: str, option: str = "--device") -> torch.device | None:
    """The device ``spec`` names (None for auto), or a ParaclipError if it is not a device name at all."""
    text = str(spec).strip().lower()
    if text in AUTO:
        return None
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in SUPPORTED or (device.index is not None and device.index < 0):
        raise ParaclipError(f"{option} {spec!r} {NOT_A_DEVICE}.")
    return device


def cuda_summary() -> str:
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n == 0:
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return f"torch sees no CUDA GPU here (torch {torch.__version__}, {built})"
    names = ", ".join(f"cuda:{i}" for i in range(n))
    return f"this machine has {n} CUDA GPU{'s' if n > 1 else ''} ({names})"


def check_device(spec: str | torch.device | None, option: str = "--device") -> torch.device:
    """The torch device for ``spec`` (None/auto: cuda if available, else cpu), checked to exist here."""
    if isinstance(spec, torch.device):
        device = spec
    else:
        device = parse_device_name(spec or "", option)
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ParaclipError(f"{option} {str(spec)!r} asks for a CUDA GPU, but {cuda_summary()}. Use cpu (or "
                                f"auto, which picks cpu here), or run where a GPU and a CUDA build of PyTorch are "
                                f"installed.")
        if device.index is not None and device.index >= count:
            raise ParaclipError(f"{option} {str(spec)!r} does not exist: {cuda_summary()}. GPUs are numbered from 0 "
                                f"among those visible (CUDA_VISIBLE_DEVICES).")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ParaclipError(f"{option} {str(spec)!r} asks for Apple's MPS, which this machine or PyTorch build does "
                            f"not have. Use cpu" + (" or cuda." if torch.cuda.is_available() else " (or auto)."))
    return device


__all__ = ["NOT_A_DEVICE", "check_device", "cuda_summary", "parse_device_name"]
