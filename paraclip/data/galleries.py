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

Images are opened with :func:`paraclip.data.images.open_image`, the decoder training uses too
(transparency composited on white, SVGs rasterised when a rasteriser exists and otherwise
skipped and counted). Files that are missing, empty, truncated or unreadable are reported in
:attr:`Gallery.problems` and left out; they never stop an evaluation.

Embeddings go through :func:`paraclip.features.embed_images`, so the evaluators and the
trainer share one on-disk cache keyed by model; a gallery's rows are keyed by a hash of each
image file's bytes (:meth:`Gallery.cache_key`), so galleries that reuse ids never collide.
A webdataset is extracted once into a folder named by a hash of its shards' bytes, so two
datasets in folders of the same name never share an extraction.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from paraclip.data.images import (
    IMAGE_SUFFIXES,
    NO_RASTERISER,
    Rasteriser,
    default_raster_cache,
    open_image,
    reason_kind,
    svg_rasteriser,
)
from paraclip.data.shards import shard_members
from paraclip.data.tables import iter_table
from paraclip.errors import DataError
from paraclip.features import embed_images, file_digest, image_file_key
from paraclip.files import atomic_write_text, cache_root, note_damaged_cache
from paraclip.registry import Registry

TUXPAINT_STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")


# -- tables (CSV / TSV / JSONL) --------------------------------------------------------------

def pick_field(record: dict[str, str], names: Sequence[str]) -> str | None:
    """The first of ``names`` present in ``record`` (case-insensitive), else None."""
    lowered = {k.lower(): k for k in record}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


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
    rasterise: Rasteriser | None = None

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
        features, problems = embed_images(encoder, todo, self.load_image, cache, batch_size, progress, workers,
                                          key_of=self.cache_key)
        self.problems.update(problems)
        ids = [i for i in self.ids if i not in self.problems]
        return GalleryFeatures(ids, features)

    def cache_key(self, image_id: str) -> str:
        """The feature-cache key of an image: a hash of its file's bytes (:func:`image_file_key`).

        Ids alone are not unique across galleries (two folders of ``0001.png``), nor are paths (a
        file replaced in place): only the content decides which cached row an image gets.
        Raises :class:`ImageLoadError` for a missing file.
        """
        return image_file_key(self.path_of(image_id), self.rasterise)

    def caption_rows(self, first_only: bool = False) -> list[tuple[str, str]]:
        """``(image_id, caption)`` for every caption (only each image's first with ``first_only``)."""
        return [(image_id, cap) for image_id, caps in zip(self.ids, self.captions)
                for cap in (caps[:1] if first_only else caps)]

    def captions_csv(self, first_only: bool = False) -> str:
        """The ``image_id,caption`` rows of :meth:`caption_rows` as CSV text with its header."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["image_id", "caption"])
        writer.writerows(self.caption_rows(first_only))
        return buf.getvalue()

    def write_captions(self, path: str | os.PathLike) -> int:
        """Write ``image_id,caption`` rows (one per caption): the input of ``paraclip paraphrase``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = self.caption_rows()
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["image_id", "caption"])
            writer.writerows(rows)
        return len(rows)


# -- loaders ---------------------------------------------------------------------------------

FILE_FIELDS = ("file", "filename", "image", "path", "image_path", "filepath")
CAPTION_FIELDS = ("caption", "text", "sentence", "title")
ID_FIELDS = ("image_id", "id")
CAPTION_FILE_NAMES = ("captions.csv", "captions.tsv", "captions.jsonl")


def find_captions_file(folder: str | os.PathLike) -> Path | None:
    """The captions file of a gallery folder (the first of :data:`CAPTION_FILE_NAMES` in it), or None:
    the one statement of where a folder gallery keeps its captions."""
    folder = Path(folder).expanduser()
    return next((folder / n for n in CAPTION_FILE_NAMES if (folder / n).is_file()), None)


def folder_gallery(folder: str | os.PathLike, captions_file: str | os.PathLike | None = None,
                   name: str | None = None) -> Gallery:
    """A folder of images with a captions file (``file, caption[, image_id]``; CSV/TSV/JSONL).

    ``file`` is relative to ``folder`` (absolute paths are allowed). Several rows may give
    several captions for the same file. The image id is ``image_id`` when given (so that ids
    match a paraphrase file and the trainer's feature cache), else the relative file path.
    """
    folder = Path(folder).expanduser()
    if captions_file is None:
        captions_file = find_captions_file(folder)
        if captions_file is None:
            raise DataError(f"{folder}: no captions file. Put one of {', '.join(CAPTION_FILE_NAMES)} in the "
                            f"folder (columns: file, caption, optional image_id) or pass it explicitly.")
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


def wds_gallery(root: str | os.PathLike, split: str = "test", name: str | None = None,
                extract_to: str | os.PathLike | None = None) -> Gallery:
    """A gallery in CLIP_benchmark's webdataset layout: ``root/{split}/*.tar`` whose samples hold
    an image (webp/png/jpg) and a ``txt`` with one caption per line.

    The images are extracted once to ``extract_to`` (default: under the paraclip cache, in a folder
    named by a hash of the shards' bytes) so that they can be opened by id; later calls reuse the
    extraction while it matches the shards. A damaged extraction (unreadable index, a missing or
    truncated image) is noted and extracted again.
    """
    root = Path(root).expanduser()
    shards = sorted((root / split).glob("*.tar"), key=lambda p: (len(p.stem), p.stem))
    if not shards:
        raise DataError(f"{root}/{split}: no .tar shards (expected CLIP_benchmark's webdataset layout "
                        f"{split}/0.tar, {split}/1.tar, …).")
    name = name or root.name
    content = shards_digest(shards)
    out = Path(extract_to) if extract_to else (
        cache_root() / "galleries" / f"{_slug(name)}-{content[:20]}" / split)
    records = read_extraction(out, content)
    if records is None:
        records = _extract_wds(shards, out)
        atomic_write_text(out / "index.json", json.dumps({"shards": content, "records": records}))
    ids = [f"{name}/{r['key']}" for r in records]
    return Gallery(name, ids, [r["captions"] for r in records], [out / r["file"] for r in records],
                   source=f"webdataset {root}/{split} ({len(shards)} shards)", rasterise=svg_rasteriser())


def shards_digest(shards: Sequence[Path]) -> str:
    """A hash of the shards' names and bytes: the key of their extraction (never the folder's name)."""
    return hashlib.sha256("|".join(f"{s.name}:{file_digest(s)}" for s in shards).encode()).hexdigest()


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-60:] or "wds"


WDS_RECORD_FIELDS = {"key": str, "file": str, "captions": list, "size": int}


def read_extraction(out: Path, content: str, fields: dict[str, type] = WDS_RECORD_FIELDS) -> list[dict] | None:
    """The records of an extraction of the shards whose hash is ``content``; None when there is none
    yet, it is of other shards, or it is damaged (noted). Each record must have ``fields`` of their
    types and its extracted file (of its recorded ``size``, when recorded)."""
    index_file = out / "index.json"
    if not index_file.exists():
        return None
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
        if not isinstance(index, dict) or not isinstance(index.get("records"), list):
            raise ValueError("not an extraction index")
        if index.get("shards") != content:
            return None  # an extraction of other shards (extract_to reused): extract again
        records = index["records"]
        for r in records:
            if not (isinstance(r, dict) and all(isinstance(r.get(f), kind) for f, kind in fields.items())):
                raise ValueError(f"malformed record {str(r)[:80]}")
            if (out / r["file"]).stat().st_size != r.get("size", (out / r["file"]).stat().st_size):
                raise ValueError(f"{r['file']} has {(out / r['file']).stat().st_size} bytes, not {r['size']}")
    except FileNotFoundError as exc:
        note_damaged_cache(index_file, f"extracted file missing: {exc.filename}")
        return None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        note_damaged_cache(index_file, f"webdataset extraction unreadable: {exc}")
        return None
    return records


def _extract_wds(shards: Sequence[Path], out: Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    samples: dict[str, dict] = {}  # key -> {"captions": [...], "file": name, "size": bytes}, in first-seen order
    for key, member in shard_members(shards):
        sample = samples.setdefault(key, {})
        if member.ext == "txt":
            text = member.read().decode("utf-8", "replace")
            sample["captions"] = [c.strip() for c in text.splitlines() if c.strip()]
        elif f".{member.ext}" in IMAGE_SUFFIXES:
            target = out / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.{member.ext}"
            data = member.read()
            target.write_bytes(data)
            sample["file"], sample["size"] = target.name, len(data)
    records = [{"key": k, **s} for k, s in samples.items() if "file" in s and s.get("captions")]
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
        if has_tars and captions_file is None and find_captions_file(path) is None:
            split = "test" if (path / "test").is_dir() else next(path.glob("*/*.tar")).parent.name
            gallery = wds_gallery(path, split)
        else:
            gallery = folder_gallery(path, captions_file)
    else:
        gallery = GALLERIES.get(str(spec))()
    return gallery.subset(limit)


__all__ = [
    "GALLERIES", "Gallery", "GalleryFeatures", "HubGallery", "find_captions_file", "folder_gallery", "load_gallery",
    "tuxpaint_gallery", "wds_gallery",
]
