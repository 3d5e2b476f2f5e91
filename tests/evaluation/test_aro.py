"""VG-Relation / VG-Attribution on an ARO-format fixture written here (ARO's JSON fields)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from paraclip.errors import DataError
from paraclip.evaluation.aro import (
    ARO_SYMMETRIC_RELATIONS,
    AROEvaluator,
    AROExample,
    read_aro_annotations,
    vg_attribution,
    vg_relation,
)
from paraclip.features import FeatureCache


def _two_colour_image(path, left, right):
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :20] = left
    arr[:, 20:] = right
    Image.fromarray(arr).save(path)


RED, BLUE, GREEN = (230, 20, 20), (20, 40, 230), (20, 200, 40)
LEFT, RIGHT = (0, 0, 20, 20), (20, 0, 20, 20)


def _record(image, box, true, false, **extra):
    x, y, w, h = box
    return {"image_id": image.split(".")[0], "image_path": image, "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h,
            "true_caption": true, "false_caption": false, **extra}


@pytest.fixture
def aro_root(tmp_path):
    """ARO's layout: images/ plus visual_genome_relation.json and visual_genome_attribution.json."""
    images = tmp_path / "images"
    images.mkdir()
    _two_colour_image(images / "rb.jpg", RED, BLUE)  # red left, blue right
    _two_colour_image(images / "gb.jpg", GREEN, BLUE)
    # With the colour encoder, a crop is "correct" when the true caption names the crop's colour.
    relation = (
        # "on": 2 of 3 correct
        [_record("rb.jpg", LEFT, "the red one", "the blue one", relation_name="on"),
         _record("rb.jpg", RIGHT, "the blue one", "the red one", relation_name="on"),
         _record("gb.jpg", LEFT, "the blue one", "the green one", relation_name="on")]
        # "riding": 1 of 1 correct
        + [_record("gb.jpg", LEFT, "the green one", "the blue one", relation_name="riding")]
        # "next to" is in ARO's symmetric list: 0 of 2 correct, but left out of the macro average
        + [_record("rb.jpg", LEFT, "the blue one", "the red one", relation_name="next to")] * 2
    )
    (tmp_path / "visual_genome_relation.json").write_text(json.dumps(relation))
    attribution = (
        # "red_blue": 25 examples (kept), 20 correct
        [_record("rb.jpg", LEFT, "a red thing", "a blue thing", attributes=["red", "blue"])] * 20
        + [_record("rb.jpg", RIGHT, "a red thing", "a blue thing", attributes=["red", "blue"])] * 5
        # "green_blue": 3 examples, all correct, but fewer than 25 -> left out of the macro average
        + [_record("gb.jpg", LEFT, "a green thing", "a blue thing", attributes=["green", "blue"])] * 3
    )
    (tmp_path / "visual_genome_attribution.json").write_text(json.dumps(attribution))
    return tmp_path


def test_vg_relation_crops_and_macro_average(aro_root, colour_encoder, tmp_path):
    assert "next to" in ARO_SYMMETRIC_RELATIONS and "on" not in ARO_SYMMETRIC_RELATIONS
    ev = vg_relation(aro_root, feature_cache=FeatureCache(tmp_path / "c", "colour"))
    result = ev.evaluate(colour_encoder)
    # macro over the non-symmetric relations: mean(2/3, 1/1); micro over all 6 examples: 3/6
    assert result.metrics["macro_accuracy"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert result.metrics["accuracy"] == pytest.approx(50.0)
    assert result.main_metric == "macro_accuracy" and result.n == 6
    assert result.details["groups"] == ["next to", "on", "riding"] and result.details["eligible_groups"] == 2


def test_vg_attribution_keeps_pairs_with_25_examples(aro_root, colour_encoder, tmp_path):
    ev = vg_attribution(aro_root, feature_cache=FeatureCache(tmp_path / "c", "colour"))
    m = ev(colour_encoder)
    assert m["macro_accuracy"] == pytest.approx(100 * 20 / 25)  # only red_blue has >= 25 examples
    assert m["accuracy"] == pytest.approx(100 * 23 / 28)


def test_without_the_crop_the_answer_changes(colour_encoder, aro_root, tmp_path):
    whole = [AROExample(str(aro_root / "images" / "rb.jpg"), "red", "blue", "g")]
    cropped = [AROExample(str(aro_root / "images" / "rb.jpg"), "red", "blue", "g", bbox=LEFT)]
    cache = FeatureCache(tmp_path / "c", "colour")
    assert AROEvaluator(cropped, feature_cache=cache)(colour_encoder)["accuracy"] == 100.0
    swapped = [AROExample(str(aro_root / "images" / "rb.jpg"), "blue", "red", "g", bbox=LEFT)]
    assert AROEvaluator(swapped, feature_cache=cache)(colour_encoder)["accuracy"] == 0.0
    # no box: the whole image is encoded (a different embedding from the crop's)
    assert AROEvaluator(whole, feature_cache=cache).item_scores(colour_encoder)["correct"].shape == (1,)
    assert len(cache) == 2


def test_real_model_runs_and_missing_images_are_reported(aro_root, tiny_encoder, tmp_path):
    records = json.loads((aro_root / "visual_genome_relation.json").read_text())
    records.append(_record("gone.jpg", LEFT, "x", "y", relation_name="on"))
    (aro_root / "visual_genome_relation.json").write_text(json.dumps(records))
    ev = vg_relation(aro_root, feature_cache=FeatureCache(tmp_path / "c", "tiny"))
    result = ev.evaluate(tiny_encoder)
    assert result.n == 6 and result.details["n_problems"] == 1
    # the missing image is left out, not counted wrong; the macro average is over "on" (3 kept) and "riding" (1),
    # without the symmetric "next to"
    items = {k: np.asarray(v) for k, v in result.details["items"].items()}
    groups = result.details["groups"]
    per_group = [items["correct"][items["group"] == groups.index(g)] for g in ("on", "riding")]
    assert [len(correct) for correct in per_group] == [3, 1]
    assert result.metrics["macro_accuracy"] == pytest.approx(100 * np.mean([c.mean() for c in per_group]))
    assert result.metrics["accuracy"] == pytest.approx(100 * items["correct"].mean())
    # bootstrap-style resampling keeps the same groups eligible
    assert set(ev.metrics(items, np.zeros(6, dtype=int))) == {"macro_accuracy", "accuracy"}


def test_annotation_errors_are_clear(tmp_path):
    with pytest.raises(DataError, match="visual_genome_relation.json: ARO annotation file not found"):
        read_aro_annotations("vg-relation", tmp_path)
    (tmp_path / "visual_genome_attribution.json").write_text(json.dumps(
        [_record("a.jpg", LEFT, "t", "f", attributes=["red", "blue"]),
         {"image_path": "a.jpg", "bbox_x": 0, "bbox_y": 0, "bbox_w": 1, "bbox_h": 1, "true_caption": "t",
          "false_caption": "f"}]))
    with pytest.raises(DataError, match=r"record 1 \(0-based\) lacks field 'attributes'"):
        read_aro_annotations("vg-attribution", tmp_path)
    with pytest.raises(DataError, match="no group has at least 25"):
        AROEvaluator([AROExample("a.jpg", "t", "f", "g")], min_group_size=25)


def test_box_past_the_border_is_padded_like_aros_pil_crop(aro_root):
    """ARO crops with PIL's ``Image.crop((x, y, x + w, y + h))``: whole pixels, black past the border."""
    from paraclip.evaluation.aro import crop_loader

    path = str(aro_root / "images" / "rb.jpg")  # 40 x 20: red left half, blue right half
    example = AROExample(path, "t", "f", "g", bbox=(30.4, -5.2, 20.0, 20.0))  # 10 px past the right, 5 above
    crop = np.asarray(crop_loader([example])(example.crop_id))
    assert crop.shape == (20, 20, 3)  # the box's size, not clipped to 10 x 15
    assert (crop[:5] == 0).all() and (crop[:, 10:] == 0).all()  # padding: rows above, columns past the border
    inside = crop[5:, :10].reshape(-1, 3).mean(axis=0)
    assert inside[2] > 150 and inside[0] < 80  # the blue half of the image, where the box overlaps it


def test_a_box_empty_after_rounding_is_a_clear_problem(aro_root, colour_encoder, tmp_path):
    path = str(aro_root / "images" / "rb.jpg")
    good = AROExample(path, "red", "blue", "g", bbox=LEFT)
    empty = AROExample(path, "red", "blue", "g", bbox=(3.0, 3.0, 0.2, 5.0))
    ev = AROEvaluator([good, empty], feature_cache=FeatureCache(tmp_path / "c", "colour"))
    result = ev.evaluate(colour_encoder)
    assert result.n == 1 and "empty" in next(iter(result.details["problems"].values()))
