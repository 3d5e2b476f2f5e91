import numpy as np
import pytest
import torch

from paraclip.errors import DataError
from paraclip.training.data import BatchSchedule, ImageIndex, read_records
from paraclip.training.distributed import DistInfo
from paraclip.training.images_source import (
    CachedFeatures,
    NoImages,
    PixelsInMemory,
    PixelsPerStep,
    StepPlan,
    prepare_images,
)
from paraclip.training.run_control import Console

from .helpers import bomb_png, tiny_config

FIELDS = ["caption", "paraphrase_1", "paraphrase_2"]


def _prepare(world, tmp_path, tiny_encoder, **overrides):
    cfg = tiny_config(world, tmp_path / "run", **overrides)
    records, report = read_records(cfg.data, FIELDS)
    prepared = prepare_images(cfg, tiny_encoder, DistInfo(), Console(False), records, [], report, None, needed=True)
    plan = StepPlan(BatchSchedule(len(prepared.records), cfg.batch_size, cfg.seed), 4, slice(0, cfg.batch_size))
    return prepared, plan, report


def test_the_source_follows_the_settings(world, tmp_path, tiny_encoder):
    frozen, _, _ = _prepare(world, tmp_path, tiny_encoder)
    in_memory, _, _ = _prepare(world, tmp_path, tiny_encoder, freeze_image=False)
    per_step, _, _ = _prepare(world, tmp_path, tiny_encoder, freeze_image=False, image_memory_gb=0.0)
    assert isinstance(frozen.source, CachedFeatures)
    assert isinstance(in_memory.source, PixelsInMemory)
    assert isinstance(per_step.source, PixelsPerStep)
    assert NoImages().for_step(0, None) == (None, None)


def test_cached_features_are_the_encoders_features_of_the_global_batch(world, tmp_path, tiny_encoder):
    prepared, plan, _ = _prepare(world, tmp_path, tiny_encoder)
    images = prepared.source.for_step(1, plan)
    assert images.pixels is None
    ids = [prepared.records[i].image_id for i in plan.schedule.indices(1)]
    index = ImageIndex.from_spec(world["images"])
    expected = tiny_encoder.encode_image([index.load(i) for i in ids], progress=False)
    torch.testing.assert_close(images.features, expected, atol=2e-3, rtol=0)  # cached as fp16
    assert torch.allclose(images.features.norm(dim=-1), torch.ones(len(ids)))


def test_pixels_in_memory_and_per_step_are_the_same_pixels(world, tmp_path, tiny_encoder):
    in_memory, plan, _ = _prepare(world, tmp_path, tiny_encoder, freeze_image=False)
    per_step, _, _ = _prepare(world, tmp_path, tiny_encoder, freeze_image=False, image_memory_gb=0.0)
    for step in range(3):
        a, b = in_memory.source.for_step(step, plan), per_step.source.for_step(step, plan)
        assert a.features is None and a.pixels.shape == b.pixels.shape
        torch.testing.assert_close(a.pixels, b.pixels, atol=1e-5, rtol=0)
    rows = torch.tensor([0, 3])
    torch.testing.assert_close(in_memory.source.encode(rows, tiny_encoder), per_step.source.encode(rows, tiny_encoder),
                               atol=1e-5, rtol=0)


def test_an_unreadable_image_is_skipped_and_counted_in_every_source(world, tmp_path, tiny_encoder):
    (world["images"] / "img0002.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="img0002.*skip_missing_images"):
        _prepare(world, tmp_path, tiny_encoder, freeze_image=False)
    prepared, _, report = _prepare(world, tmp_path, tiny_encoder, freeze_image=False, skip_missing_images=True)
    assert "img0002" not in {r.image_id for r in prepared.records}
    assert report.skipped == {"image unreadable": 1} and prepared.n_images == 31
    assert prepared.source.store.pixels.shape[0] == 31  # the pixel rows follow the kept images
    assert np.all(prepared.source.image_rows < 31)


def _other_images_same_ids(world, root):
    """A second world with the same image ids (and records) but other images: each one inverted."""
    from PIL import Image, ImageOps

    other = {"images": root / "images", "data": world["data"], "root": root}
    other["images"].mkdir(parents=True)
    for png in sorted(world["images"].glob("*.png")):
        ImageOps.invert(Image.open(png).convert("RGB")).save(other["images"] / png.name)
    return other


def _expected(world, prepared, encoder):
    index = ImageIndex.from_spec(world["images"])
    ids = [r.image_id for r in prepared.records]
    return torch.nn.functional.normalize(encoder.encode_image([index.load(i) for i in ids], progress=False), dim=-1)


def _features(prepared):
    return prepared.source.encode(torch.as_tensor(prepared.source.image_rows), None)


def test_a_visitor_with_the_same_ids_and_other_images_is_not_served_the_first_ones_features(world, tmp_path,
                                                                                            tiny_encoder):
    # the app's case: everyone shares the default cache, and example ids are predictable
    first, _, _ = _prepare(world, tmp_path / "first", tiny_encoder, features_from=None)
    visitor = _other_images_same_ids(world, tmp_path / "visitor")
    second, _, _ = _prepare(visitor, tmp_path / "second", tiny_encoder, features_from=None)
    torch.testing.assert_close(_features(first), _expected(world, first, tiny_encoder), atol=3e-3, rtol=0)
    torch.testing.assert_close(_features(second), _expected(visitor, second, tiny_encoder), atol=3e-3, rtol=0)
    assert not torch.allclose(_features(first), _features(second), atol=1e-2)
    # and a run given no images is never served features by id from the shared cache
    with pytest.raises(DataError, match="img0000"):
        _prepare(world, tmp_path / "third", tiny_encoder, features_from=None, images=None)


def test_a_run_without_images_uses_the_ids_recorded_in_its_own_features_folder(world, tmp_path, tiny_encoder):
    with_images, _, _ = _prepare(world, tmp_path / "a", tiny_encoder)
    from_features, _, _ = _prepare(world, tmp_path / "b", tiny_encoder, images=None)
    torch.testing.assert_close(_features(from_features), _features(with_images), atol=0, rtol=0)
    # the same ids recorded with other images in that folder: ambiguous, so not used
    visitor = _other_images_same_ids(world, tmp_path / "visitor")
    _prepare(visitor, tmp_path / "c", tiny_encoder, features_from=str(world["root"] / "features"))
    with pytest.raises(DataError, match="img0000"):
        _prepare(world, tmp_path / "d", tiny_encoder, images=None)


def test_a_damaged_feature_shard_is_rebuilt_for_training(world, tmp_path, tiny_encoder):
    from paraclip.files import DamagedCacheWarning

    fresh, _, _ = _prepare(world, tmp_path / "a", tiny_encoder, features_from=str(tmp_path / "fresh"))
    _prepare(world, tmp_path / "b", tiny_encoder)
    for npy in (world["root"] / "features").rglob("*.npy"):
        npy.write_bytes(npy.read_bytes()[:100])
    with pytest.warns(DamagedCacheWarning, match="rebuilding"):
        rebuilt, _, _ = _prepare(world, tmp_path / "c", tiny_encoder)
    torch.testing.assert_close(_features(rebuilt), _features(fresh), atol=0, rtol=0)


def _truncated_png(path) -> bytes:
    """The image at ``path`` cut in the middle of its pixel data (a copy interrupted half-way)."""
    data = path.read_bytes()
    return data[: len(data) // 2]


def test_per_step_images_are_all_decoded_before_training_and_bad_ones_refused_or_skipped(world, tmp_path,
                                                                                         tiny_encoder):
    images = world["images"]
    (images / "img0003.png").write_bytes(_truncated_png(images / "img0003.png"))
    (images / "img0005.png").write_bytes(bomb_png())
    (images / "img0007.png").write_bytes(b"not an image at all")
    per_step = dict(freeze_image=False, image_memory_gb=0.0)
    with pytest.raises(DataError, match=r"^3 images could not be read .*img0003.*unreadable image.*img0005.*"
                                        r"decompression bomb.*img0007.*skip_missing_images") as info:
        _prepare(world, tmp_path, tiny_encoder, **per_step)
    assert "Traceback" not in str(info.value)
    prepared, plan, report = _prepare(world, tmp_path, tiny_encoder, skip_missing_images=True, **per_step)
    assert isinstance(prepared.source, PixelsPerStep)
    assert report.skipped == {"image unreadable": 3} and prepared.n_images == 29
    assert {"img0003", "img0005", "img0007"}.isdisjoint(r.image_id for r in prepared.records)
    steps = len(prepared.records) // plan.schedule.batch_size
    for step in range(steps):  # a whole epoch decodes: every bad image is out of the schedule
        assert prepared.source.for_step(step, plan).pixels.shape[0] == plan.schedule.batch_size


@pytest.mark.parametrize("workers", [0, 1])
def test_an_image_damaged_after_the_check_stops_at_its_step_with_a_plain_error(world, tmp_path, tiny_encoder,
                                                                                workers):
    prepared, plan, _ = _prepare(world, tmp_path, tiny_encoder, freeze_image=False, image_memory_gb=0.0,
                                 workers=workers)
    first = prepared.records[plan.schedule.indices(0)[0]].image_id
    path = world["images"] / f"{first}.png"
    path.write_bytes(_truncated_png(path))
    with pytest.raises(DataError, match=rf"Image '{first}' could not be read at step 1 .*resumes from the last "
                                        rf"checkpoint") as info:
        prepared.source.for_step(0, plan)
    assert "Traceback" not in str(info.value) and "worker" not in str(info.value)
