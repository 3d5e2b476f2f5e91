"""The one result format shared by ``paraclip sts``, ``paraclip evaluate`` and the app.

A result is one (model, task) evaluation: its metrics, where the data came from, how
many items, how long it took and the library versions. ``details`` may hold per-item
arrays (lists) so that paired bootstrap comparisons can be made later from the JSON.

The files are strict JSON: a metric that is undefined (NaN in Python, e.g. a correlation
with constant gold scores) is written as ``null`` and ``notes`` says why; readers accept
``null`` and the bare ``NaN`` of older files alike, and give NaN back.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from paraclip.errors import DataError
from paraclip.files import atomic_write_text, read_json

SCHEMA = "paraclip.result/1"


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


class ResultsFileError(DataError, ValueError):
    """A results file that cannot be read; also a ValueError, so callers that recompute a damaged file
    (``except ValueError``) still do."""


def load_results(path: str | os.PathLike) -> list[EvalResult]:
    """Read a file written by :func:`save_results` (or a single result object)."""
    path = Path(path)
    try:
        doc = read_json(path)
        items = doc["results"] if isinstance(doc, dict) and "results" in doc else [doc]
        if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
            raise DataError(f"{path}: expected a results object or {{\"results\": [...]}}.")
        return [EvalResult.from_dict(d) for d in items]
    except DataError as exc:
        raise ResultsFileError(str(exc)) from None
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # fields of the wrong shape
        raise ResultsFileError(f"{path}: not a results file written by paraclip ({exc}).") from None


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
