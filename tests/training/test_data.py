import json
import tarfile

import numpy as np
import pytest
import torch

from paraclip.errors import DataError
from paraclip.training.data import (
    BatchSchedule, DataReport, ImageIndex, PixelStore, check_image_ids, read_records, split_heldout, tokenize,
)

FIELDS = ["caption", "paraphrase_1", "paraphrase_2"]


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _rec(i, **kw):
    return {"image_id": f"img{i}", "caption": f"c{i}", "paraphrase_1": f"p{i}", "paraphrase_2": f"q{i}",
            "status": "ok", **kw}


def test_failed_and_incomplete_records_are_skipped_and_counted(tmp_path):
    path = _write(tmp_path / "d.jsonl", [_rec(0), _rec(1, status="failed"), _rec(2, paraphrase_2=""),
                                         _rec(3, review="rejected"), "", _rec(4)])
    records, report = read_records(path, FIELDS)
    assert [r.image_id for r in records] == ["img0", "img4"]
    assert report.lines == 5 and report.kept == 2
    assert report.skipped == {"status 'failed'": 1, "no paraphrase_2": 1, "rejected in review": 1}
    assert report.examples["status 'failed'"] == [2]
    assert "3 " not in report.summary() or "skipped" in report.summary()


def test_caption_only_data_is_enough_for_the_clip_preset(tmp_path):
    path = _write(tmp_path / "d.jsonl", [{"image_id": 7, "caption": "a dog"}])
    records, _ = read_records(path, ["caption"])
    assert records[0].image_id == "7" and records[0].paraphrase_1 == ""
    with pytest.raises(DataError, match="No usable training records.*1 no paraphrase_1"):
        read_records(path, FIELDS)


def test_malformed_lines_name_file_and_line(tmp_path):
    path = _write(tmp_path / "d.jsonl", [_rec(0), "{not json"])
    with pytest.raises(DataError, match=r"d.jsonl:2: malformed JSON"):
        read_records(path, FIELDS)
    path = _write(tmp_path / "e.jsonl", [_rec(0), {"caption": "no id"}])
    with pytest.raises(DataError, match=r"e.jsonl:2: field 'image_id'"):
        read_records(path, FIELDS)
    (tmp_path / "f.jsonl").write_bytes(b'{"image_id": "\xff"}\n')
    with pytest.raises(DataError, match="f.jsonl:1: not valid UTF-8"):
        read_records(tmp_path / "f.jsonl", FIELDS)


def test_empty_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="No usable training records.*has no records"):
        read_records(_write(tmp_path / "d.jsonl", [""]), FIELDS)
    with pytest.raises(DataError, match="does not exist"):
        read_records(tmp_path / "missing.jsonl", FIELDS)


def _png(path, value=128):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)
    return path


def test_image_index_from_folder_csv_jsonl_and_tar(tmp_path):
    _png(tmp_path / "imgs" / "a.png", 10)
    _png(tmp_path / "imgs" / "sub" / "b.jpg", 20)
    folder = ImageIndex.from_spec(tmp_path / "imgs")
    assert "a" in folder and "sub/b.jpg" in folder and "b" in folder
    assert folder.load("a").size == (8, 8)

    (tmp_path / "list.csv").write_text("image_id,filepath\nx1,imgs/a.png\n")
    assert ImageIndex.from_spec(tmp_path / "list.csv").load("x1").getpixel((0, 0)) == (10, 10, 10)
    (tmp_path / "list.jsonl").write_text(json.dumps({"id": "x2", "path": str(tmp_path / "imgs/a.png")}) + "\n")
    assert "x2" in ImageIndex.from_spec(tmp_path / "list.jsonl")

    with tarfile.open(tmp_path / "shard-000.tar", "w") as tar:
        tar.add(tmp_path / "imgs" / "a.png", arcname="000042.png")
    shards = ImageIndex.from_spec(tmp_path / "shard-000.tar")
    assert shards.load("000042").getpixel((0, 0)) == (10, 10, 10)

    (tmp_path / "bad.csv").write_text("name,caption\nx,y\n")
    with pytest.raises(DataError, match="image-id column"):
        ImageIndex.from_spec(tmp_path / "bad.csv")


def test_mismatched_image_ids_error_or_skip_with_report(tmp_path):
    path = _write(tmp_path / "d.jsonl", [_rec(0), _rec(1), _rec(2)])
    records, report = read_records(path, FIELDS)
    have = {"img0", "img1"}.__contains__
    with pytest.raises(DataError, match=r"1 of 3 records.*'img2' \(line 3\).*skip_missing_images"):
        check_image_ids(records, have, str(path), "folder X", False, report)
    kept = check_image_ids(records, have, str(path), "folder X", True, report)
    assert [r.image_id for r in kept] == ["img0", "img1"] and report.skipped["image missing"] == 1
    with pytest.raises(DataError, match="None of the 3 image ids"):
        check_image_ids(records, lambda i: False, str(path), "folder X", True, DataReport("x"))


def test_schedule_is_a_pure_function_of_seed_and_step():
    a, b = BatchSchedule(10, 4, seed=3), BatchSchedule(10, 4, seed=3)
    assert a.steps_per_epoch == 2
    seq = [a.indices(s).tolist() for s in range(6)]
    assert [b.indices(s).tolist() for s in reversed(range(6))] == list(reversed(seq))
    assert sorted(seq[0] + seq[1]) == sorted(set(seq[0] + seq[1]))  # no repeats within an epoch
    assert seq[0:2] != seq[2:4]  # a fresh permutation each epoch
    assert BatchSchedule(10, 4, seed=4).indices(0).tolist() != seq[0]
    np.testing.assert_array_equal(a.choices(5, 3), b.choices(5, 3))
    with pytest.raises(DataError, match="larger than the 3"):
        BatchSchedule(3, 4, seed=0)


def test_heldout_split_keeps_images_together():
    from paraclip.training.data import Record

    records = [Record(f"img{i % 10}", "c", "p", "q", i) for i in range(40)]
    train, held = split_heldout(records, 0.3, seed=0)
    assert len(train) + len(held) == 40 and held
    assert not {r.image_id for r in train} & {r.image_id for r in held}


def test_tokenize_trims_to_the_longest_text(tiny_encoder):
    tokens = tokenize(["a cat", "a very small red circle on the left"], tiny_encoder.tokenizer)
    full = tiny_encoder.tokenizer(["a very small red circle on the left"])
    assert tokens.dtype == torch.int32 and tokens.shape[1] == int((full != 0).sum())
    assert tokens[1].tolist() == full[0, :tokens.shape[1]].tolist()


def test_pixel_store_equals_the_full_preprocess(tiny_encoder, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    images = {f"i{k}": Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)) for k in range(3)}
    images["broken"] = None

    def load(image_id):
        if images[image_id] is None:
            raise OSError("truncated file")
        return images[image_id]

    store, failed = PixelStore.build(list(images), load, tiny_encoder.preprocess, threads=2)
    assert failed == ["broken"] and store.pixels.dtype == torch.uint8
    expected = torch.stack([tiny_encoder.preprocess(images[f"i{k}"]) for k in range(3)])
    torch.testing.assert_close(store.batch([0, 1, 2]), expected, atol=1e-6, rtol=0)


# cached features of a frozen tower / pixels decoded once into memory / pixels decoded per step (checked by a
# full decode before training)
@pytest.mark.parametrize("settings", [{}, {"freeze_image": False}, {"freeze_image": False, "image_memory_gb": 0.0}])
def test_a_decompression_bomb_in_the_training_images_is_skipped_and_counted(world, tmp_path, tiny_encoder, settings):
    from paraclip.training.distributed import DistInfo
    from paraclip.training.images_source import prepare_images
    from paraclip.training.run_control import Console

    from .helpers import bomb_png, tiny_config

    (world["images"] / "img0002.png").write_bytes(bomb_png())
    cfg = tiny_config(world, tmp_path / "run", skip_missing_images=True, **settings)
    records, report = read_records(cfg.data, FIELDS)
    prepared = prepare_images(cfg, tiny_encoder, DistInfo(), Console(False), records, [], report, None, needed=True)
    assert "img0002" not in {r.image_id for r in prepared.records}
    assert report.skipped == {"image unreadable": 1} and len(prepared.records) == len(records) - 1


def test_damaged_training_lines_are_named(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    path = _write(tmp_path / "d.jsonl", [_rec(0), '{"image_id": ' + deep + "}"])
    with pytest.raises(DataError, match=r"d\.jsonl:2: JSON nested too deeply"):
        read_records(path, FIELDS)
    path = _write(tmp_path / "e.jsonl", [_rec(0), _rec(1, image_id=[1, [2]])])
    with pytest.raises(DataError, match=r"e\.jsonl:2: field 'image_id' must be text or a number, found list"):
        read_records(path, FIELDS)
    path = _write(tmp_path / "f.jsonl", [_rec(0, status={"a": 1})])
    with pytest.raises(DataError, match=r"f\.jsonl:1: field 'status' must be text, found dict"):
        read_records(path, FIELDS)
    import gzip

    (tmp_path / "g.jsonl.gz").write_bytes(gzip.compress(json.dumps(_rec(0)).encode() * 100)[:-8])
    with pytest.raises(DataError, match=r"g\.jsonl\.gz:1: the gzip data ends early"):
        read_records(tmp_path / "g.jsonl.gz", FIELDS)
