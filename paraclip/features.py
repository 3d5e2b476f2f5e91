"""On-disk cache of image embeddings, shared by the trainer and the evaluators, and the functions
that fill it (:func:`encode_images_cached`; :func:`embed_images`, which also overlaps decoding with
encoding and reports the images that cannot be opened).

Images are encoded once with the (frozen) image tower and stored as fp16 rows keyed by
(model fingerprint, image CONTENT): the key of a file is a hash of its bytes
(:func:`image_file_key`), of an image given in memory a hash of its decoded pixels
(:func:`pixels_key`). Never the image id alone: two datasets (or two app visitors) that use the
same ids for other images must never share rows. Each ``put`` appends one shard
(``<unique>.npy`` + ``<unique>.ids.json``, the keys written last), so the cache grows safely:
concurrent writers never share a shard name and readers never see a half-written shard. A shard
found damaged (truncated rows, garbage keys) is noted, deleted and its images encoded again.
Reads use ``np.load(mmap_mode="r")`` so a large cache is not loaded into memory.
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

from paraclip.data.images import SVG_RASTER_SIZE, ImageLoadError
from paraclip.errors import DataError
from paraclip.files import atomic_write_text, cache_root, note_damaged_cache, parse_json


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


# -- content keys ------------------------------------------------------------------------------

_file_digests: dict[tuple[str, int, int], str] = {}
_file_digests_lock = threading.Lock()


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks; remembered per (path, size, mtime) in this process.

    The memo only saves re-reading an unchanged file; the digest itself is of the content."""
    path = Path(path)
    stat = path.stat()
    memo = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    with _file_digests_lock:
        known = _file_digests.get(memo)
    if known is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        known = h.hexdigest()
        with _file_digests_lock:
            _file_digests[memo] = known
    return known


def bytes_key(data: bytes, name: str | os.PathLike = "", rasterise=None) -> str:
    """The feature-cache key of an image file's bytes (e.g. a tar member); see :func:`image_file_key`."""
    return _with_decoder(f"file-{hashlib.sha256(data).hexdigest()}", name, rasterise)


def image_file_key(path: str | os.PathLike, rasterise=None) -> str:
    """The feature-cache key of an image file: a hash of its bytes (plus, for an SVG, the rasteriser
    and raster size, which decide its pixels). Raises :class:`ImageLoadError` for a missing file."""
    try:
        digest = file_digest(path)
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except OSError as exc:
        raise ImageLoadError(path, f"unreadable image ({type(exc).__name__}: {exc})") from None
    return _with_decoder(f"file-{digest}", path, rasterise)


def _with_decoder(key: str, name: str | os.PathLike, rasterise) -> str:
    if str(name).lower().endswith(".svg"):
        return f"{key}-svg{SVG_RASTER_SIZE}-{getattr(rasterise, '__name__', rasterise)}"
    return key


def pixels_key(image) -> str:
    """The feature-cache key of a decoded image (PIL image or array): a hash of its mode, size and pixels."""
    if hasattr(image, "tobytes") and hasattr(image, "mode"):
        head, data = f"{image.mode}|{image.size}", image.tobytes()
    else:
        arr = np.ascontiguousarray(np.asarray(image))
        head, data = f"{arr.dtype}|{arr.shape}", arr.tobytes()
    return f"pixels-{hashlib.sha256(head.encode() + b'|' + data).hexdigest()}"


def keys_by_pixels(load: Callable[[str], object]) -> Callable[[str], str]:
    """``key_of(id)`` for images that exist only in memory: decode, then hash the pixels."""
    return lambda image_id: pixels_key(load(image_id))


# -- the cache ---------------------------------------------------------------------------------

class FeatureCache:
    """Image embeddings for one model, keyed by content keys (:func:`image_file_key`, :func:`pixels_key`).

    ``remember_ids`` / ``remembered_ids`` keep which content key an image id had in a run that
    had the images: the trainer uses them only for images it is not given, from a features
    folder the user named (``features_from``), never in place of an image it can hash.
    """

    def __init__(self, root: str | os.PathLike, model_key: str):
        self.dir = Path(root) / model_key
        self.dir.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, tuple[str, int]] | None = None
        self._seen: set[str] = set()  # shards already read (or found damaged)
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
        """Index shards written since the last scan (by this or another process); drop damaged ones."""
        for ids_file in sorted(self.dir.glob("*.ids.json")):
            shard = ids_file.name[: -len(".ids.json")]
            npy = self.dir / f"{shard}.npy"
            if shard in self._seen or not npy.exists():
                continue
            self._seen.add(shard)
            try:
                keys = parse_json(ids_file.read_bytes(), str(ids_file))
                if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                    raise ValueError("its .ids.json is not a list of keys")
                rows = np.load(npy, mmap_mode="r")
                if rows.ndim != 2 or rows.shape[0] != len(keys):
                    raise ValueError(f"{rows.shape[0] if rows.ndim else 0} rows for {len(keys)} keys")
            except (OSError, ValueError, EOFError, UnicodeDecodeError, DataError) as exc:
                why = str(exc).removeprefix(f"{ids_file}: ")
                note_damaged_cache(npy, f"feature shard unreadable: {why}; its images are encoded again")
                ids_file.unlink(missing_ok=True)
                npy.unlink(missing_ok=True)
                continue
            self._shards[shard] = rows
            for row, key in enumerate(keys):
                self._index.setdefault(key, (shard, row))

    def __contains__(self, key: str) -> bool:
        return str(key) in self._scan()

    def __len__(self) -> int:
        return len(self._scan())

    def keys(self) -> list[str]:
        return list(self._scan())

    def missing(self, keys: Iterable[str]) -> list[str]:
        with self._lock:
            index = self._scan()
            self._read_new_shards()  # another writer may have filled some since we last looked
            return [str(k) for k in keys if str(k) not in index]

    def get(self, keys: Sequence[str]) -> torch.Tensor:
        """float32 tensor of the cached rows, in the order of ``keys`` (KeyError if any is missing)."""
        index = self._scan()
        missing = [k for k in keys if str(k) not in index]
        if missing:
            with self._lock:
                self._read_new_shards()
            missing = [k for k in keys if str(k) not in index]
        if missing:
            raise KeyError(f"{len(missing)} images not in the feature cache {self.dir} (e.g. {missing[:3]})")
        rows = [self._shards[index[str(k)][0]][index[str(k)][1]] for k in keys]
        return torch.from_numpy(np.stack(rows).astype(np.float32)) if rows else torch.empty(0, 0)

    def put(self, keys: Sequence[str], features: torch.Tensor) -> None:
        """Append rows as a new shard (keys already cached are skipped). Safe across threads and processes."""
        with self._lock:
            index = self._scan()
            keep = [n for n, k in enumerate(keys) if str(k) not in index]
            if not keep:
                return
            keys = [str(keys[n]) for n in keep]
            arr = features[keep].detach().float().cpu().numpy().astype(np.float16)
            shard = _unique_name()
            tmp = self.dir / f".{shard}.npy.tmp"
            with open(tmp, "wb") as f:
                np.save(f, arr)
            os.replace(tmp, self.dir / f"{shard}.npy")
            atomic_write_text(self.dir / f"{shard}.ids.json", json.dumps(keys))
            self._seen.add(shard)
            self._shards[shard] = np.load(self.dir / f"{shard}.npy", mmap_mode="r")
            for row, key in enumerate(keys):
                index.setdefault(key, (shard, row))

    def remember_ids(self, key_of_id: dict[str, str]) -> None:
        """Record which content key each image id had (for a later run given no images)."""
        if key_of_id:
            atomic_write_text(self.dir / "by-id" / f"{_unique_name()}.json", json.dumps(key_of_id))

    def remembered_ids(self) -> dict[str, str | None]:
        """``{image id: content key}`` from earlier runs; None for an id recorded with two contents."""
        out: dict[str, str | None] = {}
        for file in sorted((self.dir / "by-id").glob("*.json")):
            try:
                mapping = parse_json(file.read_bytes(), str(file))
                if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
                    raise ValueError("not an {image id: key} object")
            except (OSError, ValueError, UnicodeDecodeError, DataError) as exc:
                why = str(exc).removeprefix(f"{file}: ")
                note_damaged_cache(file, f"image-id record unreadable: {why}; it is dropped")
                file.unlink(missing_ok=True)
                continue
            for image_id, key in mapping.items():
                out[image_id] = key if out.get(image_id, key) == key else None
        return out


def _unique_name() -> str:
    # time-ordered and unique: no two writers (threads or processes) can pick the same name
    return f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def encode_images_cached(
    encoder,
    ids: Sequence[str],
    load: Callable[[str], object],
    cache: FeatureCache | None = None,
    batch_size: int = 256,
    progress=None,
    key_of: Callable[[str], str] | None = None,
) -> torch.Tensor:
    """Embeddings for ``ids``, encoding (via ``load(id) -> PIL``) only images not cached.

    ``key_of(id)``: the image's content key (:func:`image_file_key` of its file); default: a hash
    of the decoded pixels (:func:`pixels_key`)."""
    if cache is None:
        cache = FeatureCache.for_encoder(encoder)
    if key_of is None:
        return _encode_by_pixels(encoder, ids, load, cache, batch_size, progress)
    keys = [key_of(str(i)) for i in ids]
    id_of = dict(zip(keys, map(str, ids)))
    todo = list(dict.fromkeys(cache.missing(keys)))
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        feats = encoder.encode_image([load(id_of[k]) for k in chunk], progress=False)
        cache.put(chunk, feats)
        if callable(progress):
            progress(min(start + batch_size, len(todo)), len(todo))
    return cache.get(keys)


def _encode_by_pixels(encoder, ids, load, cache: FeatureCache, batch_size: int, progress) -> torch.Tensor:
    """:func:`encode_images_cached` for images keyed by their pixels: each is decoded once, to hash
    it, and kept for the encoder only when its key is not cached yet."""
    keys: list[str] = []
    pending: dict[str, object] = {}
    for n, image_id in enumerate(ids):
        image = load(str(image_id))
        keys.append(pixels_key(image))
        if keys[-1] not in cache:
            pending.setdefault(keys[-1], image)
        if pending and (len(pending) >= batch_size or n == len(ids) - 1):
            cache.put(list(pending), encoder.encode_image(list(pending.values()), progress=False))
            pending = {}
        if callable(progress):
            progress(n + 1, len(ids))
    return cache.get(keys)


def embed_images(encoder, ids: Sequence[str], load: Callable[[str], object], cache: FeatureCache | None = None,
                 batch_size: int | None = None, progress=None, workers: int = 4,
                 key_of: Callable[[str], str] | None = None):
    """``(features of the loadable ids in order, {id: reason} for the rest)``, via the feature cache.

    ``key_of(id)`` gives each image's content key (:func:`image_file_key` of its file; default: a
    hash of the decoded pixels); it may raise :class:`~paraclip.data.images.ImageLoadError`.
    Only images missing from the cache are opened: in a small thread pool, a couple of batches
    ahead of the encoder, so that decoding overlaps the forward pass with bounded memory
    (``workers=0``: one after the other in this thread).
    ``load(id)`` returns a PIL image or raises :class:`~paraclip.data.images.ImageLoadError`.
    """
    if not getattr(encoder, "has_image_tower", False):
        raise NotImplementedError(f"{getattr(encoder, 'name', encoder)} is a text-only encoder; "
                                  f"image tasks need an image tower")
    cache = cache if cache is not None else FeatureCache.for_encoder(encoder)
    key_of = key_of or keys_by_pixels(load)
    problems: dict[str, str] = {}
    key_for: dict[str, str] = {}
    for image_id in dict.fromkeys(ids):
        try:
            key_for[image_id] = key_of(image_id)
        except ImageLoadError as exc:
            problems[image_id] = exc.reason
    id_of = {key: image_id for image_id, key in key_for.items()}
    todo = list(dict.fromkeys(cache.missing(id_of)))
    batch_size = batch_size or getattr(encoder, "image_batch_size", 64)
    preprocess = encoder.preprocess

    def prepare(key: str):
        try:
            return preprocess(load(id_of[key])), None
        except ImageLoadError as exc:
            return None, exc.reason

    batches = [todo[s : s + batch_size] for s in range(0, len(todo), batch_size)]
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        prefetch = 2 if workers > 0 else 0  # batches being decoded ahead of the encoder (0: in this thread)
        inflight = [[pool.submit(prepare, k) for k in b] for b in batches[:prefetch]]
        for n, batch in enumerate(batches):
            if prefetch:
                futures = inflight.pop(0)
                if n + prefetch < len(batches):
                    inflight.append([pool.submit(prepare, k) for k in batches[n + prefetch]])
                prepared = [f.result() for f in futures]
            else:
                prepared = [prepare(k) for k in batch]
            ready = {}
            for key, (pixels, reason) in zip(batch, prepared):
                if reason is not None:
                    problems[id_of[key]] = reason
                else:
                    ready[key] = pixels
            if ready:
                encode_images_cached(encoder, list(ready), ready.__getitem__, cache, batch_size=batch_size,
                                     key_of=str)
            done += len(batch)
            if callable(progress):
                progress(done, len(todo))
    # an id whose image failed under another id with the same content fails too
    failed = {key_for[i] for i in problems if i in key_for}
    problems.update({i: problems[id_of[k]] for i, k in key_for.items() if k in failed and i not in problems})
    kept = [key_for[i] for i in ids if i not in problems]
    return (cache.get(kept) if kept else torch.empty(0, 0)), problems
