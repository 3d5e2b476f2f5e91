"""The settings of a mini-world reproduction (a dataclass and its presets) and where runs live.

Every field is checked when a config is made (``--set KEY=VALUE``, a preset, Python): its type comes
from the dataclass annotation, its range or choices from the field's :func:`paraclip.settings.setting`,
so a bad value stops the command at once with the key named, not an hour into a run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paraclip.checks import SEED, Bounds
from paraclip.errors import ConfigError
from paraclip.files import cache_root
from paraclip.settings import bounds_of, problems, setting

_STEPS = Bounds(1, 1_000_000)
_BATCH = Bounds(1, 65_536)
_COUNT = Bounds(1, 10_000_000)
_RATE = Bounds(0, 10, low_open=True)
_DECAY = Bounds(0, 10)


def _arch_names() -> list[str]:
    return sorted(p.stem for p in (Path(__file__).parents[1] / "models" / "configs").glob("*.json"))


def _loss_names() -> list[str]:
    from paraclip.training.losses import LOSS_PRESETS

    return LOSS_PRESETS.names()


@dataclass
class MiniWorldConfig:
    """Everything that defines a mini-world reproduction (see PRESETS for the runs it is used for)."""

    world_seed: int = setting(0, bounds=SEED)
    n_train: int = setting(24000, bounds=_COUNT)
    n_eval: int = setting(1000, bounds=_COUNT)
    # the validation world: settings are chosen there, the test world is scored once
    n_val: int = setting(1000, bounds=_COUNT)
    image_size: int = setting(64, bounds=Bounds(16, 1024))
    arch: str = setting("paraclip-mini", choices=_arch_names)
    # the first is the selection seed (selection.py); a reproduction needs at least one
    seeds: list[int] = setting(factory=lambda: [0], bounds=SEED, not_empty=True)
    # baseline: CLIP from scratch on canonical captions (both towers, image-caption InfoNCE)
    baseline_steps: int = setting(600, bounds=_STEPS)
    baseline_batch_size: int = setting(128, bounds=_BATCH)
    baseline_lr: float = setting(2e-3, bounds=_RATE)
    baseline_weight_decay: float = setting(0.1, bounds=_DECAY)
    # ParaCLIP: text encoder only, L1 + L2 + L3 (the paper's objective)
    paraclip_steps: int = setting(1200, bounds=_STEPS)  # R@1 drop shrinks with fine-tuning samples (TUNING.md)
    paraclip_batch_size: int = setting(256, bounds=_BATCH)
    # learning rates tried for every main arm (ParaCLIP and the controls): the rate and the stopping step
    # are chosen together on the validation world from the selection seed's runs (selection.py)
    lr_grid: list[float] = setting(factory=lambda: [1e-3], bounds=_RATE, not_empty=True)
    paraclip_weight_decay: float = setting(0.1, bounds=_DECAY)
    paraclip_loss: str = setting("paraclip", choices=_loss_names)
    # the fair controls at the main budget: plain CLIP fine-tuning on captions and LaCLIP-style
    # paraphrases as captions, trained and selected exactly like ParaCLIP (arms.py)
    controls: bool = True
    # the stopping step is chosen on the validation world among this many evenly spaced checkpoints
    # of each ParaCLIP run (early stopping; the cosine schedule always spans paraclip_steps)
    stop_candidates: int = setting(4, bounds=Bounds(1, 1000))
    rewriter_seed: int = setting(0, bounds=SEED)
    # optional second paraphrase source: the offline LLM through the paraphrasing engine
    llm_captions: int = setting(0, bounds=Bounds(0, 10_000_000))
    # local (offline LLM pack, else SmolLM2) or openai (any compatible endpoint)
    llm_backend: str = setting("local", choices=("local", "openai"))
    llm_model: str | None = None
    llm_base_url: str | None = None
    # the LLM comparison trains on a few hundred captions, so it has its own (smaller) schedule
    llm_paraclip_steps: int = setting(300, bounds=_STEPS)
    llm_paraclip_batch_size: int = setting(64, bounds=_BATCH)
    # the paper's ablation and fair controls (ablations.py): its own, fixed schedule for every arm
    ablations: bool = False
    ablation_steps: int = setting(300, bounds=_STEPS)
    ablation_batch_size: int = setting(128, bounds=_BATCH)
    ablation_lr: float = setting(1e-3, bounds=_RATE)  # fixed in advance for every ablation arm (nothing is selected there)
    ablation_seeds: list[int] = setting(factory=list, bounds=SEED)  # empty: the training seeds
    # evaluation
    sts: bool = True
    sts_dir: str | None = None
    n_boot: int = setting(1000, bounds=_COUNT)
    threads: int | None = setting(None, bounds=Bounds(1, 4096))

    bounds = classmethod(bounds_of)  # MiniWorldConfig.bounds("threads"): a field's range, for options

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "MiniWorldConfig":
        """``default`` (one seed, ~25 min), ``full`` (the committed report) or ``smoke`` (tiny: CI exercises
        every stage in seconds)."""
        if name not in PRESETS:
            from paraclip.registry import suggest

            close = suggest(name, list(PRESETS))
            raise ConfigError(f"Unknown mini-world preset {name!r}."
                                + (f" Did you mean {close[0]!r}?" if close else "")
                                + f" Presets: {', '.join(PRESETS)}.")
        return dataclasses.replace(cls(**PRESETS[name]), **overrides)

    def __post_init__(self) -> None:
        found = problems(self)
        if found:
            raise ConfigError("Invalid mini-world setting: " + "; ".join(p.rstrip(".") for p in found)
                                + ". Fix it in --set KEY=VALUE (values are JSON: 800, 1e-3, true, [0,1], \"text\").")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # ~25 min on 2 idle cores: one seed, the three main arms at one learning rate, no ablations
    "default": {},
    # the committed report (reports/miniworld): 3 seeds, a 3-rate grid for every main arm, the ablations
    # at 3 seeds (~2 h on 2 idle cores)
    "full": dict(seeds=[0, 1, 2], lr_grid=[5e-4, 1e-3, 2e-3], ablations=True),
    "smoke": dict(n_train=96, n_eval=40, n_val=40, image_size=32, arch="paraclip-tiny", seeds=[0], baseline_steps=4,
                  baseline_batch_size=16, paraclip_steps=3, paraclip_batch_size=16, llm_paraclip_steps=3,
                  llm_paraclip_batch_size=16, ablation_steps=3, ablation_batch_size=16, n_boot=50, sts=False),
}


def preset_name(cfg: MiniWorldConfig) -> str | None:
    """The preset ``cfg`` equals, CPU threads aside (None: a custom configuration)."""
    for name in PRESETS:
        if {**MiniWorldConfig.preset(name).to_dict(), "threads": None} == {**cfg.to_dict(), "threads": None}:
            return name
    return None


def default_root() -> Path:
    """Where reproductions live: ``$PARACLIP_CACHE/miniworld`` (one folder per preset below it)."""
    return cache_root() / "miniworld"
