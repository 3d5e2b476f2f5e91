"""Training configuration: one dataclass, loaded from YAML and overridden by ``--key value`` flags.

Defaults follow the paper where it states them: the image encoder is frozen and only the
text encoder is trained, with ``L = L1(image, paraphrase_2) + L2(caption, paraphrase_1) +
L3(paraphrase_1, paraphrase_2)``, all weights 1 (Kim et al., 2024, Sec. 3). The paper's
optimiser hyper-parameters were not available to us, so the rest are our choices, taken
from CLIP (Radford et al., 2021: AdamW, beta2 0.98, eps 1e-6, decoupled weight decay 0.2,
warmup + cosine) and scaled down for fine-tuning (lr 1e-5).
"""

from __future__ import annotations

import dataclasses
import json
import math
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from paraclip.checks import AT_LEAST_0, AT_LEAST_1, POSITIVE, SEED, UNIT_OPEN, Bounds
from paraclip.errors import DataError, ParaclipError
from paraclip.files import read_yaml_mapping
from paraclip.registry import suggest


def _option(default: Any = None, help: str = "", *, factory: Callable[[], Any] | None = None,
            **allowed) -> Any:
    """A config field: its default (or ``factory``), its ``help`` text (also ``paraclip train --help``), and
    what values are allowed — ``bounds`` (a numeric range; for a mapping, of each value), ``choices``
    (for a list, of each item) or ``check(value) -> problem``."""
    metadata = {"help": help, **allowed}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# The names the trainer's `validation` field understands (see validation.BUILT_IN_VALIDATORS).
VALIDATORS = ("stsb-dev", "heldout")
VALIDATOR_ALIASES = {"sts-b-dev": "stsb-dev", "stsb": "stsb-dev"}


def _loss_preset_problem(value: str) -> str | None:
    from paraclip.training.losses import LOSS_PRESETS

    if value in LOSS_PRESETS:
        return None
    return _choice_problem([value], LOSS_PRESETS.names(), "a loss preset")


def _device_problem(value: str) -> str | None:
    from paraclip.devices import NOT_A_DEVICE, parse_device_name

    try:
        parse_device_name(value, "device")
    except ParaclipError:
        return f"{value!r} {NOT_A_DEVICE}"
    return None


def normalise_validator(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    return VALIDATOR_ALIASES.get(key, key)


@dataclass
class TrainConfig:
    """Everything that defines a training run. Field help doubles as ``paraclip train --help``."""

    # -- model ----------------------------------------------------------------------------
    model: str = _option("ViT-B-32", "open_clip architecture (ViT-B-32, paraclip-mini, …) or a checkpoint "
                         "written by `paraclip train`")
    pretrained: str | None = _option("openai", "open_clip pretrained tag or checkpoint path; none = random init "
                                     "(training from scratch)")
    # -- data -----------------------------------------------------------------------------
    data: str | None = _option(None, "paraphrase JSONL (image_id, caption, paraphrase_1, paraphrase_2, status), "
                               "as `paraclip paraphrase` writes")
    images: str | None = _option(None, "images: a folder (files named by image_id), a CSV/JSONL with image_id + "
                                 "path columns, or webdataset .tar shards; not needed when every image's features "
                                 "are already in the `features_from` folder")
    features_from: str | None = _option(None, "root folder of the image-feature cache (default: "
                                        "$PARACLIP_CACHE/image-features); rows are keyed by model and image content; a "
                                        "run given no `images` finds features by image_id only in a folder named "
                                        "here, as earlier runs with the images recorded them")
    val_data: str | None = _option(None, "held-out paraphrase JSONL for validation losses / AO@10 (optional)")
    val_split: float = _option(0.0, "fraction of images held out of `data` for validation when `val_data` is not "
                               "given (0 = none)", bounds=UNIT_OPEN)
    max_records: int | None = _option(None, "use at most this many records (debugging)", bounds=AT_LEAST_1)
    skip_missing_images: bool = _option(False, "skip (and report) records whose image is missing or unreadable "
                                        "instead of stopping with an error")
    out_dir: str = _option("runs/paraclip", "run folder: checkpoints, metrics.jsonl, final.pt; an existing run "
                           "there is resumed")
    # -- schedule -------------------------------------------------------------------------
    steps: int | None = _option(None, "optimiser steps (overrides epochs); raising it for a finished run continues "
                                "it, with the cosine schedule re-planned over the new length", bounds=AT_LEAST_1)
    epochs: float | None = _option(1.0, "passes over the data when steps is not set", bounds=POSITIVE)
    # a contrastive loss needs at least one in-batch negative
    batch_size: int = _option(256, "GLOBAL batch size (split across DDP processes); in-batch negatives span the "
                              "whole global batch", bounds=Bounds(2))
    lr: float = _option(1e-5, "peak learning rate", bounds=POSITIVE)
    min_lr: float = _option(0.0, "learning rate at the end of the cosine decay (at most lr)", bounds=AT_LEAST_0)
    warmup: float = _option(0.05, "linear warmup: steps if >= 1, else a fraction of all steps", bounds=AT_LEAST_0)
    weight_decay: float = _option(0.2, "AdamW decoupled weight decay (not applied to biases, norms, embeddings, "
                                  "logit scale); CLIP used 0.2", bounds=AT_LEAST_0)
    beta1: float = _option(0.9, "AdamW beta1", bounds=UNIT_OPEN)
    beta2: float = _option(0.98, "AdamW beta2 (CLIP: 0.98)", bounds=UNIT_OPEN)
    eps: float = _option(1e-6, "AdamW eps (CLIP: 1e-6)", bounds=POSITIVE)
    grad_clip: float | None = _option(1.0, "clip the global grad norm to this (none = off)", bounds=POSITIVE)
    # -- objective ------------------------------------------------------------------------
    loss_preset: str = _option("paraclip", "paraclip (L1+L2+L3), l1-only/l2-only/l3-only, no-l1/no-l2/no-l3, "
                               "clip (image-caption), laclip", check=_loss_preset_problem)
    loss_weights: dict[str, float] | None = _option(None, "override term weights, e.g. l1=1,l2=0.5 (a weight of 0 "
                                                    "drops the term)", bounds=AT_LEAST_0)
    freeze_image: bool = _option(True, "freeze the image tower and train on cached image features (the paper); "
                                 "false = train both towers")
    logit_scale: str = _option("learnable", "learnable (from the model's value) or fixed",
                               choices=("learnable", "fixed"))
    # -- run control ----------------------------------------------------------------------
    seed: int = _option(0, "seed for init, data order and augmentation choices", bounds=SEED)
    checkpoint_every: int = _option(500, "steps between resumable checkpoints (0 = end only)", bounds=AT_LEAST_0)
    keep_checkpoints: int = _option(2, "how many step checkpoints to keep", bounds=AT_LEAST_1)
    validate_every: int = _option(0, "steps between validations (0 = only at the end); validation also runs "
                                  "before the first step when > 0", bounds=AT_LEAST_0)
    validation: list[str] = _option(
        factory=lambda: ["stsb-dev"],
        help="validators: stsb-dev (STS-B dev Spearman), heldout (losses, R@1, AO@10/JS@10 on held-out records)",
        check=lambda names: _choice_problem([normalise_validator(n) for n in names], VALIDATORS))
    sts_dir: str | None = _option(None, "STS data folder for stsb-dev (else $PARACLIP_STS_DIR or packaged)")
    resume: bool = _option(True, "resume from the newest checkpoint in out_dir; false starts over (old files are "
                           "moved aside, not deleted)")
    log_every: int = _option(1, "steps between metrics rows", bounds=AT_LEAST_1)
    # -- hardware -------------------------------------------------------------------------
    device: str = _option("auto", "auto, cpu, cuda, cuda:1 (under torchrun: the local GPU)", check=_device_problem)
    precision: str = _option("auto", "auto (bf16 autocast on CUDA, fp32 on CPU), fp32, bf16",
                             choices=("auto", "fp32", "bf16"))
    grad_checkpointing: bool = _option(False, "recompute activations in backward to save memory")
    threads: int | None = _option(None, "torch CPU threads (default: torch's choice)", bounds=AT_LEAST_1)
    workers: int = _option(0, "image-loading worker processes when images do not fit in memory", bounds=AT_LEAST_0)
    image_memory_gb: float = _option(4.0, "decode all images into memory once when they fit in this many GB "
                                     "(training both towers)", bounds=AT_LEAST_0)
    feature_batch_size: int = _option(256, "batch size for computing cached image features", bounds=AT_LEAST_1)

    # -- derived helpers -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> "TrainConfig":
        """Check every field's range and the fields against each other; raise one readable error.

        :func:`load_config` already checks each field as it is read (naming the file and line);
        this catches configs built in Python and problems that involve several fields.
        """
        problems = [f"{name} {problem}" for name, value in self.to_dict().items()
                    if (problem := field_problem(name, value))]
        if self.steps is None and self.epochs is None:
            problems.append("set steps or epochs")
        if self.min_lr > self.lr:
            problems.append(f"min_lr ({self.min_lr:g}) is above lr ({self.lr:g}), so the learning rate would rise "
                            f"during the decay; set min_lr <= lr (0 decays to zero)")
        if not self.data:
            problems.append("no training data: set `data` to a paraphrase JSONL (`paraclip paraphrase` writes one)")
        if problems:
            raise ParaclipError("Invalid training config: " + "; ".join(problems) + ".")
        self._check_combinations()
        return self

    def _check_combinations(self) -> None:
        """Problems that need other modules: loss weights against the preset's terms, the device here."""
        from paraclip.devices import check_device
        from paraclip.training.losses import resolve_preset

        resolve_preset(self.loss_preset, self.loss_weights)
        if str(self.device).strip().lower() not in ("", "auto"):
            check_device(self.device, "training option device")


def _choice_problem(values, choices, kind: str = "allowed") -> str | None:
    bad = [v for v in values if v not in choices]
    if not bad:
        return None
    close = suggest(str(bad[0]), list(choices))
    return (f"{bad[0]!r} is not {kind}." + (f" Did you mean {', '.join(map(repr, close))}?" if close else "")
            + f" Choose from {', '.join(choices)}")


def field_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for field ``name`` (a phrase to follow the name), or None."""
    meta = config_fields()[name].metadata
    if value is None:
        return None
    if "bounds" in meta:
        numbers = value.values() if isinstance(value, dict) else [value]
        return next((p for v in numbers if (p := meta["bounds"].problem(v))), None)
    if "choices" in meta:
        if isinstance(value, list):
            return _choice_problem(value, meta["choices"])
        return _choice_problem([value], meta["choices"])
    if "check" in meta:
        return meta["check"](value)
    return None


# -- coercion of YAML values and command-line strings ------------------------------------------

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
_NONE = {"none", "null", "~", ""}


def config_fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _strip_optional(tp) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def coerce_value(name: str, value: Any, where: str = "") -> Any:
    """Convert a YAML value or a command-line string to the type of field ``name`` and check it
    against the field's allowed values. ``where`` names the source in errors: ``"run.yaml:7"``,
    ``"--lr"`` (it replaces the field name), or empty."""
    label = where if where.startswith("--") else (f"{where}: {name}" if where else name)
    help_text = config_fields()[name].metadata.get("help", "")
    try:
        converted = _convert(name, value)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        shown = repr(value) if value is None or isinstance(value, (str, int, float)) else reprlib.repr(value)
        why = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise ParaclipError(f"{label}: bad value {shown} ({why}). Expected: {help_text}.") from None
    problem = field_problem(name, converted)
    if problem:
        raise ParaclipError(f"{label} {problem}. ({name}: {help_text}.)")
    return converted


def _convert(name: str, value: Any) -> Any:
    tp, optional = _strip_optional(_field_types()[name])
    origin = typing.get_origin(tp)
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE and tp is not str):
        if optional:
            return None
        if value is None:
            raise ValueError("a value is required")
    if isinstance(value, str) and optional and tp is str and value.strip().lower() in ("none", "null"):
        return None
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("expected true or false")
    if tp is int:
        number = _number(value, "an integer")
        if not math.isfinite(number) or number != int(number):
            raise ValueError("expected an integer")
        return int(number)
    if tp is float:
        return _number(value, "a number")
    if tp is str:
        return str(value)
    if origin is list:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        raise ValueError("expected a list (YAML list or comma-separated)")
    if origin is dict:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                value = json.loads(text)
            else:
                pairs = [p for p in text.split(",") if p.strip()]
                value = {}
                for pair in pairs:
                    if "=" not in pair:
                        raise ValueError(f"expected key=value pairs, got {pair!r}")
                    key, val = pair.split("=", 1)
                    value[key.strip()] = val.strip()
        if not isinstance(value, dict):
            raise ValueError("expected a mapping (YAML mapping or key=value,key=value)")
        return {str(k): float(v) for k, v in value.items()}
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected {what}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected {what}") from None


def _normalise_key(key: str) -> str:
    return str(key).strip().lstrip("-").replace("-", "_")


# Names other trainers use for our fields, so that a config written for them gets a useful hint.
KNOWN_ALIASES = {"learning_rate": "lr", "lr_min": "min_lr", "warmup_steps": "warmup", "max_steps": "steps",
                 "num_epochs": "epochs", "max_grad_norm": "grad_clip", "clip_grad_norm": "grad_clip",
                 "wd": "weight_decay", "adam_beta1": "beta1", "adam_beta2": "beta2", "adam_eps": "eps",
                 "output_dir": "out_dir", "train_data": "data", "save_every": "checkpoint_every",
                 "num_workers": "workers"}


def _check_key(key: str, where: str) -> str:
    name = _normalise_key(key)
    fields = config_fields()
    if name not in fields:
        close = suggest(name, list(fields) + list(KNOWN_ALIASES))
        close = list(dict.fromkeys(KNOWN_ALIASES.get(c, c) for c in close))
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ParaclipError(f"Unknown training option {key!r}{where}.{hint} "
                            f"Options are the fields of TrainConfig (`paraclip train --help` lists them).")
    return name


def apply_overrides(config: TrainConfig, overrides: dict[str, Any], where: str = "",
                    lines: dict[str, int] | None = None) -> TrainConfig:
    """A copy of ``config`` with ``overrides`` (keys may use dashes) coerced, checked and applied.

    ``where`` names the source in errors (a file, or "command line" for ``--flag`` values);
    ``lines`` maps keys to their line in that file.
    """
    changes = {}
    for key, value in overrides.items():
        name = _check_key(key, f" in {where}" if where else "")
        if where == "command line":
            source = f"--{name.replace('_', '-')}"
        elif where:
            source = f"{where}:{lines[key]}" if lines and key in lines else where
        else:
            source = ""
        changes[name] = coerce_value(name, value, source)
    return dataclasses.replace(config, **changes)


def _read_yaml(path: Path) -> tuple[dict, dict[str, int]]:
    """The YAML mapping in ``path`` and the line of each top-level key; errors name file and line
    (the shared reader: bad UTF-8, invalid YAML, deep nesting, alias bombs, keys that are not text)."""
    return read_yaml_mapping(path, "training options")


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the YAML file (if any), then ``overrides``; every value is checked as it is read.

    Relative paths in the YAML file (data, images, …) are resolved against the file's folder,
    so a config travels with its data. Problems that involve several fields are checked by
    :meth:`TrainConfig.validate`.
    """
    config = TrainConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"Training config {path} does not exist.")
        doc, lines = _read_yaml(path)
        doc = {_check_key(k, f" in {path}" + (f":{lines[k]}" if k in lines else "")): v for k, v in doc.items()}
        lines = {_normalise_key(k): line for k, line in lines.items()}
        for key in PATH_FIELDS:
            if isinstance(doc.get(key), str) and doc[key] and not Path(doc[key]).expanduser().is_absolute():
                candidate = path.parent / doc[key]
                if candidate.exists():
                    doc[key] = str(candidate)
        config = apply_overrides(config, doc, where=str(path), lines=lines)
    if overrides:
        config = apply_overrides(config, overrides, where="command line")
    return config


# Input paths; a relative one in a YAML file is taken relative to that file when it exists there
# (out_dir stays relative to the working directory, as for any command-line tool).
PATH_FIELDS = ("data", "images", "features_from", "val_data", "sts_dir", "pretrained", "model")

# Fields that may change between a run and its resumption without changing the result
# (how long to run, how often to log/save/validate, hardware).
RESUMABLE_FIELDS = frozenset({
    "steps", "epochs", "checkpoint_every", "keep_checkpoints", "validate_every", "validation", "sts_dir",
    "resume", "log_every", "device", "threads", "workers", "image_memory_gb", "feature_batch_size",
    "out_dir", "features_from", "images", "val_data", "skip_missing_images", "grad_checkpointing",
})


def changed_fields(saved: dict[str, Any], current: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """Fields that differ between a saved run config and ``current`` and would change the result."""
    now = current.to_dict()
    return {k: (saved.get(k), now[k]) for k in now
            if k not in RESUMABLE_FIELDS and saved.get(k) != now[k]}
