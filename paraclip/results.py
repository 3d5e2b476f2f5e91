"""The one result format shared by ``paraclip sts``, ``paraclip evaluate`` and the app.

A result is one (model, task) evaluation: its metrics, where the data came from, how
many items, how long it took and the library versions. ``details`` may hold per-item
arrays (lists) so that paired bootstrap comparisons can be made later from the JSON.

The files are strict JSON: a metric that is undefined (NaN in Python, e.g. a correlation
with constant gold scores) is written as ``null`` and ``notes`` says why; readers accept
``null`` and the bare ``NaN`` of older files alike, and give NaN back.

A results folder (``paraclip evaluate --out``, the app's comparisons) holds one JSON per (model,
task), named by :func:`result_file_name` (a readable slug plus a hash of the exact model spec, so
``runs/a_b/final.pt`` and ``runs/a/b/final.pt`` never share a file), and ``manifest.json`` mapping
each file to its model, task and the time it was written. :func:`read_result_folder` reads a folder
through its manifest. A file that is empty, truncated, not JSON, or JSON without results (``[]``,
``{}``) raises :class:`ResultFileError` naming the file; folder readers skip it with a note.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from paraclip.errors import DataError
from paraclip.files import atomic_write_text, parse_json

SCHEMA = "paraclip.result/1"
MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = "paraclip.results-manifest/1"


class ResultFileError(DataError, ValueError):
    """A result file that cannot be used: unreadable, not JSON (e.g. truncated), or JSON without results."""


def library_versions() -> dict[str, str]:
    """Versions of the packages that decide a result."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("paraclip", "torch", "open_clip_torch", "transformers", "sentence-transformers", "numpy", "scipy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            if pkg == "paraclip":
                from paraclip import __version__

                out[pkg] = __version__
    return out


@dataclass
class EvalResult:
    model: str
    task: str
    metrics: dict[str, float]
    main_metric: str
    source: str
    n: int
    seconds: float
    pretrained: str | None = None
    versions: dict[str, str] = field(default_factory=library_versions)
    details: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    schema: str = SCHEMA
    notes: dict[str, str] = field(default_factory=dict)  # metric -> why it is undefined (null in the JSON)

    @property
    def main_score(self) -> float:
        return self.metrics[self.main_metric]

    @property
    def model_label(self) -> str:
        return f"{self.model} ({self.pretrained})" if self.pretrained else self.model

    def to_dict(self, with_details: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not with_details:
            d.pop("details")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalResult":
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} result (schema={d.get('schema')!r})")
        known = {f for f in cls.__dataclass_fields__}
        out = cls(**{k: v for k, v in d.items() if k in known})
        out.metrics = {k: math.nan if v is None else v for k, v in out.metrics.items()}
        if isinstance(out.details.get("items"), dict):
            out.details["items"] = {k: _none_to_nan(v) for k, v in out.details["items"].items()}
        return out


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by None (JSON ``null``) and numpy scalars made plain."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()  # numpy scalar
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _none_to_nan(value: Any) -> Any:
    if isinstance(value, list):
        return [_none_to_nan(v) for v in value]
    return math.nan if value is None else value


def save_results(results: Iterable[EvalResult], path: str | os.PathLike, with_details: bool = True) -> None:
    """Write results as one JSON document: ``{"schema":..., "results": [...]}``."""
    atomic_write_text(path, results_json(results, with_details))


def results_json(results: Iterable[EvalResult], with_details: bool = True) -> str:
    """The text :func:`save_results` writes: strict JSON (undefined metrics are ``null``)."""
    doc = {"schema": SCHEMA, "results": [r.to_dict(with_details) for r in results]}
    return json.dumps(json_safe(doc), indent=1, allow_nan=False, default=float)


def load_results(path: str | os.PathLike) -> list[EvalResult]:
    """Read a file written by :func:`save_results` (or a single result object).

    Raises :class:`ResultFileError` (naming the file and what is wrong) for an unreadable, empty,
    truncated or non-result file, and for a result of another schema."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{path}: cannot read this result file ({exc}).") from exc
    if not text.strip():
        raise ResultFileError(f"{path}: the result file is empty (a run stopped while writing it?). Delete it and "
                              f"rerun the evaluation.")
    try:
        doc = parse_json(text, str(path))  # malformed, truncated or absurdly nested: a DataError naming the line
    except DataError as exc:
        raise ResultFileError(f"{exc} The result file is damaged or truncated: delete it and rerun the "
                              f"evaluation.") from exc
    if not isinstance(doc, dict) or not doc:
        shown = json.dumps(doc)[:40]
        raise ResultFileError(f"{path}: holds {shown}, not a {SCHEMA} result ({{\"schema\": ..., \"results\": "
                              f"[...]}}). Delete it and rerun the evaluation.", file_text=[shown])
    items = doc["results"] if "results" in doc else [doc]
    if not isinstance(items, list) or not items:
        raise ResultFileError(f"{path}: its \"results\" list is empty or not a list: no result to read. Delete it "
                              f"and rerun the evaluation.")
    out = []
    for number, item in enumerate(items, 1):
        try:
            if not isinstance(item, dict):
                raise ValueError(f"an entry of type {type(item).__name__}")
            out.append(EvalResult.from_dict(item))
        except (TypeError, ValueError, KeyError) as exc:
            raise ResultFileError(f"{path}: result {number} of {len(items)} is not usable: {exc}.") from exc
    return out


# -- results folders: one file per (model, task), and a manifest ---------------------------------------

def _slug(text: str, limit: int) -> str:
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return slug[-limit:].lstrip(".") or "x"


def result_file_name(model: str, pretrained: str | None, task: str) -> str:
    """``<readable slug>-<hash of the exact spec>__<task>.json``: specs that slug alike get different files."""
    spec = json.dumps([model, pretrained, task])
    label = f"{model} ({pretrained})" if pretrained else model
    digest = hashlib.sha256(spec.encode()).hexdigest()[:10]
    return f"{_slug(label, 60)}-{digest}__{_slug(task, 40)}.json"


def read_manifest(folder: str | os.PathLike) -> tuple[dict[str, dict], str | None]:
    """(file name -> {model, pretrained, task, written}, a note when the manifest is missing or damaged)."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return {}, None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        files = doc["files"]
        if doc.get("schema") != MANIFEST_SCHEMA or not isinstance(files, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("task"), str) for v in files.values()):
            raise ValueError("not a results manifest")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {}, f"{path} is damaged ({exc}); the file list was rebuilt from the result files in the folder"
    return files, None


def record_result(folder: str | os.PathLike, file_name: str, result: EvalResult, keep_time: bool = False) -> None:
    """Add (or refresh) a result file's entry in the folder's manifest (one writer per folder: the run's lock).
    ``keep_time``: a reused result whose entry is already there keeps it as it is."""
    files, _ = read_manifest(folder)
    old = files.get(file_name) or {}
    if keep_time and (old.get("model"), old.get("pretrained"), old.get("task")) == (
            result.model, result.pretrained, result.task):
        return
    files[file_name] = {"model": result.model, "pretrained": result.pretrained, "task": result.task,
                        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    doc = {"schema": MANIFEST_SCHEMA, "files": dict(sorted(files.items()))}
    atomic_write_text(Path(folder) / MANIFEST_NAME, json.dumps(doc, indent=1))


def read_result_folder(folder: str | os.PathLike) -> tuple[list[EvalResult], list[str]]:
    """Every usable result in a results folder, and notes on what was skipped and why.

    The manifest says which files to read; a folder without one (or with a damaged one) is read from
    its ``*__*.json`` files, with a note. A damaged result file, a file the manifest lists but that is
    missing, or one whose contents are for another model or task than its entry is skipped with a
    note, never used silently."""
    folder = Path(folder)
    entries, note = read_manifest(folder)
    notes = [note] if note else []
    if not entries:
        if not note and (folder / MANIFEST_NAME).is_file():
            return [], []  # an empty manifest: nothing written yet
        if not note and any(folder.glob("*__*.json")):
            notes.append(f"{folder} has no {MANIFEST_NAME} (written by an older version?); read its result files "
                         f"by name")
        entries = {p.name: {} for p in sorted(folder.glob("*__*.json"))}
    results = []
    for name, entry in entries.items():
        path = folder / name
        if not path.is_file():
            notes.append(f"{path} is listed in {MANIFEST_NAME} but missing; skipped")
            continue
        try:
            found = load_results(path)
        except ResultFileError as exc:
            notes.append(f"skipped: {exc}")
            continue
        if entry and any((r.model, r.pretrained, r.task) != (entry.get("model"), entry.get("pretrained"),
                                                            entry.get("task")) for r in found):
            notes.append(f"{path} holds results for another model or task than {MANIFEST_NAME} says; skipped")
            continue
        results += found
    return results, notes


def results_frame(results: Iterable[EvalResult]):
    """Tidy DataFrame: one row per (model, pretrained, task, metric)."""
    import pandas as pd

    rows = [
        {
            "model": r.model,
            "pretrained": r.pretrained,
            "label": r.model_label,
            "task": r.task,
            "metric": m,
            "value": v,
            "main": m == r.main_metric,
            "n": r.n,
            "source": r.source,
            "seconds": r.seconds,
        }
        for r in results
        for m, v in r.metrics.items()
    ]
    return pd.DataFrame(rows, columns=["model", "pretrained", "label", "task", "metric", "value", "main", "n", "source", "seconds"])
