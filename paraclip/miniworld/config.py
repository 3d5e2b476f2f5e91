"""The settings of a mini-world reproduction (a dataclass and its presets) and where runs live.

Every field is checked when a config is made (``--set KEY=VALUE``, a preset, Python): its type comes
from the dataclass annotation, its range or choices from :data:`ALLOWED`, so a bad value stops the
command at once with the key named, not an hour into a run.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paraclip.checks import ABSURD, SEED, Bounds
from paraclip.errors import ParaclipError
from paraclip.files import cache_root


@dataclass
class MiniWorldConfig:
    """Everything that defines a mini-world reproduction (see PRESETS for the runs it is used for)."""

    world_seed: int = 0
    n_train: int = 24000
    n_eval: int = 1000
    n_val: int = 1000  # the validation world: settings are chosen there, the test world is scored once
    image_size: int = 64
    arch: str = "paraclip-mini"
    seeds: list[int] = field(default_factory=lambda: [0])  # the first is the selection seed (selection.py)
    # baseline: CLIP from scratch on canonical captions (both towers, image-caption InfoNCE)
    baseline_steps: int = 600
    baseline_batch_size: int = 128
    baseline_lr: float = 2e-3
    baseline_weight_decay: float = 0.1
    # ParaCLIP: text encoder only, L1 + L2 + L3 (the paper's objective)
    paraclip_steps: int = 1200  # R@1 drop shrinks with fine-tuning samples (TUNING.md)
    paraclip_batch_size: int = 256
    # learning rates tried for every main arm (ParaCLIP and the controls): the rate and the stopping step
    # are chosen together on the validation world from the selection seed's runs (selection.py)
    lr_grid: list[float] = field(default_factory=lambda: [1e-3])
    paraclip_weight_decay: float = 0.1
    paraclip_loss: str = "paraclip"
    # the fair controls at the main budget: plain CLIP fine-tuning on captions and LaCLIP-style
    # paraphrases as captions, trained and selected exactly like ParaCLIP (arms.py)
    controls: bool = True
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
    ablation_lr: float = 1e-3  # fixed in advance for every ablation arm (nothing is selected there)
    ablation_seeds: list[int] = field(default_factory=list)  # empty: the training seeds
    # evaluation
    sts: bool = True
    sts_dir: str | None = None
    n_boot: int = 1000
    threads: int | None = None

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "MiniWorldConfig":
        """``default`` (one seed, ~25 min), ``full`` (the committed report) or ``smoke`` (tiny: CI exercises
        every stage in seconds)."""
        if name not in PRESETS:
            from paraclip.registry import suggest

            close = suggest(name, list(PRESETS))
            raise ParaclipError(f"Unknown mini-world preset {name!r}."
                                + (f" Did you mean {close[0]!r}?" if close else "")
                                + f" Presets: {', '.join(PRESETS)}.")
        return dataclasses.replace(cls(**PRESETS[name]), **overrides)

    def __post_init__(self) -> None:
        problems = [problem for f in dataclasses.fields(self)
                    if (problem := field_problem(f.name, getattr(self, f.name)))]
        if problems:
            raise ParaclipError("Invalid mini-world setting: " + "; ".join(problems)
                                + ". Fix it in --set KEY=VALUE (values are JSON: 800, 1e-3, true, [0,1], \"text\").")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_STEPS = Bounds(1, 1_000_000)
_BATCH = Bounds(1, 65_536)
_COUNT = Bounds(1, 10_000_000)
_RATE = Bounds(0, 10, low_open=True)
_DECAY = Bounds(0, 10)

# What each field allows beyond its type: a range (for a list, of each item) or choices. Fields not
# listed take any value of their type; numbers still stop at ABSURD.
ALLOWED: dict[str, Bounds | tuple[str, ...] | typing.Callable[[], list[str]]] = {
    "world_seed": SEED, "n_train": _COUNT, "n_eval": _COUNT, "n_val": _COUNT, "image_size": Bounds(16, 1024),
    "arch": lambda: sorted(p.stem for p in (Path(__file__).parents[1] / "models" / "configs").glob("*.json")),
    "seeds": SEED, "baseline_steps": _STEPS, "baseline_batch_size": _BATCH, "baseline_lr": _RATE,
    "baseline_weight_decay": _DECAY, "paraclip_steps": _STEPS, "paraclip_batch_size": _BATCH, "lr_grid": _RATE,
    "paraclip_weight_decay": _DECAY, "paraclip_loss": lambda: _loss_names(), "stop_candidates": Bounds(1, 1000),
    "rewriter_seed": SEED, "llm_captions": Bounds(0, 10_000_000), "llm_backend": ("local", "openai"),
    "llm_paraclip_steps": _STEPS, "llm_paraclip_batch_size": _BATCH, "ablation_steps": _STEPS,
    "ablation_batch_size": _BATCH, "ablation_lr": _RATE, "ablation_seeds": SEED, "n_boot": _COUNT, "threads": Bounds(1, 4096),
}
NOT_EMPTY = ("seeds", "lr_grid")  # a reproduction needs at least one training seed and learning rate


def _loss_names() -> list[str]:
    from paraclip.training.losses import LOSS_PRESETS

    return LOSS_PRESETS.names()


def field_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for field ``name`` (a phrase naming the key), or None."""
    tp = typing.get_type_hints(MiniWorldConfig)[name]
    args = typing.get_args(tp)
    optional = typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        if value is None:
            return None
        tp = next(a for a in args if a is not type(None))
    if typing.get_origin(tp) is list:
        if not isinstance(value, list):
            return f"{name} must be a list, e.g. [0, 1] (got {value!r})"
        if name in NOT_EMPTY and not value:
            return f"{name} must list at least one value (got [])"
        return next((f"{name} item {p}" for item in value if (p := _value_problem(name, item, typing.get_args(tp)[0]))),
                    None)
    problem = _value_problem(name, value, tp)
    return f"{name} {problem}" if problem else None


def _value_problem(name: str, value: Any, tp: type) -> str | None:
    type_name = {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(tp, tp.__name__)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        return f"must be {type_name} (got {value!r}{f', {type(value).__name__}' if not isinstance(value, str) else ''})"
    allowed = ALLOWED.get(name)
    if tp in (int, float):
        if tp is float and not math.isfinite(value):
            return f"must be a finite number (got {value})"
        bounds = allowed if isinstance(allowed, Bounds) else Bounds(-ABSURD, ABSURD)
        return bounds.problem(value)
    if allowed is not None and not isinstance(allowed, Bounds):
        choices = list(allowed()) if callable(allowed) else list(allowed)
        if value not in choices:
            from paraclip.registry import suggest

            close = suggest(str(value), choices)
            return (f"{value!r} is not one of {', '.join(choices)}"
                    + (f" (did you mean {close[0]!r}?)" if close else ""))
    return None


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
