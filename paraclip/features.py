"""On-disk cache of image embeddings, shared by the trainer and the evaluators, and the functions
that fill it (:func:`encode_images_cached`; :func:`embed_images`, which also overlaps decoding with
encoding and reports the images that cannot be opened).

Images are encoded once with the (frozen) image tower and stored as fp16 rows keyed by
(model fingerprint, image id). Each ``put`` appends one shard (``<unique>.npy`` + ``<unique>.ids.json``,
the ids written last), so the cache grows safely: concurrent writers (threads or processes) never
share a shard name and readers never see a half-written shard. Reads use
``np.load(mmap_mode="r")`` so a large cache is not loaded into memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from paraclip.data.images import ImageLoadError
from paraclip.files import atomic_write_text, cache_root


def default_cache_root() -> Path:
    return cache_root() / "image-features"


def model_fingerprint(encoder) -> str:
    """A key that changes when the image tower's weights change (name + weight checksum)."""
    model = getattr(encoder, "model", None)
    h = hashlib.sha256(f"{encoder.name}|{encoder.pretrained}".encode())
    visual = getattr(model, "visual", None) or getattr(model, "vision_model", None)
    if visual is not None:
        for name, tensor in sorted(visual.state_dict().items()):
            h.update(name.encode())
            t = tensor.detach().float().cpu().flatten()
            # a strided sample keeps this fast for large towers while catching any retraining
            h.update(t[:: max(1, t.numel() // 4096)].numpy().tobytes())
    return f"{_slug(encoder.name)}-{h.hexdigest()[:16]}"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))[-60:]


class FeatureCache:
    """Image embeddings for one model, keyed by image id."""

    def __init__(self, root: str | os.PathLike, model_key: str):
        self.dir = Path(root) / model_key
        self.dir.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, tuple[str, int]] | None = None
        self._shards: dict[str, np.ndarray] = {}
        self._lock = threading.RLock()

    @classmethod
    def for_encoder(cls, encoder, root: str | os.PathLike | None = None) -> "FeatureCache":
        return cls(root or default_cache_root(), model_fingerprint(encoder))

    def _scan(self) -> dict[str, tuple[str, int]]:
        with self._lock:
            if self._index is None:
                self._index = {}
                self._read_new_shards()
            return self._index

    def _read_new_shards(self) -> None:
        """Index shards written since the last scan (by this or another process)."""
        known = {shard for shard, _ in self._index.values()}
        for ids_file in sorted(self.dir.glob("*.ids.json")):
            shard = ids_file.name[: -len(".ids.json")]
            if shard in known or not (self.dir / f"{shard}.npy").exists():
                continue
            for row, image_id in enumerate(json.loads(ids_file.read_text())):
                self._index.setdefault(image_id, (shard, row))

    def __contains__(self, image_id: str) -> bool:
        return str(image_id) in self._scan()

    def __len__(self) -> int:
        return len(self._scan())

    def ids(self) -> list[str]:
        return list(self._scan())

    def missing(self, ids: Iterable[str]) -> list[str]:
        with self._lock:
            index = self._scan()
            self._read_new_shards()  # another writer may have filled some since we last looked
            return [str(i) for i in ids if str(i) not in index]

    def _shard(self, shard: str) -> np.ndarray:
        with self._lock:
            if shard not in self._shards:
                self._shards[shard] = np.load(self.dir / f"{shard}.npy", mmap_mode="r")
            return self._shards[shard]

    def get(self, ids: Sequence[str]) -> torch.Tensor:
        """float32 tensor of the cached rows, in the order of ``ids`` (KeyError if any is missing)."""
        index = self._scan()
        missing = [i for i in ids if str(i) not in index]
        if missing:
            with self._lock:
                self._read_new_shards()
            missing = [i for i in ids if str(i) not in index]
        if missing:
            raise KeyError(f"{len(missing)} image ids not in the feature cache {self.dir} (e.g. {missing[:3]})")
        rows = [self._shard(index[str(i)][0])[index[str(i)][1]] for i in ids]
        return torch.from_numpy(np.stack(rows).astype(np.float32)) if rows else torch.empty(0, 0)

    def put(self, ids: Sequence[str], features: torch.Tensor) -> None:
        """Append rows as a new shard (ids already cached are skipped). Safe across threads and processes."""
        with self._lock:
            index = self._scan()
            keep = [k for k, i in enumerate(ids) if str(i) not in index]
            if not keep:
                return
            ids = [str(ids[k]) for k in keep]
            arr = features[keep].detach().float().cpu().numpy().astype(np.float16)
            # time-ordered and unique: no two writers can pick the same shard name
            shard = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp = self.dir / f".{shard}.npy.tmp"
            with open(tmp, "wb") as f:
                np.save(f, arr)
            os.replace(tmp, self.dir / f"{shard}.npy")
            atomic_write_text(self.dir / f"{shard}.ids.json", json.dumps(ids))
            for row, image_id in enumerate(ids):
                index.setdefault(image_id, (shard, row))


def encode_images_cached(
    encoder,
    ids: Sequence[str],
    load_image: Callable[[str], object],
    cache: FeatureCache | None = None,
    batch_size: int = 256,
    progress=None,
) -> torch.Tensor:
    """Embeddings for ``ids``, encoding (via ``load_image(id) -> PIL``) only those not cached."""
    if cache is None:
        cache = FeatureCache.for_encoder(encoder)
    todo = list(dict.fromkeys(cache.missing(ids)))
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        feats = encoder.encode_image([load_image(i) for i in chunk], progress=False)
        cache.put(chunk, feats)
        if callable(progress):
            progress(min(start + batch_size, len(todo)), len(todo))
    return cache.get([str(i) for i in ids])


def embed_images(encoder, ids: Sequence[str], load: Callable[[str], object], cache: FeatureCache | None = None,
                 batch_size: int | None = None, progress=None, workers: int = 4):
    """``(features of the loadable ids in order, {id: reason} for the rest)``, via the feature cache.

    Only ids missing from the cache are opened: in a small thread pool, a couple of batches
    ahead of the encoder, so that decoding overlaps the forward pass with bounded memory
    (``workers=0``: one after the other in this thread).
    ``load(id)`` returns a PIL image or raises :class:`~paraclip.data.images.ImageLoadError`.
    """
    if not getattr(encoder, "has_image_tower", False):
        raise NotImplementedError(f"{getattr(encoder, 'name', encoder)} is a text-only encoder; "
                                  f"image tasks need an image tower")
    cache = cache if cache is not None else FeatureCache.for_encoder(encoder)
    todo = list(dict.fromkeys(cache.missing(ids)))
    batch_size = batch_size or getattr(encoder, "image_batch_size", 64)
    preprocess = encoder.preprocess
    problems: dict[str, str] = {}

    def prepare(image_id: str):
        try:
            return preprocess(load(image_id)), None
        except ImageLoadError as exc:
            return None, exc.reason

    batches = [todo[s : s + batch_size] for s in range(0, len(todo), batch_size)]
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        prefetch = 2 if workers > 0 else 0  # batches being decoded ahead of the encoder (0: in this thread)
        inflight = [[pool.submit(prepare, i) for i in b] for b in batches[:prefetch]]
        for n, batch in enumerate(batches):
            if prefetch:
                futures = inflight.pop(0)
                if n + prefetch < len(batches):
                    inflight.append([pool.submit(prepare, i) for i in batches[n + prefetch]])
                prepared = [f.result() for f in futures]
            else:
                prepared = [prepare(i) for i in batch]
            ready = {}
            for image_id, (pixels, reason) in zip(batch, prepared):
                if reason is not None:
                    problems[image_id] = reason
                else:
                    ready[image_id] = pixels
            if ready:
                encode_images_cached(encoder, list(ready), ready.__getitem__, cache, batch_size=batch_size)
            done += len(batch)
            if callable(progress):
                progress(done, len(todo))
    kept = [i for i in ids if i not in problems]
    return (cache.get(kept) if kept else torch.empty(0, 0)), problems
