"""Checks before a training job starts, so that a job never fails seconds in for a reason the form
could have told: settings out of range, records without image ids, images that are not there. What the
data holds is found by :mod:`paraclip.training.preflight`; this module words it as advice.

When images are missing, the message offers what works: the text-only loss terms (``no-l1`` =
L2 + L3, the paper's ablation without the image term), an image upload, or the example data.
Text-only training of records without image ids gets a copy of the data with stand-in ids (the
trainer joins by image_id; the text-only terms never look at an image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paraclip.training.config import TrainConfig
from paraclip.training.preflight import DataSummary, images_found, scan_records, with_standin_ids

# What the app lets a visitor start (the CLI takes anything the trainer accepts): the trainer's lower ends
# (TrainConfig's ranges), the app's own caps above.
LIMITS = {"steps": (TrainConfig.bounds("steps").low, 20_000),
          "batch_size": (TrainConfig.bounds("batch_size").low, 1024),
          "lr": (1e-7, 0.1), "val_split": (TrainConfig.bounds("val_split").low, 0.5)}
OFFER = ("Choose one: **Use text-only losses** (`no-l1` = L2 + L3, the paper's ablation without the image term; "
         "needs no images), **upload the images** (a zip of files named by image_id), or **Use the example data** "
         "(mini-world scenes with paraphrases and images).")


class TrainCheckError(ValueError):
    """The job would fail: the message says why and what to do."""


@dataclass
class TrainPlan:
    data: str
    updates: dict[str, Any] = field(default_factory=dict)  # config fields changed by the checks
    notes: list[str] = field(default_factory=list)


def check_settings(steps, batch_size, lr, val_split, loss_preset: str, loss_weights: str | None) -> dict[str, Any]:
    """The form's settings, checked by the trainer's own field rules (one home for every range) and then
    against the app's caps (LIMITS: what a visitor may start); raises TrainCheckError naming every bad field."""
    from paraclip.errors import ParaclipError
    from paraclip.training.config import coerce_value
    from paraclip.training.losses import resolve_preset

    form = {"steps": steps, "batch_size": batch_size, "lr": lr, "val_split": val_split or 0,
            "loss_preset": loss_preset, "loss_weights": (loss_weights or "").strip() or None}
    values: dict[str, Any] = {}
    problems = []
    for name, raw in form.items():
        if isinstance(raw, float) and name in ("steps", "batch_size") and raw.is_integer():
            raw = int(raw)  # gr.Number hands integers over as floats
        try:
            values[name] = coerce_value(name, raw)
        except ParaclipError as exc:
            # the trainer's message without its help suffix (the form says what each field is)
            problems.append(str(exc).split(f". ({name}:")[0].split(". Expected:")[0].rstrip("."))
            continue
        if name in LIMITS:
            lo, hi = LIMITS[name]
            if not lo <= values[name] <= hi:
                problems.append(f"{name} must be between {lo:g} and {hi:g} in the app (got {values[name]:g})")
    if not problems:
        try:
            resolve_preset(values["loss_preset"], values["loss_weights"])
        except ParaclipError as exc:
            problems.append(str(exc))
    if problems:
        raise TrainCheckError("❌ Check the training settings: " + "; ".join(p.rstrip(".") for p in problems) + ".")
    return values


def check_budget(settings: dict[str, Any], max_samples: int | None) -> None:
    """Public mode: a job's compute, steps x batch size, within the owner's budget
    (``PARACLIP_APP_MAX_TRAIN_SAMPLES``)."""
    if max_samples is None:
        return
    work = settings["steps"] * settings["batch_size"]
    if work > max_samples:
        raise TrainCheckError(f"❌ steps × batch size = {settings['steps']} × {settings['batch_size']} = {work:,} is "
                              f"over this app's budget of {max_samples:,} per job; lower the steps or the batch size "
                              f"(e.g. {max(1, max_samples // settings['batch_size'])} steps at this batch size).")


def scan_data(path: str, text_fields: list[str]) -> DataSummary:
    """The records of a paraphrase JSONL (:func:`paraclip.training.preflight.scan_records`), refused with
    what to do when the file is gone, is not JSONL, or has nothing to train on."""
    try:
        summary = scan_records(path, text_fields)
    except (FileNotFoundError, IsADirectoryError):
        raise TrainCheckError("The training data file is not there any more: paraphrase again or upload the "
                              "JSONL.") from None
    if summary.bad_line is not None:
        raise TrainCheckError(f"Line {summary.bad_line} of the training data is not a JSON record; upload the JSONL "
                              f"written by the Paraphrase tab or `paraclip paraphrase`.")
    if summary.usable == 0:
        why = f" Here: {summary.unusable_text()}." if summary.unusable else ""
        raise TrainCheckError(f"None of the {summary.lines} records can be trained on (each needs status ok, the "
                              f"texts {', '.join(text_fields)}, and not rejected in review).{why} Paraphrase again, "
                              f"or use the example data.")
    return summary


def plan_training(data: str, image_spec: str | None, images_label: str, settings: dict[str, Any], loss_preset: str,
                  folder: Path) -> TrainPlan:
    """Check data and images for ``loss_preset``; the plan to start, or TrainCheckError saying what to do."""
    from paraclip.training.losses import resolve_preset

    preset = resolve_preset(loss_preset)
    summary = scan_data(data, preset.text_fields)
    plan = TrainPlan(data=data)
    heldout = settings.get("val_split", 0) > 0
    if preset.uses_image:
        if summary.without_id:
            raise TrainCheckError(
                f"❌ {summary.without_id} of the {summary.usable} usable records have no image id (e.g. line "
                f"{summary.first_missing_id_line}: captions pasted one per line carry none), but the loss preset "
                f"“{loss_preset}” includes L1, which pairs each paraphrase with its image. {OFFER}")
        images = images_found(image_spec, summary.ids)
        found, described = images.found, images.source
        if not images.readable:
            raise TrainCheckError(f"❌ No images: pick a gallery or an image folder under “Images”, or upload the "
                                  f"images. {OFFER}")
        if found == 0:
            example = next(iter(sorted(summary.ids)))
            raise TrainCheckError(f"❌ None of the {len(summary.ids)} image ids of the data (e.g. “{example}”) has an "
                                  f"image in {images_label} ({described}). {OFFER}")
        if found < len(summary.ids):
            plan.notes.append(f"{len(summary.ids) - found} of {len(summary.ids)} images are missing in "
                              f"{images_label}; their records are skipped")
        usable = found
    else:
        usable = summary.usable
        if heldout:
            plan.updates.update(validation=[], validate_every=0)
            plan.notes.append("no held-out validation (its R@1 and AO@10 need images)")
        if summary.without_id:
            plan.data = str(with_standin_ids(data, folder))
            plan.notes.append(f"{summary.without_id} records without image ids get stand-in ids (the text-only "
                              f"losses never look at an image)")
        plan.updates["images"] = None
    train_share = 1 - settings.get("val_split", 0) if heldout and preset.uses_image else 1
    if settings["batch_size"] > max(1, int(usable * train_share)):
        raise TrainCheckError(f"❌ The batch size {settings['batch_size']} is larger than the "
                              f"{int(usable * train_share)} usable training records: lower it (in-batch negatives "
                              f"need a batch of at least 2) or add data.")
    return plan
