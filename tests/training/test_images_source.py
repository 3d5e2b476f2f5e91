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

from .helpers import tiny_config

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
