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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paraclip.checks import AT_LEAST_0, AT_LEAST_1, POSITIVE, SEED, UNIT_OPEN, Bounds
from paraclip.errors import ConfigError, DataError, ParaclipError
from paraclip.files import read_yaml_mapping
from paraclip.registry import suggest
from paraclip.settings import bounds_of, check_keys, check_value, problems, read_settings, setting

# The names the trainer's `validation` field understands (see validation.BUILT_IN_VALIDATORS).
VALIDATORS = ("stsb-dev", "heldout")
VALIDATOR_ALIASES = {"sts-b-dev": "stsb-dev", "stsb": "stsb-dev"}


def _loss_presets() -> list[str]:
    from paraclip.training.losses import LOSS_PRESETS

    return LOSS_PRESETS.names()


def _validators_problem(names: list[str]) -> str | None:
    bad = next((n for n in names if normalise_validator(n) not in VALIDATORS), None)
    if bad is None:
        return None
    close = suggest(normalise_validator(bad), list(VALIDATORS))
    return (f"must name validators from {', '.join(VALIDATORS)} (got {bad!r})."
            + (f" Did you mean {', '.join(map(repr, close))}?" if close else ""))


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
    model: str = setting("ViT-B-32", "open_clip architecture (ViT-B-32, paraclip-mini, …) or a checkpoint "
                         "written by `paraclip train`")
    pretrained: str | None = setting("openai", "open_clip pretrained tag or checkpoint path; none = random init "
                                     "(training from scratch)")
    # -- data -----------------------------------------------------------------------------
    data: str | None = setting(None, "paraphrase JSONL (image_id, caption, paraphrase_1, paraphrase_2, status), "
                               "as `paraclip paraphrase` writes")
    images: str | None = setting(None, "images: a folder (files named by image_id), a CSV/JSONL with image_id + "
                                 "path columns, or webdataset .tar shards; not needed when every image's features "
                                 "are already in the `features_from` folder")
    features_from: str | None = setting(None, "root folder of the image-feature cache (default: "
                                        "$PARACLIP_CACHE/image-features); rows are keyed by model and image content; a "
                                        "run given no `images` finds features by image_id only in a folder named "
                                        "here, as earlier runs with the images recorded them")
    val_data: str | None = setting(None, "held-out paraphrase JSONL for validation losses / AO@10 (optional)")
    val_split: float = setting(0.0, "fraction of images held out of `data` for validation when `val_data` is not "
                               "given (0 = none)", bounds=UNIT_OPEN)
    max_records: int | None = setting(None, "use at most this many records (debugging)", bounds=AT_LEAST_1)
    skip_missing_images: bool = setting(False, "skip (and report) records whose image is missing or unreadable "
                                        "instead of stopping with an error")
    out_dir: str = setting("runs/paraclip", "run folder: checkpoints, metrics.jsonl, final.pt; an existing run "
                           "there is resumed")
    # -- schedule -------------------------------------------------------------------------
    steps: int | None = setting(None, "optimiser steps (overrides epochs); raising it for a finished run continues "
                                "it, with the cosine schedule re-planned over the new length", bounds=AT_LEAST_1)
    epochs: float | None = setting(1.0, "passes over the data when steps is not set", bounds=POSITIVE)
    # a contrastive loss needs at least one in-batch negative
    batch_size: int = setting(256, "GLOBAL batch size (split across DDP processes); in-batch negatives span the "
                              "whole global batch", bounds=Bounds(2))
    lr: float = setting(1e-5, "peak learning rate", bounds=POSITIVE)
    min_lr: float = setting(0.0, "learning rate at the end of the cosine decay (at most lr)", bounds=AT_LEAST_0)
    warmup: float = setting(0.05, "linear warmup: steps if >= 1, else a fraction of all steps", bounds=AT_LEAST_0)
    weight_decay: float = setting(0.2, "AdamW decoupled weight decay (not applied to biases, norms, embeddings, "
                                  "logit scale); CLIP used 0.2", bounds=AT_LEAST_0)
    beta1: float = setting(0.9, "AdamW beta1", bounds=UNIT_OPEN)
    beta2: float = setting(0.98, "AdamW beta2 (CLIP: 0.98)", bounds=UNIT_OPEN)
    eps: float = setting(1e-6, "AdamW eps (CLIP: 1e-6)", bounds=POSITIVE)
    grad_clip: float | None = setting(1.0, "clip the global grad norm to this (none = off)", bounds=POSITIVE)
    # -- objective ------------------------------------------------------------------------
    loss_preset: str = setting("paraclip", "paraclip (L1+L2+L3), l1-only/l2-only/l3-only, no-l1/no-l2/no-l3, "
                               "clip (image-caption), laclip", choices=_loss_presets)
    loss_weights: dict[str, float] | None = setting(None, "override term weights, e.g. l1=1,l2=0.5 (a weight of 0 "
                                                    "drops the term)", bounds=AT_LEAST_0)
    freeze_image: bool = setting(True, "freeze the image tower and train on cached image features (the paper); "
                                 "false = train both towers")
    logit_scale: str = setting("learnable", "learnable (from the model's value) or fixed",
                               choices=("learnable", "fixed"))
    # -- run control ----------------------------------------------------------------------
    seed: int = setting(0, "seed for init, data order and augmentation choices", bounds=SEED)
    checkpoint_every: int = setting(500, "steps between resumable checkpoints (0 = end only)", bounds=AT_LEAST_0)
    keep_checkpoints: int = setting(2, "how many step checkpoints to keep", bounds=AT_LEAST_1)
    validate_every: int = setting(0, "steps between validations (0 = only at the end); validation also runs "
                                  "before the first step when > 0", bounds=AT_LEAST_0)
    validation: list[str] = setting(
        factory=lambda: ["stsb-dev"],
        help="validators: stsb-dev (STS-B dev Spearman), heldout (losses, R@1, AO@10/JS@10 on held-out records)",
        check=_validators_problem)
    sts_dir: str | None = setting(None, "STS data folder for stsb-dev (else $PARACLIP_STS_DIR or packaged)")
    resume: bool = setting(True, "resume from the newest checkpoint in out_dir; false starts over (old files are "
                           "moved aside, not deleted)")
    log_every: int = setting(1, "steps between metrics rows", bounds=AT_LEAST_1)
    # -- hardware -------------------------------------------------------------------------
    device: str = setting("auto", "auto, cpu, cuda, cuda:1 (under torchrun: the local GPU)", check=_device_problem)
    precision: str = setting("auto", "auto (bf16 autocast on CUDA, fp32 on CPU), fp32, bf16",
                             choices=("auto", "fp32", "bf16"))
    grad_checkpointing: bool = setting(False, "recompute activations in backward to save memory")
    threads: int | None = setting(None, "torch CPU threads (default: torch's choice)", bounds=AT_LEAST_1)
    workers: int = setting(0, "image-loading worker processes when images do not fit in memory", bounds=AT_LEAST_0)
    image_memory_gb: float = setting(4.0, "decode all images into memory once when they fit in this many GB "
                                     "(training both towers)", bounds=AT_LEAST_0)
    feature_batch_size: int = setting(256, "batch size for computing cached image features", bounds=AT_LEAST_1)

    # -- derived helpers -------------------------------------------------------------------
    bounds = classmethod(bounds_of)  # TrainConfig.bounds("lr"): a field's range, for options and forms

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> "TrainConfig":
        """Check every field's type and range and the fields against each other; raise one readable error.

        :func:`load_config` already checks each field as it is read (naming the file and line);
        this catches configs built in Python and problems that involve several fields.
        """
        found = problems(self)
        if self.steps is None and self.epochs is None:
            found.append("set steps or epochs")
        if isinstance(self.min_lr, (int, float)) and isinstance(self.lr, (int, float)) and self.min_lr > self.lr:
            found.append(f"min_lr ({self.min_lr:g}) is above lr ({self.lr:g}), so the learning rate would rise "
                         f"during the decay; set min_lr <= lr (0 decays to zero)")
        if not self.data:
            found.append("no training data: set `data` to a paraphrase JSONL (`paraclip paraphrase` writes one)")
        if found:
            raise ConfigError("Invalid training config: " + "; ".join(p.rstrip(".") for p in found) + ".")
        self._check_combinations()
        return self

    def _check_combinations(self) -> None:
        """Problems that need other modules: loss weights against the preset's terms, the device here."""
        from paraclip.devices import check_device
        from paraclip.training.losses import resolve_preset

        resolve_preset(self.loss_preset, self.loss_weights)
        if str(self.device).strip().lower() not in ("", "auto"):
            check_device(self.device, "training option device")


def config_fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def coerce_value(name: str, value: Any, where: str = "") -> Any:
    """A YAML value or a command-line string converted to field ``name``'s type and checked
    (:func:`paraclip.settings.check_value`). ``where`` names the source in errors: ``"run.yaml:7"``,
    ``"--lr"`` (it replaces the field name), or empty."""
    return check_value(TrainConfig, name, value, where, text=True)


def _normalise_key(key: str) -> str:
    return str(key).strip().lstrip("-").replace("-", "_")


# Names other trainers use for our fields, so that a config written for them gets a useful hint.
KNOWN_ALIASES = {"learning_rate": "lr", "lr_min": "min_lr", "warmup_steps": "warmup", "max_steps": "steps",
                 "num_epochs": "epochs", "max_grad_norm": "grad_clip", "clip_grad_norm": "grad_clip",
                 "wd": "weight_decay", "adam_beta1": "beta1", "adam_beta2": "beta2", "adam_eps": "eps",
                 "output_dir": "out_dir", "train_data": "data", "save_every": "checkpoint_every",
                 "num_workers": "workers"}


def _normalised(overrides: dict[str, Any], where: str, lines: dict[str, int] | None) -> tuple[dict, dict]:
    """Keys with dashes read as underscores (``batch-size``); unknown keys refused with close matches."""
    keys = {key: _normalise_key(key) for key in overrides}
    check_keys(TrainConfig, [keys[k] for k in overrides], where, kind="training option", aliases=KNOWN_ALIASES,
               lines={keys[k]: line for k, line in (lines or {}).items() if k in keys})
    return {keys[k]: v for k, v in overrides.items()}, {keys[k]: line for k, line in (lines or {}).items()
                                                        if k in keys}


def apply_overrides(config: TrainConfig, overrides: dict[str, Any], where: str = "",
                    lines: dict[str, int] | None = None) -> TrainConfig:
    """A copy of ``config`` with ``overrides`` (keys may use dashes) converted, checked and applied.

    ``where`` names the source in errors (a file, or "command line" for ``--flag`` values, which errors
    name as the flag); ``lines`` maps keys to their line in that file.
    """
    values, lines = _normalised(overrides, "" if where == "command line" else where, lines)
    flags = {k: f"--{k.replace('_', '-')}" for k in values} if where == "command line" else None
    changes = read_settings(TrainConfig, values, "" if where == "command line" else where, text=True,
                            lines=lines, flags=flags, kind="training option", aliases=KNOWN_ALIASES)
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
        doc, lines = _normalised(doc, str(path), lines)
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
