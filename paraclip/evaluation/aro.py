"""VG-Relation and VG-Attribution (ARO; Yuksekgonul et al., ICLR 2023).

Each example is an image region with a true caption and a false one (relation or attributes
swapped). Following ARO's code (github.com/mertyg/vision-language-models-are-bows,
``dataset_zoo/aro_datasets.py``):

* annotations are ``visual_genome_relation.json`` / ``visual_genome_attribution.json`` — a list
  of records with ``image_path`` (relative to ``images/``), ``bbox_x, bbox_y, bbox_w, bbox_h``,
  ``true_caption``, ``false_caption`` and ``relation_name`` (VG-R) or ``attributes`` (VG-A, a
  pair; the group is ``"{a0}_{a1}"``);
* the image (converted to RGB) is cropped to the box before encoding with PIL's ``crop((x, y,
  x + w, y + h))``, as ARO's ``VG_Relation.__getitem__`` / ``VG_Attribution.__getitem__`` do:
  PIL rounds the corners to whole pixels and fills the part of a box past the image border with
  black, so such boxes are padded, not clipped (the crop keeps the box's size and the region's
  position inside it);
* an example is correct when ``argmax([score(false), score(true)]) == 1``: the true caption
  scores strictly higher (a tie is wrong);
* the reported number is a macro-average of per-group accuracy. VG-R leaves out ARO's list of
  symmetric relations (the notebook ``Replicate ARO! VG-Relation, VG-Attribution.ipynb``); VG-A
  keeps attribute pairs with at least 25 examples (``evaluate_scores`` of ``VG_Attribution``).

Group eligibility is fixed from the full annotation, so bootstrap resamples average over the
same groups (a group absent from a resample is skipped in that resample).

The same evaluator takes any in-memory examples (e.g. the mini-world's relation/attribute-swap
pairs) through :class:`AROExample`.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from paraclip.data.images import ImageLoadError, open_image
from paraclip.errors import DataError
from paraclip.evaluation.base import Evaluator, ItemScores, select
from paraclip.features import embed_images
from paraclip.files import read_json

# ARO's list of relations excluded from the VG-Relation macro accuracy (symmetric or otherwise
# order-insensitive relations), as given in ARO's notebook "Replicate ARO! VG-Relation,
# VG-Attribution.ipynb".
ARO_SYMMETRIC_RELATIONS = frozenset([
    "adjusting", "attached to", "between", "bigger than", "biting", "boarding", "brushing", "chewing",
    "cleaning", "climbing", "close to", "coming from", "coming out of", "contain", "crossing", "dragging",
    "draped over", "drinking", "drinking from", "driving", "driving down", "driving on", "eating from",
    "eating in", "enclosing", "exiting", "facing", "filled with", "floating in", "floating on", "flying",
    "flying above", "flying in", "flying over", "flying through", "full of", "going down", "going into",
    "going through", "grazing in", "growing in", "growing on", "guiding", "hanging from", "hanging in",
    "hanging off", "hanging over", "higher than", "holding onto", "hugging", "in between", "jumping off",
    "jumping on", "jumping over", "kept in", "larger than", "leading", "leaning over", "leaving", "licking",
    "longer than", "looking in", "looking into", "looking out", "looking over", "looking through",
    "lying next to", "lying on top of", "making", "mixed with", "mounted on", "moving", "on the back of",
    "on the edge of", "on the front of", "on the other side of", "opening", "painted on", "parked at",
    "parked beside", "parked by", "parked in", "parked in front of", "parked near", "parked next to",
    "perched on", "petting", "piled on", "playing", "playing in", "playing on", "playing with", "pouring",
    "reaching for", "reading", "reflected on", "riding on", "running in", "running on", "running through",
    "seen through", "sitting behind", "sitting beside", "sitting by", "sitting in front of", "sitting near",
    "sitting next to", "sitting under", "skiing down", "skiing on", "sleeping in", "sleeping on",
    "smiling at", "sniffing", "splashing", "sprinkled on", "stacked on", "standing against",
    "standing around", "standing behind", "standing beside", "standing in front of", "standing near",
    "standing next to", "staring at", "stuck in", "surrounding", "swimming in", "swinging", "talking to",
    "topped with", "touching", "traveling down", "traveling on", "tying", "typing on", "underneath",
    "wading in", "waiting for", "walking across", "walking by", "walking down", "walking next to",
    "walking through", "working in", "working on", "worn on", "wrapped around", "wrapped in", "by", "of",
    "near", "next to", "with", "beside", "on the side of", "around",
])
VGA_MIN_GROUP_SIZE = 25  # ARO's VG_Attribution.evaluate_scores drops attribute pairs with < 25 examples

ANNOTATION_FILES = {"vg-relation": "visual_genome_relation.json", "vg-attribution": "visual_genome_attribution.json"}
# Google Drive ids used by ARO's own download code (dataset_zoo/aro_datasets.py).
ARO_DRIVE_IDS = {
    "visual_genome_relation.json": "1kX2iCHEv0CADL8dSO1nMdW-V0NqIAiP3",
    "visual_genome_attribution.json": "13tWvOrNOLHxl3Rm9cR3geAdHx2qR3-Tw",
    "vgr_vga_images.zip": "1qaPlrwhGNMrR3a11iopZUT_GPP_LrgP9",
}


@dataclass(frozen=True)
class AROExample:
    image: str  # path of the image file
    true_caption: str
    false_caption: str
    group: str  # relation name (VG-R) or "attr0_attr1" (VG-A)
    bbox: tuple[float, float, float, float] | None = None  # x, y, w, h; None = whole image

    @property
    def crop_id(self) -> str:
        box = "full" if self.bbox is None else ",".join(f"{v:g}" for v in self.bbox)
        return f"aro:{self.image}#{box}"


def _require(record: dict, key: str, path: Path, n: int):
    if key not in record or record[key] in (None, ""):
        raise DataError(f"{path}: record {n} (0-based) lacks field {key!r}; ARO records have image_path, "
                        f"bbox_x, bbox_y, bbox_w, bbox_h, true_caption, false_caption and relation_name "
                        f"(VG-Relation) or attributes (VG-Attribution).")
    return record[key]


def read_aro_annotations(task: str, root: str | os.PathLike) -> list[AROExample]:
    """Examples of ``vg-relation`` or ``vg-attribution`` from ARO's released files under ``root``."""
    root = Path(root).expanduser()
    path = root / ANNOTATION_FILES[task]
    if not path.is_file():
        raise DataError(
            f"{path}: ARO annotation file not found. Put ARO's {ANNOTATION_FILES[task]} and the images/ folder "
            f"(vgr_vga_images.zip, unzipped) in {root} — the files ARO's repository "
            f"(github.com/mertyg/vision-language-models-are-bows) downloads — or, online, run "
            f"`python -c \"from paraclip.evaluation.aro import download_aro; download_aro('{root}')\"`."
        )
    records = read_json(path)  # bad UTF-8, malformed or absurdly nested JSON: a DataError naming the file
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON list of records, got {type(records).__name__}.")
    images = root / "images"
    out = []
    for n, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataError(f"{path}: record {n} (0-based) is not an object.")
        if task == "vg-relation":
            group = str(_require(rec, "relation_name", path, n))
        else:
            attrs = _require(rec, "attributes", path, n)
            if not isinstance(attrs, list) or len(attrs) < 2:
                raise DataError(f"{path}: record {n} (0-based): field 'attributes' should be a list of two "
                                f"attributes, got {attrs!r}.", file_text=[repr(attrs)])
            group = f"{attrs[0]}_{attrs[1]}"
        try:
            bbox = tuple(float(_require(rec, f"bbox_{c}", path, n)) for c in "xywh")
        except (TypeError, ValueError):
            raise DataError(f"{path}: record {n} (0-based): bbox_x/y/w/h must be numbers.") from None
        out.append(AROExample(
            image=str(images / str(_require(rec, "image_path", path, n))),
            true_caption=str(_require(rec, "true_caption", path, n)),
            false_caption=str(_require(rec, "false_caption", path, n)),
            group=group,
            bbox=bbox,
        ))
    if not out:
        raise DataError(f"{path}: no records.")
    return out


def crop_loader(examples: Iterable[AROExample]) -> Callable[[str], object]:
    """``load(crop_id) -> PIL`` for the examples' image regions, cropped the way ARO does (see the
    module docstring): a box reaching past the border is padded with black, not clipped."""
    by_id = {ex.crop_id: ex for ex in examples}

    def load(crop_id: str):
        ex = by_id[crop_id]
        image = open_image(ex.image)
        if ex.bbox is None:
            return image
        x, y, w, h = ex.bbox
        box = (x, y, x + w, y + h)
        if round(box[2]) <= round(box[0]) or round(box[3]) <= round(box[1]):
            raise ImageLoadError(ex.image, f"box {ex.bbox} is empty once rounded to whole pixels")
        return image.crop(box)

    return load


class AROEvaluator(Evaluator):
    """Accuracy of preferring the true caption over the false one, macro-averaged over groups (×100).

    Per-item arrays: ``correct`` (1.0/0.0) and ``group`` (index into :attr:`groups`). Examples whose
    image cannot be opened are left out and counted in :attr:`problems`.
    """

    primary_metric = "macro_accuracy"

    def __init__(self, examples: Sequence[AROExample], name: str = "vg-relation", min_group_size: int = 0,
                 exclude_groups: Iterable[str] = (), source: str = "", feature_cache=None):
        if not examples:
            raise DataError(f"{name}: no examples.")
        self.examples = list(examples)
        self.name, self.source = name, source
        self.feature_cache = feature_cache
        self.groups = sorted({ex.group for ex in self.examples})
        counts = {g: 0 for g in self.groups}
        for ex in self.examples:
            counts[ex.group] += 1
        excluded = set(exclude_groups)
        self.eligible = np.array([counts[g] >= min_group_size and g not in excluded for g in self.groups])
        if not self.eligible.any():
            raise DataError(f"{name}: no group has at least {min_group_size} examples outside the excluded list, "
                            f"so the macro accuracy is undefined.")
        self.problems: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.examples)

    def item_scores(self, encoder) -> ItemScores:
        crop_ids = list(dict.fromkeys(ex.crop_id for ex in self.examples))
        features, problems = embed_images(encoder, crop_ids, crop_loader(self.examples), self.feature_cache)
        self.problems = problems
        row = {cid: n for n, cid in enumerate(c for c in crop_ids if c not in problems)}
        kept = [ex for ex in self.examples if ex.crop_id in row]
        if not kept:
            raise DataError(f"{self.name}: none of the images could be opened "
                            f"(e.g. {next(iter(problems.items()), ('?', '?'))}).")
        texts = list(dict.fromkeys([ex.true_caption for ex in kept] + [ex.false_caption for ex in kept]))
        emb = encoder.encode_text(texts)
        pos = {t: n for n, t in enumerate(texts)}
        img = features[[row[ex.crop_id] for ex in kept]]
        s_true = (img * emb[[pos[ex.true_caption] for ex in kept]]).sum(-1)
        s_false = (img * emb[[pos[ex.false_caption] for ex in kept]]).sum(-1)
        group_index = {g: n for n, g in enumerate(self.groups)}
        return {"correct": (s_true > s_false).numpy().astype(np.float64),
                "group": np.array([group_index[ex.group] for ex in kept], dtype=np.int64)}

    def metrics(self, items: ItemScores, index: np.ndarray | None = None) -> dict[str, float]:
        items = select(items, index)
        correct, group = np.asarray(items["correct"], dtype=np.float64), np.asarray(items["group"], dtype=np.int64)
        n_groups = len(self.groups)
        hits = np.bincount(group, weights=correct, minlength=n_groups)
        counts = np.bincount(group, minlength=n_groups)
        present = self.eligible & (counts > 0)
        macro = float(np.mean(hits[present] / counts[present])) if present.any() else float("nan")
        micro = float(correct.mean()) if correct.size else float("nan")
        return {"macro_accuracy": 100.0 * macro, "accuracy": 100.0 * micro}

    def evaluate(self, encoder, model=None, pretrained=None):
        result = super().evaluate(encoder, model, pretrained)
        result.details["groups"] = self.groups
        result.details["eligible_groups"] = int(self.eligible.sum())
        result.details["problems"] = dict(list(self.problems.items())[:100])
        result.details["n_problems"] = len(self.problems)
        return result


def vg_relation(root: str | os.PathLike, feature_cache=None) -> AROEvaluator:
    """VG-Relation from ARO's files under ``root``; macro accuracy without symmetric relations."""
    examples = read_aro_annotations("vg-relation", root)
    return AROEvaluator(examples, "vg-relation", exclude_groups=ARO_SYMMETRIC_RELATIONS,
                        source=f"ARO {Path(root) / ANNOTATION_FILES['vg-relation']}", feature_cache=feature_cache)


def vg_attribution(root: str | os.PathLike, feature_cache=None) -> AROEvaluator:
    """VG-Attribution from ARO's files under ``root``; macro accuracy over pairs with ≥ 25 examples."""
    examples = read_aro_annotations("vg-attribution", root)
    return AROEvaluator(examples, "vg-attribution", min_group_size=VGA_MIN_GROUP_SIZE,
                        source=f"ARO {Path(root) / ANNOTATION_FILES['vg-attribution']}", feature_cache=feature_cache)


def download_aro(root: str | os.PathLike) -> Path:
    """Fetch ARO's VG-R/VG-A annotations and images (≈1 GB) from the Google Drive files ARO's code
    uses, and unzip the images into ``root/images``. Needs internet."""
    import httpx

    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    for filename, drive_id in ARO_DRIVE_IDS.items():
        target = root / filename
        if target.exists() or (filename.endswith(".zip") and (root / "images").is_dir()):
            continue
        url = f"https://drive.usercontent.google.com/download?id={drive_id}&export=download&confirm=t"
        tmp = target.with_suffix(target.suffix + ".part")
        try:
            with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response:
                response.raise_for_status()
                with open(tmp, "wb") as f:
                    for chunk in response.iter_bytes(1 << 20):
                        f.write(chunk)
        except httpx.HTTPError as exc:
            raise DataError(f"Could not download {filename} from Google Drive ({exc}). Download it by hand from "
                            f"https://drive.google.com/file/d/{drive_id} into {root}.") from exc
        os.replace(tmp, target)
    archive = root / "vgr_vga_images.zip"
    if archive.exists() and not (root / "images").is_dir():
        with zipfile.ZipFile(archive) as z:
            z.extractall(root)
    return root


__all__ = ["ARO_SYMMETRIC_RELATIONS", "AROEvaluator", "AROExample", "VGA_MIN_GROUP_SIZE", "download_aro",
           "read_aro_annotations", "vg_attribution", "vg_relation"]
