"""Ready-made mini-world data: pairs for a gallery (known, a run's, made once) and example training data."""

from __future__ import annotations

import json
from pathlib import Path

from paraclip.data.galleries import folder_gallery
from paraclip.evaluation.paraphrased import load_pairs
from paraclip.miniworld.config import MiniWorldConfig
from paraclip.miniworld.examples import (PAIRS_NAME, gallery_image_ids, gallery_pairs, pairs_match, run_pairs,
                                         training_examples)
from paraclip.miniworld.gallery import render_gallery
from paraclip.miniworld.runner import Run
from paraclip.paraphrase.records import ParaphraseRecord, trainable_problem


def test_pairs_are_made_once_beside_a_rendered_gallery_and_keep_its_captions(tmp_path):
    folder = render_gallery(tmp_path / "gallery", 12)
    gallery = folder_gallery(folder)
    assert gallery_image_ids(folder) == gallery.ids
    path = gallery_pairs(folder)
    assert path == tmp_path / "gallery-pairs" / PAIRS_NAME
    pairs = load_pairs(path)
    assert len(pairs) > 0 and set(pairs.image_ids) <= set(gallery.ids)
    captions = dict(gallery.caption_rows(first_only=True))
    assert all(captions[i] == o for i, o in zip(pairs.image_ids, pairs.originals))
    assert all(o != p for o, p in zip(pairs.originals, pairs.paraphrases))
    stamp = path.stat().st_mtime_ns
    assert gallery_pairs(folder) == path and path.stat().st_mtime_ns == stamp  # made once


def test_known_pairs_come_first_and_pairs_of_other_images_are_not_used(tmp_path):
    folder = render_gallery(tmp_path / "gallery", 8)
    ids = gallery_image_ids(folder)
    known = tmp_path / "known.jsonl"
    known.write_text(json.dumps({"image_id": ids[0], "original": "a", "paraphrase": "b"}) + "\n", encoding="utf-8")
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"image_id": "not-in-the-gallery", "original": "a", "paraphrase": "b"}) + "\n",
                     encoding="utf-8")
    assert pairs_match(known, ids) and not pairs_match(other, ids) and not pairs_match(tmp_path / "none", ids)
    assert gallery_pairs(folder, known=[other, known]) == known


def test_a_mini_world_runs_gallery_uses_the_runs_pairs(tmp_path):
    run = Run(MiniWorldConfig(), tmp_path / "run")
    render_gallery(run.gallery_dir, 6)
    assert run_pairs(run.gallery_dir) == run.evalsets / PAIRS_NAME
    assert run_pairs(tmp_path / "run" / "world") is None
    ids = gallery_image_ids(run.gallery_dir)
    run.evalsets.mkdir(parents=True)
    (run.evalsets / PAIRS_NAME).write_text(
        "".join(json.dumps({"image_id": i, "original": "a", "paraphrase": "b"}) + "\n" for i in ids), encoding="utf-8")
    assert gallery_pairs(run.gallery_dir) == run.evalsets / PAIRS_NAME


def test_galleries_that_are_not_mini_world_scenes_get_no_pairs(tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "dog.png")
    (folder / "captions.csv").write_text("file,caption\ndog.png,a dog\n", encoding="utf-8")
    assert gallery_image_ids(folder) == ["dog.png"]
    assert gallery_pairs(folder) is None and not (tmp_path / "photos-pairs" / PAIRS_NAME).exists()
    assert gallery_image_ids(tmp_path / "nothing-here") == [] and gallery_pairs(tmp_path / "nothing-here") is None


def test_training_examples_are_records_with_images_and_avoid_the_gallerys_scenes(tmp_path):
    gallery = folder_gallery(render_gallery(tmp_path / "gallery", 16))
    avoid = {c for _, c in gallery.caption_rows()}
    data, images = training_examples(tmp_path / "examples", 30, avoid_test=16, avoid_captions=avoid)
    rows = [json.loads(line) for line in open(data, encoding="utf-8")]
    assert len(rows) == 30 and [r["index"] for r in rows] == list(range(30))
    assert all(trainable_problem(r) is None for r in rows)
    assert [ParaphraseRecord.from_json(r).to_json() for r in rows] == rows  # the record's own JSON
    assert all((Path(images) / f"{r['image_id']}.png").is_file() for r in rows)
    assert not avoid & {r["caption"] for r in rows}
    stamp = Path(data).stat().st_mtime_ns
    assert training_examples(tmp_path / "examples", 30) == (data, images) and Path(data).stat().st_mtime_ns == stamp
