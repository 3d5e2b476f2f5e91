"""Where a training step's images come from: one strategy, chosen once per run.

* :class:`CachedFeatures` — the image tower is frozen (the paper's setting, Kim et al., 2024,
  Sec. 3): features are computed once into the :class:`~paraclip.features.FeatureCache` and
  the tower never runs during training.
* :class:`PixelsInMemory` — both towers train and every image fits in ``image_memory_gb``:
  decoded once into a :class:`~paraclip.training.data.PixelStore`.
* :class:`PixelsPerStep` — both towers train on more images than fit: decoded per step by
  DataLoader workers, in the order of the :class:`~paraclip.training.data.BatchSchedule`.
* :class:`NoImages` — the loss has no image term (the text-only ablations).

The step calls ``source.for_step(step, plan)``; held-out validation calls
``source.encode(rows, encoder)``. :func:`prepare_images` joins records to images, fills the
feature cache or decodes pixels, drops (or reports) unreadable images, and picks the strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, NamedTuple

import numpy as np
import torch

from paraclip.errors import DataError
from paraclip.features import FeatureCache, default_cache_root
from paraclip.training import distributed as D
from paraclip.training.config import TrainConfig
from paraclip.training.data import (
    BatchSchedule,
    DataReport,
    ImageIndex,
    PixelStore,
    Record,
    StepPixels,
    check_image_ids,
    estimate_pixel_bytes,
)
from paraclip.training.run_control import Console

# images given in memory: a mapping or a callable image_id -> PIL image / HWC uint8 array
ImageInput = Mapping[str, object] | Callable[[str], object]
UNREADABLE = (OSError, ValueError, KeyError, SyntaxError)


class StepImages(NamedTuple):
    features: torch.Tensor | None = None  # normalised features of the GLOBAL batch (frozen tower)
    pixels: torch.Tensor | None = None  # model-ready pixels of this process's share of the batch


@dataclass(frozen=True)
class StepPlan:
    """What every source needs to find a step's images: the order, the run's length, this process's share."""

    schedule: BatchSchedule
    total_steps: int
    local: slice


class NoImages:
    def for_step(self, step: int, plan: StepPlan) -> StepImages:
        return StepImages()


class CachedFeatures:
    def __init__(self, features: torch.Tensor, image_rows: np.ndarray):
        self.features, self.image_rows = features, image_rows  # fp16 rows, re-normalised per batch

    def for_step(self, step: int, plan: StepPlan) -> StepImages:
        rows = torch.as_tensor(self.image_rows[plan.schedule.indices(step)], device=self.features.device)
        return StepImages(features=torch.nn.functional.normalize(self.features[rows].float(), dim=-1))

    def encode(self, rows: torch.Tensor, encoder) -> torch.Tensor:
        feats = self.features[rows.to(self.features.device)].float().cpu()
        return torch.nn.functional.normalize(feats, dim=-1)


class PixelsInMemory:
    def __init__(self, store: PixelStore, image_rows: np.ndarray, device: torch.device):
        self.store, self.image_rows, self.device = store, image_rows, device

    def for_step(self, step: int, plan: StepPlan) -> StepImages:
        rows = self.image_rows[plan.schedule.indices(step)[plan.local]]
        return StepImages(pixels=self.store.batch(rows).to(self.device))

    def encode(self, rows: torch.Tensor, encoder) -> torch.Tensor:
        return encoder.encode_image(list(self.store.batch(rows)), progress=False)


class PixelsPerStep:
    def __init__(self, load: Callable[[str], object], image_ids: list[str], image_rows: np.ndarray, preprocess,
                 workers: int, device: torch.device):
        self.load, self.image_ids, self.image_rows, self.preprocess = load, image_ids, image_rows, preprocess
        self.workers, self.device = workers, device
        self._batches = None  # the DataLoader's iterator, started at the first step this process runs

    def for_step(self, step: int, plan: StepPlan) -> StepImages:
        if self._batches is None:
            dataset = StepPixels(plan.schedule, self.image_rows, self.image_ids, self.load, self.preprocess,
                                 plan.local)
            loader = torch.utils.data.DataLoader(dataset, batch_size=None, sampler=range(step, plan.total_steps),
                                                 num_workers=self.workers, persistent_workers=False,
                                                 prefetch_factor=2 if self.workers else None)
            self._batches = iter(loader)
        return StepImages(pixels=next(self._batches).to(self.device))

    def encode(self, rows: torch.Tensor, encoder) -> torch.Tensor:
        return encoder.encode_image([self.load(self.image_ids[i]) for i in rows.tolist()], progress=False)


ImageSource = NoImages | CachedFeatures | PixelsInMemory | PixelsPerStep


@dataclass
class PreparedImages:
    """Records and held-out records that have readable images, and where their images come from."""

    records: list[Record]
    heldout: list[Record]
    source: ImageSource = field(default_factory=NoImages)
    n_images: int = 0
    val_image_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def image_loader(images: ImageInput | None, spec: str | None) -> tuple[Callable | None, Callable[[str], bool], str]:
    """(load(id), has(id), description) from images given in memory, else the ``images`` setting."""
    if images is not None:
        if isinstance(images, Mapping):
            return images.__getitem__, images.__contains__, "images given in memory"
        return images, (lambda _id: True), "image loader given in memory"
    if spec:
        index = ImageIndex.from_spec(spec)
        return index.load, index.__contains__, index.source
    return None, (lambda _id: False), "no image source"


def prepare_images(cfg: TrainConfig, encoder, dist: D.DistInfo, console: Console, records: list[Record],
                   heldout: list[Record], report: DataReport, images: ImageInput | None,
                   needed: bool) -> PreparedImages:
    """Check every record's image, make features (frozen tower) or pixels (trained tower) ready, pick the source.

    ``needed`` is false when neither the loss nor held-out validation looks at images."""
    if not needed:
        return PreparedImages(records, heldout)
    load, has, where = image_loader(images, cfg.images)
    cache = None
    if cfg.freeze_image:
        cache = FeatureCache.for_encoder(encoder, cfg.features_from or default_cache_root())
        cached = set(cache.ids())
        available = lambda i: i in cached or has(i)  # noqa: E731
        where = f"{where} or the feature cache {cache.dir}"
    else:
        available = has
    records = check_image_ids(records, available, cfg.data, where, cfg.skip_missing_images, report)
    if heldout:
        heldout = check_image_ids(heldout, available, cfg.val_data or cfg.data, where, cfg.skip_missing_images,
                                  DataReport(str(cfg.val_data or cfg.data)))
    ids = list(dict.fromkeys([r.image_id for r in records] + [r.image_id for r in heldout]))
    store = None
    if cache is not None:
        bad = _fill_feature_cache(cfg, encoder, cache, ids, load, console) if dist.is_main else []
        bad = D.broadcast_object(bad, dist)
    else:
        store, bad = _decode_pixels(cfg, encoder, ids, load, console)
    if bad:
        bad_ids = {i for i, _ in bad}
        records, heldout = _drop_unreadable(cfg, bad, records, heldout, report)
        if store is not None:
            store.pixels = store.pixels[[k for k, i in enumerate(ids) if i not in bad_ids]]
        ids = [i for i in ids if i not in bad_ids]
    row_of = {image_id: i for i, image_id in enumerate(ids)}
    rows = np.array([row_of[r.image_id] for r in records], dtype=np.int64)
    val_rows = np.array([row_of[r.image_id] for r in heldout], dtype=np.int64)
    if cache is not None:
        # re-open: other processes' views of the cache predate the shards the main process wrote
        feats = FeatureCache(cache.dir.parent, cache.dir.name).get(ids)
        source: ImageSource = CachedFeatures(feats.to(dist.device, torch.float16), rows)
    elif store is not None:
        source = PixelsInMemory(store, rows, dist.device)
    else:
        source = PixelsPerStep(load, ids, rows, encoder.preprocess, cfg.workers, dist.device)
    return PreparedImages(records, heldout, source, len(ids), val_rows)


def _fill_feature_cache(cfg: TrainConfig, encoder, cache: FeatureCache, ids: list[str], load,
                        console: Console) -> list[tuple[str, str]]:
    """Encode images not yet cached with the frozen tower; returns unreadable (id, reason) pairs."""
    todo = cache.missing(ids)
    if not todo:
        console.say(f"image features: all {len(ids)} cached in {cache.dir}")
        return []
    if load is None:
        raise DataError(f"{len(todo)} images have no cached features in {cache.dir} (e.g. {todo[:3]}) and no "
                        f"`images` source is set. Set `images` to the image folder / CSV / JSONL.")
    console.say(f"image features: encoding {len(todo)} images with the frozen image tower into {cache.dir}")
    bad: list[tuple[str, str]] = []
    bar = console.progress_bar(len(todo), "image features", "img")
    bs = cfg.feature_batch_size
    for start in range(0, len(todo), bs):
        chunk, images = [], []
        for image_id in todo[start:start + bs]:
            try:
                images.append(load(image_id))
                chunk.append(image_id)
            except UNREADABLE as exc:
                bad.append((image_id, f"{type(exc).__name__}: {exc}"))
        if chunk:
            cache.put(chunk, encoder.encode_image(images, progress=False))
        if bar is not None:
            bar.update(len(todo[start:start + bs]))
    if bar is not None:
        bar.close()
    return bad


def _decode_pixels(cfg: TrainConfig, encoder, ids: list[str], load,
                   console: Console) -> tuple[PixelStore | None, list[tuple[str, str]]]:
    """All pixels decoded into memory when they fit in ``image_memory_gb`` (else None: per-step decoding)."""
    if load is None:
        raise DataError("Training the image tower (freeze_image: false) needs the images: set `images`.")
    size = getattr(encoder.model.visual, "image_size", 224)
    need = estimate_pixel_bytes(len(ids), size)
    if need > cfg.image_memory_gb * 2 ** 30:
        console.say(f"{len(ids)} images need {need / 2 ** 30:.1f} GB > image_memory_gb; decoding per step "
                    f"with {cfg.workers} workers")
        return None, []
    console.say(f"decoding {len(ids)} images into memory ({need / 2 ** 20:.0f} MB)")
    bad: list[tuple[str, str]] = []
    store = PixelStore.build(ids, load, encoder.preprocess, threads=4,
                             on_error=lambda i, e: bad.append((i, f"{type(e).__name__}: {e}")))[0]
    return store, bad


def _drop_unreadable(cfg: TrainConfig, bad: list[tuple[str, str]], records: list[Record], heldout: list[Record],
                     report: DataReport) -> tuple[list[Record], list[Record]]:
    """Records without the unreadable images (each counted in the report), or an error naming them."""
    examples = "; ".join(f"{i!r}: {why}" for i, why in bad[:3])
    if not cfg.skip_missing_images:
        raise DataError(f"{len(bad)} images could not be read (e.g. {examples}). Replace or remove them, or set "
                        f"`skip_missing_images: true` to skip their records (counted in the data report). "
                        f"Features of the readable images are cached, so a rerun does not redo them.")
    bad_ids = {i for i, _ in bad}
    for r in records:
        if r.image_id in bad_ids:
            report.skip("image unreadable", r.line)
    records = [r for r in records if r.image_id not in bad_ids]
    if not records:
        raise DataError(f"No training records are left after skipping {len(bad)} unreadable images.")
    return records, [r for r in heldout if r.image_id not in bad_ids]
