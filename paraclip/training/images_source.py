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

Cached features are found by each image's content (a hash of its file's bytes, or of its pixels
for images given in memory), never by its id: another dataset, or another app visitor, that
uses the same ids for other images gets its own features. Only an image the run is not given
is looked up by id, in the record of ids that earlier runs kept in a ``features_from`` folder
the user named.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Mapping, NamedTuple

import numpy as np
import torch

from paraclip.errors import DataError
from paraclip.data.images import svg_rasteriser
from paraclip.data.shards import ShardMember
from paraclip.features import FeatureCache, bytes_key, default_cache_root, image_file_key, keys_by_pixels
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
        pixels = next(self._batches)
        if isinstance(pixels, str):
            raise DataError(pixels)
        return StepImages(pixels=pixels.to(self.device))

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


def image_loader(images: ImageInput | None,
                 spec: str | None) -> tuple[Callable | None, Callable[[str], bool], str, Callable[[str], str] | None]:
    """(load(id), has(id), description, key_of(id)) from images given in memory, else the ``images``
    setting; ``key_of`` gives an image's feature-cache key, from its content."""
    if images is not None:
        if isinstance(images, Mapping):
            return images.__getitem__, images.__contains__, "images given in memory", keys_by_pixels(
                images.__getitem__)
        return images, (lambda _id: True), "image loader given in memory", keys_by_pixels(images)
    if spec:
        index = ImageIndex.from_spec(spec)
        return index.load, index.__contains__, index.source, _file_keys(index)
    return None, (lambda _id: False), "no image source", None


def _file_keys(index: ImageIndex) -> Callable[[str], str]:
    rasterise: list = []  # looked up on the first SVG

    def key_of(image_id: str) -> str:
        loc = index.locations[image_id]
        name = str(getattr(loc, "name", loc))
        if name.lower().endswith(".svg") and not rasterise:
            rasterise.append(svg_rasteriser())
        if isinstance(loc, ShardMember):
            return bytes_key(loc.read(), name, rasterise[0] if rasterise else None)
        return image_file_key(loc, rasterise[0] if rasterise else None)

    return key_of


def prepare_images(cfg: TrainConfig, encoder, dist: D.DistInfo, console: Console, records: list[Record],
                   heldout: list[Record], report: DataReport, images: ImageInput | None,
                   needed: bool) -> PreparedImages:
    """Check every record's image, make features (frozen tower) or pixels (trained tower) ready, pick the source.

    ``needed`` is false when neither the loss nor held-out validation looks at images."""
    if not needed:
        return PreparedImages(records, heldout)
    load, has, where, key_of = image_loader(images, cfg.images)
    cache = None
    remembered: dict[str, str | None] = {}
    if cfg.freeze_image:
        cache = FeatureCache.for_encoder(encoder, cfg.features_from or default_cache_root())
        if cfg.features_from:  # never from the shared default cache, where ids of other people's images live
            remembered = cache.remembered_ids()
        cached = set(cache.keys())
        available = lambda i: has(i) or remembered.get(i) in cached  # noqa: E731
        where = (f"{where} or the feature cache {cache.dir}" if cfg.features_from else
                 f"{where} (the shared feature cache is never searched by image_id: set `images`, or set "
                 f"`features_from` to a folder where a run with the images cached them)")
    else:
        available = has
    records = check_image_ids(records, available, cfg.data, where, cfg.skip_missing_images, report)
    if heldout:
        heldout = check_image_ids(heldout, available, cfg.val_data or cfg.data, where, cfg.skip_missing_images,
                                  DataReport(str(cfg.val_data or cfg.data)))
    ids = list(dict.fromkeys([r.image_id for r in records] + [r.image_id for r in heldout]))
    store = None
    keys: dict[str, str] = {}
    if cache is not None:
        bad: list[tuple[str, str]] = []
        if dist.is_main:
            keys, bad = _content_keys(ids, has, key_of, remembered)
            bad += _fill_feature_cache(cfg, encoder, cache, keys, load, console)
            if cfg.features_from:
                cache.remember_ids({i: k for i, k in keys.items() if has(i) and remembered.get(i) != k})
        keys, bad = D.broadcast_object((keys, bad), dist)
    else:
        store, bad = _decode_pixels(cfg, encoder, ids, load, console, dist)
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
        feats = FeatureCache(cache.dir.parent, cache.dir.name).get([keys[i] for i in ids])
        source: ImageSource = CachedFeatures(feats.to(dist.device, torch.float16), rows)
    elif store is not None:
        source = PixelsInMemory(store, rows, dist.device)
    else:
        source = PixelsPerStep(load, ids, rows, encoder.preprocess, cfg.workers, dist.device)
    return PreparedImages(records, heldout, source, len(ids), val_rows)


def _content_keys(ids: list[str], has, key_of, remembered: dict[str, str | None]
                  ) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Each image's feature-cache key: from its content when the run has the image, else as remembered."""
    keys: dict[str, str] = {}
    bad: list[tuple[str, str]] = []
    for image_id in ids:
        try:
            keys[image_id] = key_of(image_id) if key_of is not None and has(image_id) else remembered[image_id]
        except UNREADABLE as exc:
            bad.append((image_id, f"{type(exc).__name__}: {exc}"))
    return keys, bad


def _fill_feature_cache(cfg: TrainConfig, encoder, cache: FeatureCache, keys: dict[str, str], load,
                        console: Console) -> list[tuple[str, str]]:
    """Encode images not yet cached with the frozen tower; returns unreadable (id, reason) pairs."""
    todo = list(dict.fromkeys(cache.missing(keys.values())))
    if not todo:
        console.say(f"image features: all {len(keys)} cached in {cache.dir}")
        return []
    id_of = {key: image_id for image_id, key in keys.items()}
    if load is None:
        raise DataError(f"{len(todo)} images have no cached features in {cache.dir} (e.g. "
                        f"{[id_of[k] for k in todo[:3]]}) and no `images` source is set. Set `images` to the "
                        f"image folder / CSV / JSONL.")
    console.say(f"image features: encoding {len(todo)} images with the frozen image tower into {cache.dir}")
    failed: dict[str, str] = {}
    bar = console.progress_bar(len(todo), "image features", "img")
    bs = cfg.feature_batch_size
    for start in range(0, len(todo), bs):
        chunk, images = [], []
        for key in todo[start:start + bs]:
            try:
                images.append(load(id_of[key]))
                chunk.append(key)
            except UNREADABLE as exc:
                failed[key] = f"{type(exc).__name__}: {exc}"
        if chunk:
            cache.put(chunk, encoder.encode_image(images, progress=False))
        if bar is not None:
            bar.update(len(todo[start:start + bs]))
    if bar is not None:
        bar.close()
    return [(image_id, failed[key]) for image_id, key in keys.items() if key in failed]


def _decode_pixels(cfg: TrainConfig, encoder, ids: list[str], load, console: Console,
                   dist: D.DistInfo) -> tuple[PixelStore | None, list[tuple[str, str]]]:
    """All pixels decoded into memory when they fit in ``image_memory_gb`` (else None: per-step decoding,
    after every image was decoded once to find the unreadable ones)."""
    if load is None:
        raise DataError("Training the image tower (freeze_image: false) needs the images: set `images`.")
    size = getattr(encoder.model.visual, "image_size", 224)
    need = estimate_pixel_bytes(len(ids), size)
    if need > cfg.image_memory_gb * 2 ** 30:
        console.say(f"{len(ids)} images need {need / 2 ** 30:.1f} GB > image_memory_gb; decoding per step "
                    f"with {cfg.workers} workers")
        bad = _check_decodable(ids, load, console) if dist.is_main else []
        return None, D.broadcast_object(bad, dist)
    console.say(f"decoding {len(ids)} images into memory ({need / 2 ** 20:.0f} MB)")
    bad: list[tuple[str, str]] = []
    store = PixelStore.build(ids, load, encoder.preprocess, threads=4,
                             on_error=lambda i, e: bad.append((i, f"{type(e).__name__}: {e}")))[0]
    return store, bad


def _check_decodable(ids: list[str], load, console: Console, threads: int = 4) -> list[tuple[str, str]]:
    """(id, reason) of each image that ``load`` cannot decode, found before training starts.

    A full decode, not a header check: a header (PIL's ``Image.open`` + size) catches missing files,
    non-images and decompression bombs, but not a truncated file, the usual result of a cut copy; a
    bad image found at its step could only stop the run or silently change that step's batch. The cost
    is one decoding pass (measured ~4 ms per 500x375 image per core, ~0.2 ms for a header), less than
    the decoding of one epoch, which also runs the image tower."""
    console.say(f"checking that all {len(ids)} images decode (they are decoded again at each step)")
    bar = console.progress_bar(len(ids), "image check", "img")

    def problem(image_id: str) -> str | None:
        try:
            load(image_id)
            return None
        except UNREADABLE as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            if bar is not None:
                bar.update(1)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:  # PIL's decoders release the GIL
        problems = list(pool.map(problem, ids))
    if bar is not None:
        bar.close()
    return [(image_id, why) for image_id, why in zip(ids, problems) if why is not None]


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
