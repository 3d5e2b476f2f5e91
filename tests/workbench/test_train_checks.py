"""Checks before a training job starts: settings, records without image ids, missing images."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from workbench.train_checks import TrainCheckError, check_settings, plan_training

GOOD = dict(steps=10, batch_size=2, lr=1e-4, val_split=0.0, loss_preset="paraclip", loss_weights="")


def write_records(path, ids, status="ok"):
    with open(path, "w", encoding="utf-8") as f:
        for n, image_id in enumerate(ids):
            f.write(json.dumps({"index": n, "image_id": image_id, "caption": f"a red circle number {n}",
                                "paraphrase_1": f"one crimson disc {n}", "paraphrase_2": f"a ruby round shape {n}",
                                "status": status}) + "\n")
    return str(path)


@pytest.mark.parametrize("field, value, match", [
    ("steps", 0, r"steps must be >= 1 \(got 0\)"),
    ("steps", 50_000, "steps must be between 1 and 20000 in the app"),
    ("steps", 2.5, r"steps must be an integer >= 1 \(got 2.5\)"),
    ("batch_size", 1, r"batch_size must be >= 2 \(got 1\)"),
    ("lr", 0, "lr must be > 0"),
    ("lr", "fast", r"lr must be a number > 0 \(got 'fast'\)"),
    ("val_split", 0.9, "val_split must be between 0 and 0.5 in the app"),
    ("loss_preset", "nope", r"loss_preset must be one of paraclip, .* \(got 'nope'\)"),
    ("loss_preset", "paraclipp", "Did you mean 'paraclip'"),
    ("loss_weights", "l1=-1", "loss_weights must be >= 0"),
    ("loss_weights", "l1", r"loss_weights must be a mapping of names to numbers >= 0 \(got 'l1'\)"),
])
def test_settings_out_of_range_are_named(field, value, match):
    with pytest.raises(TrainCheckError, match=match):
        check_settings(**{**GOOD, field: value})


def test_records_without_image_ids_offer_the_text_only_losses(tmp_path):
    data = write_records(tmp_path / "pasted.jsonl", [None, None, None])
    settings = check_settings(**GOOD)
    with pytest.raises(TrainCheckError) as err:
        plan_training(data, None, "the image source", settings, "paraclip", tmp_path)
    message = str(err.value)
    assert "3 of the 3 usable records have no image id" in message and "no-l1" in message
    assert "Use the example data" in message and "upload the images" in message
    plan = plan_training(data, None, "the image source", {**settings, "val_split": 0.2}, "no-l1", tmp_path / "s")
    rows = [json.loads(line) for line in open(plan.data, encoding="utf-8")]
    assert [r["image_id"] for r in rows] == ["text-1", "text-2", "text-3"]
    assert plan.updates == {"validation": [], "validate_every": 0, "images": None}
    assert any("stand-in ids" in n for n in plan.notes)


def test_image_ids_must_have_images_in_the_chosen_source(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (8, 8)).save(images / f"{name}.png")
    settings = check_settings(**GOOD)
    data = write_records(tmp_path / "d.jsonl", ["x", "y"])
    with pytest.raises(TrainCheckError, match="None of the 2 image ids of the data .* has an image in “imgs”"):
        plan_training(data, str(images), "“imgs”", settings, "paraclip", tmp_path)
    with pytest.raises(TrainCheckError, match="No images: pick a gallery"):
        plan_training(data, None, "“imgs”", settings, "paraclip", tmp_path)
    data = write_records(tmp_path / "d2.jsonl", ["a", "b", "c"])
    plan = plan_training(data, str(images), "“imgs”", settings, "paraclip", tmp_path)
    assert plan.data == data and "1 of 3 images are missing" in plan.notes[0]
    with pytest.raises(TrainCheckError, match="batch size 8 is larger than the 2 usable"):
        plan_training(data, str(images), "“imgs”", {**settings, "batch_size": 8}, "paraclip", tmp_path)


def test_unusable_data_is_refused_up_front(tmp_path):
    data = write_records(tmp_path / "failed.jsonl", ["a", "b"], status="failed")
    with pytest.raises(TrainCheckError, match="None of the 2 records can be trained on") as err:
        plan_training(data, None, "x", check_settings(**GOOD), "no-l1", tmp_path)
    assert "Here: 2 × status 'failed'." in str(err.value)
    with pytest.raises(TrainCheckError, match="The training data file is not there any more"):
        plan_training(str(tmp_path / "gone.jsonl"), None, "x", check_settings(**GOOD), "no-l1", tmp_path)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"index": 0}\nnot json\n', encoding="utf-8")
    with pytest.raises(TrainCheckError, match="Line 2 of the training data is not a JSON record"):
        plan_training(str(broken), None, "x", check_settings(**GOOD), "no-l1", tmp_path)
