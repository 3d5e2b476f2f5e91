"""Image galleries: captioned images to retrieve from, with their embeddings cached.

A :class:`Gallery` is a list of image ids, one or more captions per image, and a way to open
each image as an RGB PIL image. Loaders:

* :func:`folder_gallery` — a local folder plus a captions file (CSV/TSV/JSONL with ``file``,
  ``caption`` and optionally ``image_id``; several rows may name the same file);
* :func:`tuxpaint_gallery` — Debian's ``tuxpaint-stamps-default`` (about 1,000 real clip-art
  images under ``/usr/share/tuxpaint/stamps``; the caption is the first line of the ``.txt``
  beside each image), the offline gallery;
* :func:`wds_gallery` — CLIP_benchmark's webdataset layout (``{split}/N.tar`` with an image and a
  ``.txt`` of captions, one per line, per sample), read from a local folder or fetched from the
  Hugging Face hub when online: ``clip-benchmark/wds_mscoco_captions`` (COCO Karpathy 5k test)
  and ``clip-benchmark/wds_flickr30k`` (Flickr30k 1k test).

Images are normalised on load: transparent cut-outs (RGBA, LA, palette with transparency) are
composited on white, grayscale / 16-bit / CMYK become RGB, SVGs are rasterised when a
rasteriser exists (``cairosvg`` or ``rsvg-convert``) and otherwise skipped and counted. Files
that are missing, empty, truncated or unreadable are reported in :attr:`Gallery.problems` and
left out; they never stop an evaluation.

Embeddings go through :func:`paraclip.features.encode_images_cached`, so the evaluators and
the trainer share one on-disk cache keyed by model; a gallery's rows are keyed by image id and
the file it comes from (:meth:`Gallery.cache_key`), so galleries that reuse ids never collide.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from paraclip.data.tables import iter_table
from paraclip.errors import DataError
from paraclip.files import cache_root
from paraclip.registry import Registry

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".svg")
TUXPAINT_STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")
SVG_RASTER_SIZE = 320  # px, longest side; CLIP preprocessing resizes to 224 anyway


class ImageLoadError(DataError):
    """One image could not be opened; ``path`` and a short ``reason`` (first words = the kind)."""

    def __init__(self, path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}.")


def reason_kind(reason: str) -> str:
    """The kind of a skip/problem reason, for counting ("empty file (0 bytes)" -> "empty file")."""
    return reason.split(" (")[0].rstrip(".")


# -- tables (CSV / TSV / JSONL) --------------------------------------------------------------

def pick_field(record: dict[str, str], names: Sequence[str]) -> str | None:
    """The first of ``names`` present in ``record`` (case-insensitive), else None."""
    lowered = {k.lower(): k for k in record}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


# -- image normalisation ---------------------------------------------------------------------

def _rsvg_rasterise(path: Path, size: int) -> bytes:
    return subprocess.run(["rsvg-convert", "-w", str(size), "-h", str(size), "--keep-aspect-ratio", str(path)],
                          check=True, capture_output=True, timeout=60).stdout


def _cairosvg_rasterise(path: Path, size: int) -> bytes:
    import cairosvg

    return cairosvg.svg2png(url=str(path), output_width=size)


def svg_rasteriser() -> Callable[[Path, int], bytes] | None:
    """A function ``(svg path, size) -> PNG bytes`` if cairosvg or rsvg-convert is available."""
    try:
        import cairosvg  # noqa: F401

        return _cairosvg_rasterise
    except Exception:  # noqa: BLE001 - ImportError, or OSError when libcairo is missing
        pass
    if shutil.which("rsvg-convert"):
        return _rsvg_rasterise
    return None


NO_RASTERISER = ("SVG skipped: no SVG rasteriser (install `librsvg2-bin` with apt, "
                 "or `pip install cairosvg`)")


def to_rgb(image):
    """RGB copy of a PIL image: transparency composited on white, gray / 16-bit / CMYK converted."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            scale = 255.0 / 65535.0  # the full 16-bit range
        else:  # 32-bit int / float: stretch only when values exceed 8 bits
            scale = 255.0 / arr.max() if arr.size and arr.max() > 255 else 1.0
        image = Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def open_image(path: str | os.PathLike, rasterise: Callable[[Path, int], bytes] | None = None,
               raster_cache: Path | None = None):
    """Open ``path`` as an RGB PIL image; raise :class:`ImageLoadError` saying why it cannot be."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageLoadError(path, "empty file (0 bytes)")
        if path.suffix.lower() == ".svg":
            if rasterise is None:
                raise ImageLoadError(path, NO_RASTERISER)
            data = _rasterised_png(path, rasterise, raster_cache)
            image = Image.open(io.BytesIO(data))
        else:
            image = Image.open(path)
        image.load()  # decode now, so that truncated files fail here and not inside the encoder
        return to_rgb(image)
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not an image PIL can read") from None
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip()[:200]
        raise ImageLoadError(path, f"SVG rasteriser failed ({detail})") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated data, bad headers, decoder errors
        raise ImageLoadError(path, f"unreadable image ({type(exc).__name__}: {exc})") from None


def _rasterised_png(path: Path, rasterise: Callable[[Path, int], bytes], cache: Path | None) -> bytes:
    """Rasterise once; keep the PNG under the cache so that each model does not pay again."""
    if cache is None:
        return rasterise(path, SVG_RASTER_SIZE)
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{SVG_RASTER_SIZE}".encode()).hexdigest()
    target = cache / f"{key}.png"
    if target.exists():
        return target.read_bytes()
    data = rasterise(path, SVG_RASTER_SIZE)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return data


def default_raster_cache() -> Path:
    return cache_root() / "svg-raster"


def embed_images(encoder, ids: Sequence[str], load: Callable[[str], object], cache=None,
                 batch_size: int | None = None, progress=None, workers: int = 4):
    """``(features of the loadable ids in order, {id: reason} for the rest)``, via the shared
    feature cache (:func:`paraclip.features.encode_images_cached`).

    Only ids missing from the cache are opened: in a small thread pool, a couple of batches
    ahead of the encoder, so that decoding overlaps the forward pass with bounded memory
    (``workers=0``: one after the other in this thread).
    ``load(id)`` returns a PIL image or raises :class:`ImageLoadError`.
    """
    from paraclip.features import FeatureCache, encode_images_cached

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


# -- the gallery -----------------------------------------------------------------------------

@dataclass
class GalleryFeatures:
    """Embeddings of the images that could be loaded, in gallery order."""

    ids: list[str]
    features: torch.Tensor

    def index(self) -> dict[str, int]:
        return {image_id: row for row, image_id in enumerate(self.ids)}


@dataclass
class Gallery:
    """Captioned images. ``paths[i]`` is the file of ``ids[i]``; ``captions[i]`` its captions.

    ``skipped`` maps files left out when the gallery was listed to the reason (an SVG without a
    rasteriser, an empty file, a missing file, an empty caption); ``problems`` maps the ids of
    images that failed to open while embedding to the reason (truncated, unreadable). Neither
    stops an evaluation; :meth:`summary` counts them.
    """

    name: str
    ids: list[str]
    captions: list[list[str]]
    paths: list[Path]
    source: str = ""
    skipped: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    rasterise: Callable[[Path, int], bytes] | None = None

    def __post_init__(self):
        if not (len(self.ids) == len(self.captions) == len(self.paths)):
            raise ValueError("ids, captions and paths must have the same length")
        if len(set(self.ids)) != len(self.ids):
            dup = next(i for i in self.ids if self.ids.count(i) > 1)
            raise DataError(f"gallery {self.name!r}: image id {dup!r} occurs twice; image ids must be unique.")
        self._row = {image_id: row for row, image_id in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (f"Gallery({self.name!r}, images={len(self)}, captions={sum(map(len, self.captions))}, "
                f"skipped={len(self.skipped)}, problems={len(self.problems)})")

    def path_of(self, image_id: str) -> Path:
        return self.paths[self._row[image_id]]

    def load_image(self, image_id: str):
        """The image as an RGB PIL image (raises :class:`ImageLoadError`)."""
        return open_image(self.path_of(image_id), self.rasterise, default_raster_cache())

    def caption_of(self, image_id: str) -> str:
        return self.captions[self._row[image_id]][0]

    def subset(self, limit: int | None) -> "Gallery":
        """The first ``limit`` images (the whole gallery for None)."""
        if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
            raise DataError(f"gallery limit must be a whole number of images >= 1 (got {limit!r}); leave it empty "
                            f"for the whole gallery.")
        if limit is None or limit >= len(self):
            return self
        limit = int(limit)
        ids = self.ids[:limit]
        kept = set(ids)
        problems = {i: r for i, r in self.problems.items() if i in kept}
        return Gallery(f"{self.name}[:{limit}]", ids, self.captions[:limit], self.paths[:limit],
                       self.source, dict(self.skipped), problems, self.rasterise)

    def skipped_counts(self) -> dict[str, int]:
        """Number of left-out files per kind of reason (skipped at listing and failed at loading)."""
        counts: dict[str, int] = {}
        for reason in list(self.skipped.values()) + list(self.problems.values()):
            counts[reason_kind(reason)] = counts.get(reason_kind(reason), 0) + 1
        return counts

    def summary(self) -> str:
        counts = self.skipped_counts()
        left_out = ", ".join(f"{n} × {kind}" for kind, n in sorted(counts.items())) or "none"
        return f"gallery {self.name}: {len(self) - len(self.problems)} images ({self.source}); left out: {left_out}"

    def embed(self, encoder, cache=None, batch_size: int | None = None, progress=None,
              workers: int = 4) -> GalleryFeatures:
        """Embeddings of every loadable image, encoding only those not in the feature cache.

        Images that fail to open are recorded in :attr:`problems` and left out of the result.
        """
        todo = [i for i in self.ids if i not in self.problems]
        keys = [self.cache_key(i) for i in todo]
        id_of = dict(zip(keys, todo))
        features, problems = embed_images(encoder, keys, lambda key: self.load_image(id_of[key]), cache,
                                          batch_size, progress, workers)
        self.problems.update({id_of[key]: reason for key, reason in problems.items()})
        ids = [i for i in self.ids if i not in self.problems]
        return GalleryFeatures(ids, features)

    def cache_key(self, image_id: str) -> str:
        """The feature-cache key of an image: its id plus a tag of the file it comes from.

        Ids alone are not unique across galleries (two folders of ``0001.png``), so the key also
        names the file (resolved path, size, modification time): galleries that share ids never
        share cached rows, and an image replaced on disk is encoded again.
        """
        path = self.path_of(image_id)
        try:
            stat = path.stat()
            where = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        except OSError:  # a missing file fails later, when it is loaded, with its own message
            where = str(path)
        return f"{image_id}#{hashlib.sha1(where.encode()).hexdigest()[:12]}"

    def write_captions(self, path: str | os.PathLike) -> int:
        """Write ``image_id,caption`` rows (one per caption): the input of ``paraclip paraphrase``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["image_id", "caption"])
            rows = 0
            for image_id, caps in zip(self.ids, self.captions):
                for cap in caps:
                    writer.writerow([image_id, cap])
                    rows += 1
        return rows


# -- loaders ---------------------------------------------------------------------------------

FILE_FIELDS = ("file", "filename", "image", "path", "image_path", "filepath")
CAPTION_FIELDS = ("caption", "text", "sentence", "title")
ID_FIELDS = ("image_id", "id")
CAPTION_FILE_NAMES = ("captions.csv", "captions.tsv", "captions.jsonl")


def folder_gallery(folder: str | os.PathLike, captions_file: str | os.PathLike | None = None,
                   name: str | None = None) -> Gallery:
    """A folder of images with a captions file (``file, caption[, image_id]``; CSV/TSV/JSONL).

    ``file`` is relative to ``folder`` (absolute paths are allowed). Several rows may give
    several captions for the same file. The image id is ``image_id`` when given (so that ids
    match a paraphrase file and the trainer's feature cache), else the relative file path.
    """
    folder = Path(folder).expanduser()
    if captions_file is None:
        found = [folder / n for n in CAPTION_FILE_NAMES if (folder / n).is_file()]
        if not found:
            raise DataError(f"{folder}: no captions file. Put one of {', '.join(CAPTION_FILE_NAMES)} in the "
                            f"folder (columns: file, caption, optional image_id) or pass it explicitly.")
        captions_file = found[0]
    captions_file = Path(captions_file).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder does not exist.")
    by_id: dict[str, tuple[Path, list[str]]] = {}
    skipped: dict[str, str] = {}
    rasterise = svg_rasteriser()
    fields = None
    for line_no, record in iter_table(captions_file):
        if fields is None:
            fields = (pick_field(record, FILE_FIELDS), pick_field(record, CAPTION_FIELDS), pick_field(record, ID_FIELDS))
            for got, want in zip(fields[:2], (FILE_FIELDS, CAPTION_FIELDS)):
                if got is None:
                    found = ", ".join(record)
                    raise DataError(f"{captions_file}:{line_no}: no {want[0]!r} field (accepted: {', '.join(want)}); "
                                    f"found {found}.", file_text=[found])
        file_field, caption_field, id_field = fields
        rel, caption = (record.get(file_field) or "").strip(), (record.get(caption_field) or "").strip()
        if not rel:
            raise DataError(f"{captions_file}:{line_no}: field {file_field!r} is empty.")
        if not caption:
            raise DataError(f"{captions_file}:{line_no}: field {caption_field!r} is empty (image {rel}).")
        image_id = (record.get(id_field) or "").strip() if id_field else ""
        image_id = image_id or rel
        path = Path(rel) if Path(rel).is_absolute() else folder / rel
        if image_id in by_id:
            if by_id[image_id][0] != path:
                raise DataError(f"{captions_file}:{line_no}: image id {image_id!r} already names "
                                f"{by_id[image_id][0]}, not {path}.",
                                file_text=[repr(image_id), str(by_id[image_id][0]), str(path)])
            by_id[image_id][1].append(caption)
            continue
        reason = _listing_problem(path, rasterise)
        if reason:
            skipped[str(path)] = reason
            continue
        by_id[image_id] = (path, [caption])
    if fields is None:
        raise DataError(f"{captions_file}: no rows. Expected a header and rows of file, caption[, image_id].")
    if not by_id:
        example = next((f"{p}: {r}" for p, r in skipped.items()), "?")
        raise DataError(f"{captions_file}: none of the listed images can be used (e.g. {example}).")
    ids = list(by_id)
    return Gallery(name or folder.name, ids, [by_id[i][1] for i in ids], [by_id[i][0] for i in ids],
                   source=f"folder {folder} + {captions_file.name}", skipped=skipped, rasterise=rasterise)


def _listing_problem(path: Path, rasterise) -> str | None:
    """Why ``path`` cannot be in a gallery, judged without decoding it (None if it looks usable)."""
    if not path.is_file():
        return "file not found"
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    if path.suffix.lower() == ".svg" and rasterise is None:
        return NO_RASTERISER
    return None


def tuxpaint_gallery(root: str | os.PathLike | None = None) -> Gallery:
    """Debian's ``tuxpaint-stamps-default``: each stamp image with the first line of its ``.txt``.

    A stamp may ship as PNG and SVG; the PNG is used (no rasteriser needed). ``*_mirror`` /
    ``*_flip`` images are Tux Paint's pre-flipped variants of a stamp and have no caption of
    their own, so they are not part of the gallery.
    """
    root = Path(root or os.environ.get("PARACLIP_TUXPAINT_DIR") or TUXPAINT_STAMPS_DIR)
    if not root.is_dir():
        raise DataError(
            f"Tux Paint stamps not found at {root}. On Debian/Ubuntu: `sudo apt-get update && sudo apt-get "
            f"install -y tuxpaint-stamps-default` (or set PARACLIP_TUXPAINT_DIR to a copy of the stamps folder)."
        )
    rasterise = svg_rasteriser()
    ids, captions, paths, skipped = [], [], [], {}
    for txt in sorted(root.rglob("*.txt")):
        candidates = [txt.with_suffix(s) for s in (".png", ".svg")]
        image = next((c for c in candidates if c.is_file()), None)
        if image is None:
            continue  # a description without an image (Tux Paint ships a few)
        rel = image.relative_to(root).as_posix()
        try:
            first = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            skipped[str(txt)] = f"unreadable caption file ({exc})"
            continue
        caption = first[0].strip() if first else ""
        if not caption:
            skipped[str(image)] = "empty caption"
            continue
        reason = _listing_problem(image, rasterise)
        if reason:
            skipped[str(image)] = reason
            continue
        ids.append(f"tuxpaint/{rel}")
        captions.append([caption])
        paths.append(image)
    if not ids:
        raise DataError(f"{root}: no captioned stamps found (expected image files with a .txt beside each).")
    return Gallery("tuxpaint", ids, captions, paths, source=f"tuxpaint-stamps-default ({root})",
                   skipped=skipped, rasterise=rasterise)


WDS_IMAGE_EXTS = ("webp", "png", "jpg", "jpeg")


def wds_gallery(root: str | os.PathLike, split: str = "test", name: str | None = None,
                extract_to: str | os.PathLike | None = None) -> Gallery:
    """A gallery in CLIP_benchmark's webdataset layout: ``root/{split}/*.tar`` whose samples hold
    an image (webp/png/jpg) and a ``txt`` with one caption per line.

    The images are extracted once to ``extract_to`` (default: under the paraclip cache) so that
    they can be opened by id; later calls reuse the extraction.
    """
    root = Path(root).expanduser()
    shards = sorted((root / split).glob("*.tar"), key=lambda p: (len(p.stem), p.stem))
    if not shards:
        raise DataError(f"{root}/{split}: no .tar shards (expected CLIP_benchmark's webdataset layout "
                        f"{split}/0.tar, {split}/1.tar, …).")
    name = name or root.name
    out = Path(extract_to) if extract_to else (
        cache_root() / "galleries" / name / split)
    index_file = out / "index.json"
    if not index_file.exists():
        records = _extract_wds(shards, out)
        from paraclip.files import atomic_write_text

        atomic_write_text(index_file, json.dumps(records))
    records = json.loads(index_file.read_text())
    ids = [f"{name}/{r['key']}" for r in records]
    return Gallery(name, ids, [r["captions"] for r in records], [out / r["file"] for r in records],
                   source=f"webdataset {root}/{split} ({len(shards)} shards)", rasterise=None)


def _extract_wds(shards: Sequence[Path], out: Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    samples: dict[str, dict] = {}
    order: list[str] = []
    for shard in shards:
        try:
            with tarfile.open(shard) as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    # webdataset convention: the key is the path up to the first dot of the file name
                    parent, base = os.path.split(member.name)
                    stem, _, ext = base.partition(".")
                    key = f"{parent}/{stem}" if parent else stem
                    if key not in samples:
                        samples[key] = {}
                        order.append(key)
                    data = tar.extractfile(member).read()
                    if ext.lower() == "txt":
                        samples[key]["captions"] = [c.strip() for c in data.decode("utf-8", "replace").splitlines() if c.strip()]
                    elif ext.lower() in WDS_IMAGE_EXTS:
                        target = out / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.{ext.lower()}"
                        target.write_bytes(data)
                        samples[key]["file"] = target.name
        except tarfile.TarError as exc:
            raise DataError(f"{shard}: not a readable tar shard ({exc}). Delete it and download again.") from None
    records = [{"key": k, **samples[k]} for k in order if "file" in samples[k] and samples[k].get("captions")]
    if not records:
        raise DataError(f"{shards[0].parent}: the shards hold no (image, txt) samples.")
    return records


@dataclass(frozen=True)
class HubGallery:
    """A webdataset gallery on the Hugging Face hub (CLIP_benchmark's conversions)."""

    repo_id: str
    split: str = "test"
    description: str = ""

    def __call__(self) -> Gallery:
        try:
            from huggingface_hub import snapshot_download

            local = snapshot_download(self.repo_id, repo_type="dataset", allow_patterns=[f"{self.split}/*"])
        except Exception as exc:  # noqa: BLE001 - offline, network, auth: one readable message
            raise DataError(
                f"Could not fetch the {self.description} gallery ({self.repo_id}, split {self.split}) from the "
                f"Hugging Face hub: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
                f"Offline, use `--gallery tuxpaint` or a local folder with a captions file, or point --gallery at "
                f"a local copy of the webdataset folder ({self.split}/0.tar …)."
            ) from exc
        return wds_gallery(local, self.split, name=self.repo_id.split("/")[-1])


GALLERIES: Registry[Callable[[], Gallery]] = Registry("gallery")
GALLERIES.register("tuxpaint", tuxpaint_gallery, "tuxpaint-stamps", "tuxpaint-stamps-default")
GALLERIES.register("coco-karpathy-5k", HubGallery("clip-benchmark/wds_mscoco_captions", "test",
                                                  "COCO Karpathy 5k test"), "coco", "mscoco")
GALLERIES.register("flickr30k-1k", HubGallery("clip-benchmark/wds_flickr30k", "test", "Flickr30k 1k test"),
                   "flickr30k", "flickr")


def load_gallery(spec: str | os.PathLike, captions_file: str | os.PathLike | None = None,
                 limit: int | None = None) -> Gallery:
    """A gallery from a registered name (``tuxpaint``, ``coco-karpathy-5k``, ``flickr30k-1k``), an
    image folder (with a captions file inside or given), a captions file (images beside it), or a
    local webdataset folder. Unknown names raise with close matches."""
    path = Path(str(spec)).expanduser()
    if path.is_file():
        gallery = folder_gallery(path.parent, path)
    elif path.is_dir():
        has_tars = any(path.glob("*/*.tar"))
        if has_tars and captions_file is None and not any((path / n).is_file() for n in CAPTION_FILE_NAMES):
            split = "test" if (path / "test").is_dir() else next(path.glob("*/*.tar")).parent.name
            gallery = wds_gallery(path, split)
        else:
            gallery = folder_gallery(path, captions_file)
    else:
        gallery = GALLERIES.get(str(spec))()
    return gallery.subset(limit)


__all__ = [
    "GALLERIES", "Gallery", "GalleryFeatures", "embed_images", "HubGallery", "ImageLoadError", "folder_gallery", "load_gallery",
    "open_image", "svg_rasteriser", "to_rgb", "tuxpaint_gallery", "wds_gallery",
]
