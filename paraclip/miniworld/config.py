"""The settings of a mini-world reproduction (a dataclass and its presets) and where runs live."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paraclip.errors import ParaclipError
from paraclip.files import cache_root


@dataclass
class MiniWorldConfig:
    """Everything that defines a mini-world reproduction (the defaults fit ~30 min on 2 CPU cores)."""

    world_seed: int = 0
    n_train: int = 24000
    n_eval: int = 1000
    n_val: int = 1000  # the validation world: settings are chosen there, the test world is scored once
    image_size: int = 64
    arch: str = "paraclip-mini"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    # baseline: CLIP from scratch on canonical captions (both towers, image-caption InfoNCE)
    baseline_steps: int = 600
    baseline_batch_size: int = 128
    baseline_lr: float = 2e-3
    baseline_weight_decay: float = 0.1
    # ParaCLIP: text encoder only, L1 + L2 + L3 (the paper's objective)
    paraclip_steps: int = 1200  # R@1 drop shrinks with fine-tuning samples (TUNING.md)
    paraclip_batch_size: int = 256
    paraclip_lr: float = 1e-3
    paraclip_weight_decay: float = 0.1
    paraclip_loss: str = "paraclip"
    # the stopping step is chosen on the validation world among this many evenly spaced checkpoints
    # of each ParaCLIP run (early stopping; the cosine schedule always spans paraclip_steps)
    stop_candidates: int = 4
    rewriter_seed: int = 0
    # optional second paraphrase source: the offline LLM through the paraphrasing engine
    llm_captions: int = 0
    llm_backend: str = "local"  # local (offline LLM pack, else SmolLM2) or openai (any compatible endpoint)
    llm_model: str | None = None
    llm_base_url: str | None = None
    # the LLM comparison trains on a few hundred captions, so it has its own (smaller) schedule
    llm_paraclip_steps: int = 300
    llm_paraclip_batch_size: int = 64
    # the paper's ablation and fair controls (ablations.py): its own, fixed schedule for every arm
    ablations: bool = False
    ablation_steps: int = 300
    ablation_batch_size: int = 128
    ablation_seeds: list[int] = field(default_factory=list)  # empty: the training seeds
    # evaluation
    sts: bool = True
    sts_dir: str | None = None
    n_boot: int = 1000
    threads: int | None = None

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "MiniWorldConfig":
        """``default`` (the reproduction) or ``smoke`` (tiny: CI exercises every stage in seconds)."""
        if name not in PRESETS:
            from paraclip.registry import suggest

            close = suggest(name, list(PRESETS))
            raise ParaclipError(f"Unknown mini-world preset {name!r}."
                                + (f" Did you mean {close[0]!r}?" if close else "")
                                + f" Presets: {', '.join(PRESETS)}.")
        return dataclasses.replace(cls(**PRESETS[name]), **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "smoke": dict(n_train=96, n_eval=40, n_val=40, image_size=32, arch="paraclip-tiny", seeds=[0], baseline_steps=4,
                  baseline_batch_size=16, paraclip_steps=3, paraclip_batch_size=16, llm_paraclip_steps=3,
                  llm_paraclip_batch_size=16, ablation_steps=3, ablation_batch_size=16, n_boot=50, sts=False),
}


def default_root() -> Path:
    """Where reproductions live: ``$PARACLIP_CACHE/miniworld`` (one folder per preset below it)."""
    return cache_root() / "miniworld"
