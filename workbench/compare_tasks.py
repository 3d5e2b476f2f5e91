"""Compare's tasks: what each needs, which of them can run with the data at hand, and the ARO upload.

Each ticked task is built on its own (``paraclip.evaluation.suite.build_evaluators``), so a task
whose data is missing is skipped with a note naming the files it needs, and the others still
run. "STS: all 7" is built one STS set at a time for the same reason (STS-B is packaged; the
others need their files or the hub). A task added to :data:`TASK_CHOICES` with a line in
:data:`TASK_NEEDS` gets all of this.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paraclip.errors import DataError
from workbench.image_uploads import IMAGE_SUFFIXES, MAX_IMAGES, UNPACKED_FACTOR, copy_member, save_image_upload
from workbench.uploads import UploadError, upload_path

TASK_CHOICES = {
    "zero-shot retrieval (gallery)": "retrieval",
    "paraphrased retrieval AO@k / JS@k (gallery + pairs)": "paraphrased-retrieval",
    "STS-B (offline)": "STSB",
    "STS: all 7 of the paper": "sts",
    "VG-Relation (ARO data)": "vg-relation",
    "VG-Attribution (ARO data)": "vg-attribution",
    "zero-shot classification (labelled images)": "zeroshot-classification",
}
DEFAULT_TASKS = ["zero-shot retrieval (gallery)", "paraphrased retrieval AO@k / JS@k (gallery + pairs)",
                 "STS-B (offline)"]
ARO_FILES = ("visual_genome_relation.json", "visual_genome_attribution.json")
TASK_NEEDS = {
    "vg-relation": "ARO's visual_genome_relation.json and its images/ folder: upload them below (a zip), or the "
                   "app's owner sets PARACLIP_ARO_DIR",
    "vg-attribution": "ARO's visual_genome_attribution.json and its images/ folder: upload them below (a zip), or "
                      "the app's owner sets PARACLIP_ARO_DIR",
    "sts": "the SemEval / SICK test files (a folder in PARACLIP_STS_DIR, or internet access to the Hugging Face "
           "hub); STS-B alone is packaged and runs offline",
    "retrieval": "a gallery (pick one above)",
    "paraphrased-retrieval": "a gallery and (caption, paraphrase) pairs",
    "zeroshot-classification": "labelled images: pick a dataset (the mini-world sets render offline) or upload a "
                               "zip with one folder of images per class",
}
OFFLINE_DATASETS = ("miniworld-shape", "miniworld-colour", "miniworld-count")
CLASS_ZIP_PREFIX = "classes-"


class NoTaskCanRun(DataError):
    """Every ticked task lacks its data here; ``notes`` say what each one lacks (they travel with the error
    from a worker process: exceptions pickle their attributes)."""

    def __init__(self, *args, notes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.notes = list(notes)


def paper_sts_tasks() -> list[str]:
    from paraclip.data.sts import PAPER_STS_TASKS

    return list(PAPER_STS_TASKS)


def expand(task_names: list[str]) -> list[str]:
    """The ticked tasks as single tasks: "sts" becomes its 7 sets (an STS set ticked on its own is kept once)."""
    out: list[str] = []
    for name in task_names:
        for part in (paper_sts_tasks() if name == "sts" else [name]):
            if part not in out:
                out.append(part)
    return out


def needs(task: str) -> str:
    """What ``task`` needs, in words (STS sets share the "sts" line)."""
    if task in TASK_NEEDS:
        return TASK_NEEDS[task]
    return TASK_NEEDS["sts"] if task in paper_sts_tasks() else ""


@dataclass
class BuiltTasks:
    evaluators: list[Any] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one note per reason a task cannot run here
    skipped_tasks: list[str] = field(default_factory=list)


MISSING = re.compile(r"not found|does not exist|no data found|need", re.IGNORECASE)


def build_available(task_names: list[str], data, public: bool = False) -> BuiltTasks:
    """Evaluators for every task that has its data; a note for each that has not (never an exception
    for missing data, so one unavailable task does not stop the others). Tasks skipped for the same
    reason (six STS sets without their files, say) share one note."""
    from paraclip.errors import ParaclipError
    from paraclip.evaluation.suite import build_evaluators
    from workbench.policy import user_error

    built = BuiltTasks()
    reasons: dict[str, list[str]] = {}
    for task in expand(task_names):
        try:
            built.evaluators += build_evaluators([task], data)
        except (ParaclipError, OSError, ValueError) as exc:
            reason = user_error(exc, public).split(". Tried:")[0].strip().rstrip(".")
            wanted = needs(task)
            if wanted and MISSING.search(reason):  # absent data: what to provide says more than where we looked
                why = f"its data is not on this server; it needs {wanted}."
            else:
                why = f"{reason[:300]}." + (f" It needs {wanted}." if wanted else "")
            reasons.setdefault(why, []).append(task)
            built.skipped_tasks.append(task)
    for why, tasks in reasons.items():
        names = ", ".join(f"**{t}**" for t in tasks)
        if len(tasks) > 1:
            why = why.replace("its data is", "their data is").replace("; it needs", "; they need")
        built.skipped.append(f"{names} skipped: {why}")
    return built


def aro_dir(session: dict | None) -> str | None:
    """The ARO folder of this session's upload, else the server's ``PARACLIP_ARO_DIR``."""
    uploaded = (session or {}).get("aro_dir")
    if uploaded and Path(uploaded).is_dir():
        return uploaded
    return os.environ.get("PARACLIP_ARO_DIR") or None


def save_aro_upload(files, dest_root: Path, max_mb: float) -> tuple[Path, list[str], int]:
    """ARO's annotation files and images from an upload (a zip, or the files): returns (folder, annotation
    files found, images). The folder is laid out as ``paraclip.evaluation.aro`` reads it: the JSON files
    at the top, the images under ``images/``."""
    paths = [upload_path(f) for f in (files if isinstance(files, (list, tuple)) else [files]) if f is not None]
    paths = [p for p in paths if p is not None and p.is_file()]
    if not paths:
        raise UploadError("The upload did not arrive; choose the files again.")
    folder = dest_root / f"aro-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True, exist_ok=True)
    budget = max_mb * 1024 * 1024
    found: list[str] = []
    for path in paths:
        if path.name in ARO_FILES:
            shutil.copyfile(path, folder / path.name)
            found.append(path.name)
        elif path.suffix.lower() == ".zip":
            found += _unzip_annotations(path, folder, budget)
    images = [p for p in paths if p.name not in ARO_FILES]
    count = 0
    if images:
        try:
            unpacked, count, _ = save_image_upload(images, folder, max_mb)
            unpacked.rename(folder / "images")
        except UploadError:
            count = 0  # annotations alone are not an error here; the missing images are named below
    if not found:
        shutil.rmtree(folder, ignore_errors=True)
        raise UploadError(f"No ARO annotation file in the upload: it needs {' or '.join(ARO_FILES)} (and the images "
                          f"they name, in the zip or as files).")
    if not count:
        shutil.rmtree(folder, ignore_errors=True)
        raise UploadError(f"The upload has {', '.join(sorted(set(found)))} but no images: add the images the "
                          f"records name (ARO's images/ folder) to the zip.")
    return folder, sorted(set(found)), count


def _unzip_annotations(path: Path, folder: Path, budget: float) -> list[str]:
    """Copy ARO's annotation files out of a zip (found at any depth, stored under their own name)."""
    found = []
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = Path(info.filename.replace("\\", "/")).name
                if name not in ARO_FILES or info.is_dir():
                    continue
                if info.file_size > budget:
                    raise UploadError(f"{path.name}: {name} is too large once unpacked.")
                left = budget
                with archive.open(info) as src, open(folder / name, "wb") as dst:
                    while chunk := src.read(1 << 20):  # counted as read: a header may understate the size
                        left -= len(chunk)
                        if left < 0:
                            raise UploadError(f"{path.name}: {name} is too large once unpacked.")
                        dst.write(chunk)
                found.append(name)
    except zipfile.BadZipFile:
        raise UploadError(f"{path.name}: not a readable zip file.") from None
    return found


# -- zero-shot classification: which labelled images ----------------------------------------------

def dataset_choices(session: dict | None = None) -> list[str]:
    """The datasets Compare offers: the mini-world sets (rendered offline), Tux Paint's stamp categories
    where Tux Paint is installed, and this session's uploaded class folders."""
    from paraclip.data.galleries import TUXPAINT_STAMPS_DIR

    choices = list(OFFLINE_DATASETS) + (["tuxpaint"] if TUXPAINT_STAMPS_DIR.is_dir() else [])
    uploaded = (session or {}).get("class_dir")
    return choices + ([uploaded_label(uploaded)] if uploaded and Path(uploaded).is_dir() else [])


def uploaded_label(folder: str | os.PathLike) -> str:
    return f"uploaded: {Path(folder).name}"


def classification_data(services, dataset: str | None, templates: str | None, session: dict | None
                        ) -> tuple[str, list[str] | None]:
    """(dataset spec, templates) for zero-shot classification from Compare's boxes: the upload's label
    becomes its folder; a typed path is checked against the app's access policy like the other boxes;
    the templates box holds one template per line with ``{c}`` for the class name (empty = the
    dataset's own, else open_clip's)."""
    from paraclip.data.classification import check_template

    text = (dataset or "").strip() or OFFLINE_DATASETS[0]
    uploaded = (session or {}).get("class_dir")
    if uploaded and text == uploaded_label(uploaded):
        text = uploaded
    elif text.lower() not in OFFLINE_DATASETS + ("tuxpaint",):
        from workbench.policy import PolicyError, looks_like_path

        if services.policy.public and not looks_like_path(text):
            # a hub set is gigabytes (ImageNet's test shards): a visitor does not make the server fetch it
            raise PolicyError(f"Dataset {text!r}: this public app does not fetch datasets from the hub; pick "
                              f"{', '.join(dataset_choices(session))}, or upload a zip of class folders.")
        text = services.policy.check_spec(services.real_path(text, session), "Dataset",
                                          services.allowed_roots(session)) or text
    lines = [t.strip() for t in (templates or "").splitlines() if t.strip()]
    for n, line in enumerate(lines, 1):
        check_template(line, f"Templates box, line {n}")
    return text, (lines or None)


def save_class_zip(files, dest_root: Path, max_mb: float) -> tuple[Path, list[str], int]:
    """A zip of class folders (``[top/]<class>/<image>``) unpacked as ``paraclip.data.classification.folder_dataset``
    reads it: returns (folder, class names, images). Images outside a class folder are left out."""
    paths = [upload_path(f) for f in (files if isinstance(files, (list, tuple)) else [files]) if f is not None]
    paths = [p for p in paths if p is not None and p.is_file() and p.suffix.lower() == ".zip"]
    if not paths:
        raise UploadError("Upload a .zip holding one folder of images per class (e.g. dog/1.jpg, cat/2.jpg).")
    folder = dest_root / f"{CLASS_ZIP_PREFIX}{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True, exist_ok=True)
    budget = [UNPACKED_FACTOR * max_mb * 1024 * 1024]
    try:
        count = sum(_unzip_classes(path, folder, budget) for path in paths)
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if len(classes) < 2:
            raise UploadError(f"The zip has {count} images in {len(classes)} class folder(s); zero-shot "
                              f"classification needs at least two (one folder of images per class).")
    except BaseException:  # a refused upload leaves nothing behind
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, classes, count


def _class_entries(archive: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, str, str]]:
    """(entry, class folder, file name) of each image in a class folder; a single top folder holding the
    class folders is looked through."""
    entries = []
    for info in archive.infolist():
        parts = [p for p in info.filename.replace("\\", "/").split("/") if p]
        if info.is_dir() or not parts or parts[0] == "__MACOSX" or Path(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        entries.append((info, parts[:-1], parts[-1]))
    tops = {tuple(d[:1]) for _, d, _ in entries}
    strip = 1 if len(tops) == 1 and all(len(d) >= 2 for _, d, _ in entries) else 0
    return [(info, _safe(d[strip]), _safe(name)) for info, d, name in entries if len(d) > strip]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_. " else "_" for c in name).strip(". ") or uuid.uuid4().hex[:6]


def _unzip_classes(path: Path, folder: Path, budget: list[float]) -> int:
    try:
        with zipfile.ZipFile(path) as archive:
            entries = _class_entries(archive)
            if len(entries) > MAX_IMAGES:  # refused before anything is unpacked
                raise UploadError(f"{path.name}: {len(entries)} images, over the limit of {MAX_IMAGES}; upload fewer.")
            for info, label, name in entries:
                (folder / label).mkdir(exist_ok=True)
                copy_member(archive, info, folder / label / name, budget, path.name)
    except zipfile.BadZipFile:
        raise UploadError(f"{path.name}: not a readable zip file.") from None
    return len(entries)
