"""Labelled image sets for zero-shot classification: images, class names and (optionally) templates.

A :class:`ClassificationSet` is a :class:`~paraclip.data.galleries.Gallery` (so images are
opened, skipped and cached exactly as for retrieval) plus one class index per image, the class
names and the dataset's own prompt templates if it has any. Sources:

* :func:`folder_dataset` — a folder with one sub-folder per class (``DIR/<class>/*.png``); the
  class name is the folder name with ``_`` read as a space, or line *i* of a ``classnames.txt``
  for the *i*-th folder in sorted order (torchvision ``ImageFolder``'s order); ImageNet's 1,000
  synset folders (``n01440764`` …) get open_clip's ``IMAGENET_CLASSNAMES``;
* :func:`wds_dataset` — CLIP_benchmark's webdataset layout: ``classnames.txt``,
  ``zeroshot_classification_templates.txt`` and ``{split}/N.tar`` whose samples hold an image
  (webp/png/jpg) and a ``.cls`` with the class index; from a local folder, or fetched from the
  Hugging Face hub (``clip-benchmark/wds_imagenet1k``, ``wds_cifar10``, ``wds_vtab-*`` …);
* :func:`tuxpaint_dataset` — the Tux Paint stamps, the class being the stamp's category folder
  (``animals``, ``vehicles`` …): the offline real-image set;
* :func:`miniworld_dataset` — rendered mini-world scenes of one object group, labelled by shape,
  colour or count.

Templates are format strings with ``{c}`` for the class name (CLIP_benchmark's convention).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from paraclip.data.galleries import Gallery, read_extraction, shards_digest, tuxpaint_gallery
from paraclip.data.images import IMAGE_SUFFIXES, svg_rasteriser
from paraclip.data.shards import shard_members
from paraclip.errors import DataError
from paraclip.files import atomic_write_text, cache_root

CLASSNAMES_FILE = "classnames.txt"
TEMPLATES_FILE = "zeroshot_classification_templates.txt"  # CLIP_benchmark's name


@dataclass
class ClassificationSet:
    """Images (a gallery), the class index of each image, the class names, and optional templates."""

    name: str
    gallery: Gallery
    labels: list[int]
    classnames: list[str]
    templates: list[str] | None = None
    source: str = ""
    label_of: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        if len(self.labels) != len(self.gallery):
            raise ValueError("one label per image")
        bad = next((lab for lab in self.labels if not 0 <= lab < len(self.classnames)), None)
        if bad is not None:
            raise DataError(f"{self.name}: class index {bad} is outside the {len(self.classnames)} class names "
                            f"(0-{len(self.classnames) - 1}); check {CLASSNAMES_FILE}.")
        self.label_of = dict(zip(self.gallery.ids, self.labels))
        self.source = self.source or self.gallery.source

    def __len__(self) -> int:
        return len(self.gallery)

    def class_counts(self) -> list[int]:
        counts = [0] * len(self.classnames)
        for lab in self.labels:
            counts[lab] += 1
        return counts

    def summary(self) -> str:
        left_out = len(self.gallery.skipped) + len(self.gallery.problems)
        return (f"dataset {self.name}: {len(self) - len(self.gallery.problems)} images in {len(self.classnames)} "
                f"classes ({self.source}); left out: {left_out}")


# -- text files -------------------------------------------------------------------------------

def read_lines(path: str | os.PathLike) -> list[str]:
    """Non-empty stripped lines of a UTF-8 text file."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found.") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_classnames(path: str | os.PathLike) -> list[str]:
    names = read_lines(path)
    if not names:
        raise DataError(f"{path}: no class names (expected one per line, in class-index order).")
    seen: dict[str, int] = {}
    for line_no, name in enumerate(names, 1):
        if name in seen:
            raise DataError(f"{path}:{line_no}: class name {name!r} already on line {seen[name]}; two classes with "
                            f"one name get the same text embedding, so give each a distinct name.", file_text=[name])
        seen[name] = line_no
    return names


def read_templates(path: str | os.PathLike) -> list[str]:
    """Prompt templates, one per line, each with ``{c}`` where the class name goes."""
    lines = read_lines(path)
    if not lines:
        raise DataError(f"{path}: no templates (expected one per line, e.g. 'a photo of a {{c}}.').")
    for line_no, template in enumerate(lines, 1):
        check_template(template, f"{path}:{line_no}")
    return lines


def check_template(template: str, where: str) -> None:
    if "{c}" not in template:
        raise DataError(f"{where}: template {template!r} has no {{c}} (where the class name goes), e.g. "
                        f"'a photo of a {{c}}.'.", file_text=[template])
    try:
        template.format(c="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise DataError(f"{where}: template {template!r} is not a valid format string ({exc!s}); only {{c}} may "
                        f"appear in braces (write literal braces as {{{{ and }}}}).", file_text=[template]) from None


def _own_templates(root: Path) -> list[str] | None:
    path = root / TEMPLATES_FILE
    return read_templates(path) if path.is_file() else None


# -- folder per class -------------------------------------------------------------------------

def folder_dataset(root: str | os.PathLike, name: str | None = None) -> ClassificationSet:
    """``root/<class>/**/<image>``; class names from the folder names or ``root/classnames.txt``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder does not exist.")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root}: no class folders (expected one sub-folder of images per class, e.g. "
                        f"{root}/dog/1.jpg, {root}/cat/2.jpg).")
    if (root / CLASSNAMES_FILE).is_file():
        classnames = read_classnames(root / CLASSNAMES_FILE)
        if len(classnames) != len(folders):
            raise DataError(f"{root / CLASSNAMES_FILE}: {len(classnames)} class names for {len(folders)} class "
                            f"folders; give one name per folder, in the folders' sorted order "
                            f"({', '.join(f.name for f in folders[:4])}{' …' if len(folders) > 4 else ''}).")
    elif _imagenet_synsets([f.name for f in folders]):
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

        classnames = list(IMAGENET_CLASSNAMES)  # ImageNet's val folders (n01440764 …) in synset order
    else:
        classnames = [f.name.replace("_", " ") for f in folders]
    ids, paths, labels = [], [], []
    for label, folder in enumerate(folders):
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
            ids.append(path.relative_to(root).as_posix())
            paths.append(path)
            labels.append(label)
    if not ids:
        raise DataError(f"{root}: the class folders hold no images ({', '.join(IMAGE_SUFFIXES)}).")
    name = name or root.name
    gallery = Gallery(name, ids, [[classnames[lab]] for lab in labels], paths, source=f"folder {root}",
                      rasterise=svg_rasteriser())
    return ClassificationSet(name, gallery, labels, classnames, _own_templates(root))


def _imagenet_synsets(names: Sequence[str]) -> bool:
    return len(names) == 1000 and all(len(n) == 9 and n[0] == "n" and n[1:].isdigit() for n in names)


# -- CLIP_benchmark webdataset ----------------------------------------------------------------

def wds_dataset(root: str | os.PathLike, split: str = "test", name: str | None = None,
                extract_to: str | os.PathLike | None = None) -> ClassificationSet:
    """CLIP_benchmark's webdataset layout; images are extracted once (under the cache) and reused."""
    root = Path(root).expanduser()
    if not (root / CLASSNAMES_FILE).is_file():
        raise DataError(f"{root}: no {CLASSNAMES_FILE} (CLIP_benchmark's classification layout has "
                        f"{CLASSNAMES_FILE}, {TEMPLATES_FILE} and {split}/0.tar …).")
    classnames = read_classnames(root / CLASSNAMES_FILE)
    shards = sorted((root / split).glob("*.tar"), key=lambda p: (len(p.stem), p.stem))
    if not shards:
        raise DataError(f"{root}/{split}: no .tar shards (expected {split}/0.tar, {split}/1.tar, …).")
    name = name or root.name
    content = shards_digest(shards)  # keyed by the shards' bytes, like the retrieval galleries' extractions
    out = Path(extract_to) if extract_to else cache_root() / "classification" / f"{name}-{content[:20]}" / split
    records = read_extraction(out, content, {"key": str, "file": str, "label": int})
    if records is None:
        records = _extract_labelled(shards, out)
        atomic_write_text(out / "index.json", json.dumps({"shards": content, "records": records}))
    ids = [f"{name}/{r['key']}" for r in records]
    labels = [int(r["label"]) for r in records]
    for r, lab in zip(records, labels):
        if not 0 <= lab < len(classnames):
            raise DataError(f"{r['shard']}: sample {r['key']!r} has class {lab}, but {root / CLASSNAMES_FILE} "
                            f"names {len(classnames)} classes (0-{len(classnames) - 1}).")
    gallery = Gallery(name, ids, [[classnames[lab]] for lab in labels], [out / r["file"] for r in records],
                      source=f"webdataset {root}/{split} ({len(shards)} shards)", rasterise=svg_rasteriser())
    return ClassificationSet(name, gallery, labels, classnames, _own_templates(root))


def _extract_labelled(shards: Sequence[Path], out: Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    samples: dict[str, dict] = {}
    for key, member in shard_members(shards):
        sample = samples.setdefault(key, {"shard": str(member.shard)})
        if member.ext == "cls":
            text = member.read().decode("utf-8", "replace").strip()
            try:
                sample["label"] = int(text)
            except ValueError:
                raise DataError(f"{member.shard}: {member.name} holds {text[:40]!r}, not a class index "
                                f"(a whole number).", file_text=[text[:40]]) from None
        elif f".{member.ext}" in IMAGE_SUFFIXES and "file" not in sample:
            target = out / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.{member.ext}"
            target.write_bytes(member.read())
            sample["file"] = target.name
    records = [{"key": k, **s} for k, s in samples.items() if "file" in s and "label" in s]
    if not records:
        raise DataError(f"{shards[0].parent}: the shards hold no (image, cls) samples.")
    return records


@dataclass(frozen=True)
class HubClassification:
    """A CLIP_benchmark classification set on the Hugging Face hub (``clip-benchmark/wds_*``)."""

    repo_id: str
    split: str = "test"

    def __call__(self) -> ClassificationSet:
        try:
            from huggingface_hub import snapshot_download

            local = snapshot_download(self.repo_id, repo_type="dataset",
                                      allow_patterns=[f"{self.split}/*", CLASSNAMES_FILE, TEMPLATES_FILE])
        except Exception as exc:  # noqa: BLE001 - offline, network, auth: one readable message
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise DataError(
                f"Could not fetch {self.repo_id} (split {self.split}) from the Hugging Face hub: "
                f"{type(exc).__name__}: {first}. Offline, use --dataset tuxpaint, miniworld-shape/-colour/-count, "
                f"a folder with one sub-folder per class, or a local copy of the webdataset folder."
            ) from exc
        return wds_dataset(local, self.split, name=self.repo_id.split("/")[-1])


# -- offline sets -----------------------------------------------------------------------------

def tuxpaint_dataset(root: str | os.PathLike | None = None) -> ClassificationSet:
    """Tux Paint stamps labelled by category (the first folder under the stamps root)."""
    gallery = tuxpaint_gallery(root)
    categories = sorted({i.split("/")[1] for i in gallery.ids if i.count("/") >= 2})
    keep = [n for n, i in enumerate(gallery.ids) if i.count("/") >= 2]  # stamps directly in the root have none
    if len(categories) < 2:
        raise DataError(f"{gallery.source}: fewer than two stamp categories; classification needs at least two.")
    index = {c: n for n, c in enumerate(categories)}
    ids = [gallery.ids[n] for n in keep]
    labels = [index[i.split("/")[1]] for i in ids]
    classnames = [c.replace("_", " ") for c in categories]
    sub = Gallery("tuxpaint-categories", ids, [[classnames[lab]] for lab in labels], [gallery.paths[n] for n in keep],
                  source=gallery.source, skipped=dict(gallery.skipped), rasterise=gallery.rasterise)
    return ClassificationSet("tuxpaint-categories", sub, labels, classnames)


MINIWORLD_ATTRIBUTES = ("shape", "colour", "count")
MINIWORLD_TEMPLATES = {
    "shape": ["a {c}.", "a picture of a {c}.", "a drawing of a {c}."],
    "colour": ["a {c} shape.", "a picture of a {c} object.", "something {c}."],
    "count": ["{c}.", "a picture of {c}.", "a drawing of {c}."],
}
COUNT_CLASSNAMES = ("one object", "two objects", "three objects")


def miniworld_dataset(attribute: str, per_class: int = 50, seed: int = 0, image_size: int = 64,
                      out: str | os.PathLike | None = None) -> ClassificationSet:
    """Rendered scenes of one object group, ``per_class`` per value of ``attribute``; the other
    attributes are drawn at random (a pure function of the arguments; PNGs cached under ``out``)."""
    import numpy as np

    from paraclip.miniworld.world import COLOURS, SHAPES, SIZES, TEXTURES, ObjectGroup, SceneSpec, make_scene

    if attribute not in MINIWORLD_ATTRIBUTES:
        raise DataError(f"mini-world attribute {attribute!r}: use one of {', '.join(MINIWORLD_ATTRIBUTES)}.")
    values = {"shape": list(SHAPES), "colour": list(COLOURS), "count": [1, 2, 3]}[attribute]
    classnames = list(COUNT_CLASSNAMES) if attribute == "count" else [str(v) for v in values]
    name = f"miniworld-{attribute}"
    out = Path(out) if out else cache_root() / "classification" / f"{name}-s{seed}-n{per_class}-px{image_size}"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, MINIWORLD_ATTRIBUTES.index(attribute)])
    ids, paths, labels = [], [], []
    for label, value in enumerate(values):
        for k in range(per_class):
            drawn = {"count": int(rng.integers(1, 4)), "size": str(rng.choice(SIZES)),
                     "colour": str(rng.choice(list(COLOURS))), "texture": str(rng.choice(TEXTURES)),
                     "shape": str(rng.choice(SHAPES))}
            drawn[attribute] = value
            spec = SceneSpec((ObjectGroup(**drawn),))
            index = label * per_class + k
            path = out / f"{index:05d}.png"
            if not path.is_file():
                make_scene(seed, name, index, image_size, spec=spec).image().save(path)
            ids.append(f"{name}/{index:05d}")
            paths.append(path)
            labels.append(label)
    gallery = Gallery(name, ids, [[classnames[lab]] for lab in labels], paths,
                      source=f"mini-world scenes by {attribute} (seed {seed}, {per_class} per class)")
    return ClassificationSet(name, gallery, labels, classnames, list(MINIWORLD_TEMPLATES[attribute]))


# -- one entry point --------------------------------------------------------------------------

HUB_ALIASES = {"imagenet1k": "wds_imagenet1k", "imagenet": "wds_imagenet1k", "cifar10": "wds_cifar10",
               "cifar100": "wds_cifar100"}


def load_classification_dataset(spec: str | os.PathLike, split: str = "test") -> ClassificationSet:
    """A dataset from a folder (class sub-folders, or CLIP_benchmark's webdataset layout), ``tuxpaint``,
    ``miniworld-shape`` / ``-colour`` / ``-count``, or a CLIP_benchmark hub set (``imagenet1k``,
    ``cifar10``, ``cifar100``, ``wds_vtab-…`` or ``clip-benchmark/wds_…``)."""
    text = str(spec).strip()
    path = Path(text).expanduser()
    if path.is_dir():
        if any(path.glob("*/*.tar")):  # webdataset shards (wds_dataset says so if classnames.txt is missing)
            return wds_dataset(path, split if (path / split).is_dir() else next(path.glob("*/*.tar")).parent.name)
        return folder_dataset(path)
    lowered = text.lower()
    if lowered in ("tuxpaint", "tuxpaint-categories"):
        return tuxpaint_dataset()
    if lowered.startswith("miniworld-"):
        attribute = lowered.split("-", 1)[1].replace("color", "colour")
        return miniworld_dataset(attribute)
    repo = HUB_ALIASES.get(lowered, text)
    if repo.startswith("wds_"):
        repo = f"clip-benchmark/{repo}"
    if repo.startswith("clip-benchmark/wds_"):
        return HubClassification(repo, split)()
    raise DataError(f"--dataset {text!r}: not a folder and not a known dataset. Use a folder with one sub-folder "
                    f"of images per class, a CLIP_benchmark webdataset folder, tuxpaint, miniworld-shape, "
                    f"miniworld-colour, miniworld-count, or a hub set: imagenet1k, cifar10, cifar100, "
                    f"wds_vtab-<name> (online).", file_text=[text])


__all__ = ["CLASSNAMES_FILE", "ClassificationSet", "HubClassification", "MINIWORLD_ATTRIBUTES", "TEMPLATES_FILE",
           "folder_dataset", "load_classification_dataset", "miniworld_dataset", "read_classnames",
           "read_templates", "tuxpaint_dataset", "wds_dataset"]
