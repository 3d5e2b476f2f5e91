"""Training data: paraphrase records joined to images (or cached image features), tokenised once.

* :func:`read_records` reads the JSONL written by ``paraclip paraphrase`` (fields
  ``image_id, caption, paraphrase_1, paraphrase_2, status``; the official release's files,
  without ``status``, read too). Records whose paraphrasing failed (``status`` other than
  ``ok``), that a reviewer rejected, or that lack a text the loss needs are skipped and
  counted in a :class:`DataReport` — never dropped silently. The rule is
  :func:`paraclip.paraphrase.records.trainable_problem`'s (legacy statuses read by today's names).
* :class:`ImageIndex` maps image ids to files: a folder (files named ``<image_id>.<ext>`` or
  by relative path), a CSV/TSV/JSONL with id and path columns, or webdataset ``.tar`` shards, and
  decodes them with :func:`paraclip.data.images.open_image` like the galleries do (transparency
  composited on white, SVGs rasterised).
* :class:`BatchSchedule` makes the order of examples a pure function of (seed, step), so a
  resumed run sees exactly the batches the uninterrupted run would have seen.
* :class:`PixelStore` decodes every image once into a uint8 tensor (the resize/crop part of
  the model's preprocessing) and normalises batches on the fly — the fast path for training
  both towers on small image sets such as the mini-world.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from paraclip.data.images import IMAGE_SUFFIXES, default_raster_cache, is_image_name, open_image, svg_rasteriser
from paraclip.data.shards import ShardMember, shard_members
from paraclip.data.tables import iter_delimited, iter_jsonl
from paraclip.errors import DataError
from paraclip.paraphrase.records import TEXT_FIELDS, trainable_problem

ID_COLUMNS = ("image_id", "id", "key", "image_key")
PATH_COLUMNS = ("path", "filepath", "file", "image_path", "image", "filename", "file_name")


@dataclass
class Record:
    image_id: str
    caption: str
    paraphrase_1: str
    paraphrase_2: str
    line: int


@dataclass
class DataReport:
    """What happened to every input line: kept, or skipped and why (with example line numbers)."""

    file: str
    lines: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[int | str]] = field(default_factory=dict)
    held_out: int = 0
    repeated: list[int] = field(default_factory=list)  # lines repeating an earlier record's image_id + caption

    def skip(self, reason: str, where: int | str) -> None:
        self.skipped[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < 5:
            ex.append(where)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "lines": self.lines, "kept": self.kept, "held_out": self.held_out,
                "skipped": dict(self.skipped), "examples": self.examples, "repeated": len(self.repeated),
                "repeated_examples": self.repeated[:5]}

    def summary(self) -> str:
        parts = [f"{self.kept} records kept of {self.lines} lines in {self.file}"]
        if self.held_out:
            parts.append(f"{self.held_out} held out for validation")
        for reason, n in sorted(self.skipped.items()):
            parts.append(f"{n} skipped ({reason}; e.g. {', '.join(map(str, self.examples.get(reason, [])))})")
        if self.repeated:
            parts.append(f"note: {len(self.repeated)} kept records repeat an earlier record's image_id and caption "
                         f"(e.g. line {', '.join(map(str, self.repeated[:3]))}); remove them if they were not meant")
        return "; ".join(parts)


def read_records(path: str | Path, text_fields: Sequence[str], max_records: int | None = None,
                 report: DataReport | None = None) -> tuple[list[Record], DataReport]:
    """Read usable records from a paraphrase JSONL; ``text_fields`` are the texts the loss needs."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"Training data {path} does not exist. Point `data` at the JSONL written by "
                        f"`paraclip paraphrase` (fields image_id, caption, paraphrase_1, paraphrase_2, status).")
    report = report or DataReport(str(path))
    records: list[Record] = []
    seen: set[tuple[str, str]] = set()
    for line_no, obj in iter_jsonl(path):
        report.lines += 1
        record = _parse_record(obj, path, line_no, text_fields, report)
        if record is not None:
            key = (record.image_id, record.caption)
            if key in seen:
                report.repeated.append(line_no)
            seen.add(key)
            records.append(record)
            if max_records is not None and len(records) >= max_records:
                break
    report.kept = len(records)
    if not records:
        detail = "; ".join(f"{n} {r}" for r, n in report.skipped.items()) or "the file has no records"
        raise DataError(f"No usable training records in {path} ({report.lines} lines: {detail}). The loss needs "
                        f"the fields {', '.join(['image_id', *text_fields])} with status 'ok'.")
    return records, report


def _parse_record(obj: dict, path: Path, line_no: int, text_fields: Sequence[str],
                  report: DataReport) -> Record | None:
    image_id = obj.get("image_id")
    if isinstance(image_id, (dict, list)):
        raise DataError(f"{path}:{line_no}: field 'image_id' must be text or a number, found "
                        f"{type(image_id).__name__}.")
    if image_id is None or str(image_id).strip() == "":
        raise DataError(f"{path}:{line_no}: field 'image_id' is missing or empty; training joins every caption "
                        f"to its image by image_id. Give the paraphrase input an image-id column.")
    for name in ("status", "review", "review_status"):
        if isinstance(obj.get(name), (dict, list)):
            raise DataError(f"{path}:{line_no}: field {name!r} must be text, found {type(obj[name]).__name__}.")
    problem = trainable_problem(obj, text_fields=())  # the outcome and the review first: a failed record may lack texts
    if problem is None:
        for name in TEXT_FIELDS:
            value = obj.get(name)
            if value is not None and not isinstance(value, str):
                raise DataError(f"{path}:{line_no}: field {name!r} must be a string, found {type(value).__name__}.")
        problem = trainable_problem(obj, text_fields)
    if problem is not None:
        report.skip(problem, line_no)
        return None
    texts = {name: (obj.get(name) or "").strip() for name in TEXT_FIELDS}
    return Record(str(image_id).strip(), texts["caption"], texts["paraphrase_1"], texts["paraphrase_2"], line_no)


def split_heldout(records: list[Record], fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """Hold out a fraction of *images* (all captions of an image go to the same side)."""
    if fraction <= 0:
        return records, []

    def bucket(image_id: str) -> float:
        h = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2 ** 64

    train = [r for r in records if bucket(r.image_id) >= fraction]
    held = [r for r in records if bucket(r.image_id) < fraction]
    return train, held


def records_fingerprint(records: Sequence[Record]) -> str:
    """Identity of the training set (ids and texts, in order), stored in checkpoints."""
    h = hashlib.sha256()
    for r in records:
        h.update(f"{r.image_id}\x1f{r.caption}\x1f{r.paraphrase_1}\x1f{r.paraphrase_2}\x1e".encode())
    return h.hexdigest()[:16]


# -- images ------------------------------------------------------------------------------------

ImageLoader = Callable[[str], Any]  # image id -> PIL image (or numpy HWC uint8 array)


class ImageIndex:
    """Where each image id's file is, and how to open it (with :func:`paraclip.data.images.open_image`,
    the decoder the galleries use, so an image decodes the same way for training and evaluation)."""

    def __init__(self, locations: Mapping[str, Path | ShardMember], source: str):
        self.locations = dict(locations)
        self.source = source
        self._rasterise = None  # looked up on the first SVG

    @classmethod
    def from_spec(cls, spec: str | Path) -> "ImageIndex":
        path = Path(spec).expanduser()
        if not path.exists():
            raise DataError(f"Image source {path} does not exist. `images` is a folder of images, a CSV/JSONL "
                            f"listing image_id and path, or webdataset .tar shards.")
        if path.is_dir():
            files = [p for p in sorted(path.rglob("*")) if p.is_file()]
            images = [p for p in files if is_image_name(p)]
            if images:
                return cls(_folder_locations(path, images), f"folder {path}")
            shards = [p for p in files if p.suffix == ".tar"]
            if shards:
                return cls(_tar_locations(shards), f"{len(shards)} tar shards in {path}")
            raise DataError(f"Image folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}) and no .tar shards.")
        suffix = path.suffix.lower()
        if suffix == ".tar":
            return cls(_tar_locations([path]), f"tar shard {path}")
        if suffix in (".csv", ".tsv"):
            return cls(_table_locations(path, iter_delimited(path)), f"table {path}")
        if suffix in (".jsonl", ".json"):
            return cls(_table_locations(path, iter_jsonl(path)), f"table {path}")
        raise DataError(f"Cannot read image source {path}: expected a folder, .csv/.tsv, .jsonl or .tar.")

    def __contains__(self, image_id: str) -> bool:
        return image_id in self.locations

    def __len__(self) -> int:
        return len(self.locations)

    def describe(self, image_id: str) -> str:
        loc = self.locations.get(image_id)
        if isinstance(loc, ShardMember):
            return f"{loc.shard}@{loc.offset}"
        return str(loc)

    def load(self, image_id: str):
        """The image as an RGB PIL image (KeyError for an unknown id; :class:`ImageLoadError`, a
        ValueError, for a file that cannot be decoded)."""
        loc = self.locations[image_id]
        if self._rasterise is None and Path(getattr(loc, "name", loc)).suffix.lower() == ".svg":
            self._rasterise = svg_rasteriser()
        if isinstance(loc, ShardMember):
            return open_image(f"{loc.shard}/{loc.name}", self._rasterise, default_raster_cache(), data=loc.read())
        return open_image(loc, self._rasterise, default_raster_cache())


def _folder_locations(root: Path, files: list[Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    stems = Counter(p.stem for p in files)
    for p in files:
        rel = p.relative_to(root).as_posix()
        out[rel] = p
        if stems[p.stem] == 1:
            out.setdefault(p.stem, p)
            out.setdefault(p.name, p)
    return out


def _tar_locations(shards: list[Path]) -> dict[str, ShardMember]:
    """Image members by webdataset key (and by bare stem, when that is not taken)."""
    out: dict[str, ShardMember] = {}
    for key, member in shard_members(shards):
        if is_image_name(member.name):
            out[key] = member
            out.setdefault(key.rpartition("/")[2], member)
    return out


def _table_locations(path: Path, rows: Iterable[tuple[int, dict]]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    id_col = path_col = None
    for line_no, row in rows:
        if id_col is None:
            keys = {str(k).strip().lower(): k for k in row}
            id_col = next((keys[c] for c in ID_COLUMNS if c in keys), None)
            path_col = next((keys[c] for c in PATH_COLUMNS if c in keys), None)
            if id_col is None or path_col is None:
                found = ", ".join(map(str, row))
                raise DataError(f"{path}: needs an image-id column ({' / '.join(ID_COLUMNS)}) and a path column "
                                f"({' / '.join(PATH_COLUMNS)}); found {found}.", file_text=[found])
        image_id, file = row.get(id_col), row.get(path_col)
        if image_id in (None, "") or file in (None, ""):
            raise DataError(f"{path}:{line_no}: empty {id_col!r} or {path_col!r}.")
        p = Path(str(file)).expanduser()
        out[str(image_id).strip()] = p if p.is_absolute() else path.parent / p
    if id_col is None:
        raise DataError(f"{path} lists no images.")
    return out


def check_image_ids(records: list[Record], index_has: Callable[[str], bool], data_file: str, source: str,
                    skip_missing: bool, report: DataReport) -> list[Record]:
    """Records whose image exists; a clear error (or a reported skip) for the others."""
    missing = [r for r in records if not index_has(r.image_id)]
    if not missing:
        return records
    examples = ", ".join(f"{r.image_id!r} (line {r.line})" for r in missing[:3])
    if len(missing) == len(records):
        raise DataError(f"None of the {len(records)} image ids in {data_file} match an image in {source} "
                        f"(e.g. {examples}). Check that `images` points at the right images and that files are "
                        f"named by image_id (or listed in a CSV/JSONL with image_id and path columns).")
    if not skip_missing:
        raise DataError(f"{len(missing)} of {len(records)} records in {data_file} have no image in {source} "
                        f"(e.g. {examples}). Add the images, or set `skip_missing_images: true` to skip these "
                        f"records (they are counted in the run's data report).")
    for r in missing:
        report.skip("image missing", r.line)
    missing_lines = {r.line for r in missing}
    return [r for r in records if r.line not in missing_lines]


# -- tokens ------------------------------------------------------------------------------------

def tokenize(texts: Sequence[str], tokenizer, batch: int = 4096) -> torch.Tensor:
    """Token ids of ``texts`` as int32 [n, context], trimmed to the longest sequence."""
    if not texts:
        return torch.zeros(0, 1, dtype=torch.int32)
    chunks = [tokenizer(list(texts[i:i + batch])).to(torch.int32) for i in range(0, len(texts), batch)]
    tokens = torch.cat(chunks)
    used = int((tokens != 0).any(0).nonzero().max().item()) + 1 if tokens.numel() else 1
    return tokens[:, :used].contiguous()


# -- order of examples -------------------------------------------------------------------------

class BatchSchedule:
    """Which records form the global batch of each step: a pure function of (seed, step).

    Each epoch is a fresh permutation (seeded by seed and epoch); the last incomplete batch of
    an epoch is dropped so every step has the full global batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        if batch_size > n:
            raise DataError(f"batch_size {batch_size} is larger than the {n} usable training records; "
                            f"lower batch_size (in-batch negatives need a full batch).")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.steps_per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch within epoch) of 0-based ``step``."""
        return divmod(step, self.steps_per_epoch)

    def indices(self, step: int) -> np.ndarray:
        epoch, batch = self.position(step)
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch, 0x5EED])
            self._epoch, self._perm = epoch, rng.permutation(self.n)
        return self._perm[batch * self.batch_size:(batch + 1) * self.batch_size]

    def choices(self, step: int, k: int) -> np.ndarray:
        """Per-example random choice in [0, k) for this step's global batch (LaCLIP's text draw)."""
        return np.random.default_rng([self.seed, step, 0xC401CE]).integers(0, k, size=self.batch_size)


# -- pixels ------------------------------------------------------------------------------------

def split_preprocess(preprocess) -> tuple[Callable | None, torch.Tensor | None, torch.Tensor | None]:
    """(PIL stage, mean, std) of an open_clip eval transform, or (None, None, None) if not recognised.

    The PIL stage (resize, crop, RGB) runs once per image; ToTensor + Normalize run per batch,
    which is numerically the same as applying the whole transform to each image.
    """
    from torchvision import transforms as T

    steps = getattr(preprocess, "transforms", None)
    if not steps:
        return None, None, None
    idx = next((i for i, t in enumerate(steps) if isinstance(t, T.ToTensor)), None)
    if idx is None or idx + 2 != len(steps) or not isinstance(steps[idx + 1], T.Normalize):
        return None, None, None
    norm = steps[idx + 1]
    pil_stage = T.Compose(steps[:idx])
    mean = torch.tensor(norm.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(norm.std, dtype=torch.float32).view(1, -1, 1, 1)
    return pil_stage, mean, std


class PixelStore:
    """Every image decoded once, kept as uint8 [n, 3, H, W]; ``batch(rows)`` gives model-ready pixels."""

    def __init__(self, pixels: torch.Tensor, mean: torch.Tensor | None, std: torch.Tensor | None):
        self.pixels, self.mean, self.std = pixels, mean, std

    @classmethod
    def build(cls, image_ids: Sequence[str], load: ImageLoader, preprocess, threads: int = 4,
              on_error: Callable[[str, Exception], None] | None = None) -> tuple["PixelStore", list[str]]:
        """Decode ``image_ids``; returns the store and the ids that failed (rows left black)."""
        pil_stage, mean, std = split_preprocess(preprocess)
        failed: list[str] = []

        def one(image_id: str):
            try:
                img = load(image_id)
                if isinstance(img, np.ndarray):
                    from PIL import Image

                    img = Image.fromarray(img)
                if pil_stage is None:
                    return preprocess(img)
                arr = np.asarray(pil_stage(img), dtype=np.uint8)
                return torch.from_numpy(arr.copy()).permute(2, 0, 1)
            except (OSError, ValueError, KeyError, SyntaxError) as exc:
                failed.append(image_id)
                if on_error is not None:
                    on_error(image_id, exc)
                return None

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            tensors = list(pool.map(one, image_ids))
        template = next((t for t in tensors if t is not None), None)
        if template is None:
            raise DataError(f"None of the {len(image_ids)} images could be read (e.g. {failed[:3]}).")
        tensors = [t if t is not None else torch.zeros_like(template) for t in tensors]
        return cls(torch.stack(tensors), mean if pil_stage is not None else None,
                   std if pil_stage is not None else None), failed

    def batch(self, rows: torch.Tensor | np.ndarray) -> torch.Tensor:
        px = self.pixels[torch.as_tensor(rows, dtype=torch.long)]
        if self.mean is None:
            return px.float()
        return (px.float() / 255.0 - self.mean) / self.std

    def nbytes(self) -> int:
        return self.pixels.numel() * self.pixels.element_size()


def estimate_pixel_bytes(n_images: int, image_size: int | Sequence[int]) -> int:
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)[:2]
    return n_images * 3 * h * w


class StepPixels(torch.utils.data.Dataset):
    """Pixels of this process's share of step ``i``'s batch, decoded on demand (for DataLoader workers).

    Used when the images do not fit in memory; the order is still :class:`BatchSchedule`'s.
    """

    def __init__(self, schedule: BatchSchedule, image_rows: np.ndarray, image_ids: Sequence[str],
                 load: ImageLoader, preprocess, local: slice):
        self.schedule, self.image_rows, self.image_ids = schedule, image_rows, list(image_ids)
        self.load, self.preprocess, self.local = load, preprocess, local

    def __len__(self) -> int:  # indexed by step; the sampler decides which steps
        return 2 ** 62

    def __getitem__(self, step: int) -> torch.Tensor | str:
        """The pixels, or why an image could not be read: returned, not raised, because a DataLoader
        worker's exception reaches the main process with the worker's traceback pasted into its message."""
        rows = self.image_rows[self.schedule.indices(step)[self.local]]
        images = []
        for r in rows:
            image_id = self.image_ids[r]
            try:
                images.append(self.preprocess(self.load(image_id)))
            except (OSError, ValueError, KeyError, SyntaxError) as exc:  # changed since the check before training
                return (f"Image {image_id!r} could not be read at step {step + 1} ({exc}), though it could when "
                        f"training started. Fix or remove it and rerun: training resumes from the last checkpoint.")
        return torch.stack(images)
