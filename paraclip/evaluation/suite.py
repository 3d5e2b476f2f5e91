"""The evaluation suite: any set of models × any set of tasks, with paired bootstrap deltas.

Tasks are a registry of builders (``TASKS``; unknown names raise with close matches). A
builder turns a :class:`SuiteData` (gallery, pairs, ARO folder, STS folder, k values) into
evaluators; :func:`build_evaluators` runs them all before any model is loaded, so missing data
fails in a second, not after an hour of encoding.

:func:`evaluate_models` is the Python API the CLI and the app use. It loads one model at a time,
runs every evaluator, optionally writes one JSON per (model, task) as soon as it is done (a rerun
with the same ``out_dir`` reuses finished results — resume after an interruption), and returns
the results, a tidy table (model × task × metric) and the deltas against the first model with
paired bootstrap confidence intervals.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from paraclip.errors import DataError, ParaclipError
from paraclip.evaluation.base import Evaluator
from paraclip.evaluation.bootstrap import DEFAULT_N_BOOT, DELTA_COLUMNS, paired_bootstrap
from paraclip.evaluation.metrics import DEFAULT_MEMORY_BUDGET_MB
from paraclip.files import atomic_write_text
from paraclip.registry import Registry
from paraclip.results import (EvalResult, ResultFileError, load_results, record_result, result_file_name,
                              results_frame, save_results)

ProgressFn = Callable[[int, int, str], None]  # (done, total, message)


@dataclass
class SuiteData:
    """Where each task's data comes from. Strings are resolved lazily (paths, registered names)."""

    gallery: Any = None  # Gallery, a gallery name/path, or None
    pairs: Any = None  # ParaphrasePairs, a CSV/JSONL path, or None
    aro_dir: str | os.PathLike | None = None
    sts_dir: str | os.PathLike | None = None
    ks: Sequence[int] = (10,)
    recall_ks: Sequence[int] = (1, 5, 10)
    gallery_limit: int | None = None
    captions_file: str | os.PathLike | None = None  # for a gallery folder without captions.csv inside
    paraphrase_field: str | None = None
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB
    sts_score_range: tuple[float, float] | None = None  # gold-score scale of custom STS files (default 0-5)
    dataset: Any = None  # zero-shot classification: ClassificationSet or a --dataset spec
    templates: str | os.PathLike | None = None  # zero-shot classification: templates file ({c} per line)
    _gallery_obj: Any = field(default=None, repr=False)

    def get_gallery(self):
        from paraclip.data.galleries import Gallery, load_gallery

        if self._gallery_obj is None:
            if self.gallery is None:
                raise DataError("this task needs a gallery: pass --gallery (tuxpaint, coco-karpathy-5k, "
                                "flickr30k-1k, or a folder with a captions file).")
            self._gallery_obj = (self.gallery.subset(self.gallery_limit) if isinstance(self.gallery, Gallery)
                                 else load_gallery(self.gallery, self.captions_file, self.gallery_limit))
        return self._gallery_obj

    def loaded_gallery(self):
        """The gallery if a task has loaded it, else None."""
        return self._gallery_obj

    def get_pairs(self):
        from paraclip.evaluation.paraphrased import ParaphrasePairs, load_pairs

        if isinstance(self.pairs, ParaphrasePairs):
            return self.pairs
        if self.pairs is None:
            raise DataError(
                "paraphrased-retrieval needs (original, paraphrase) pairs: pass --pairs FILE (CSV/JSONL with "
                "original, paraphrase[, image_id], or the JSONL written by `paraclip paraphrase`). To make them "
                "from a gallery's captions: `paraclip evaluate --gallery G --export-captions caps.csv`, then "
                "`paraclip paraphrase caps.csv --out pairs.jsonl`."
            )
        return load_pairs(self.pairs, self.paraphrase_field)


def _zeroshot_classification(data: SuiteData) -> list[Evaluator]:
    from paraclip.data.classification import ClassificationSet, load_classification_dataset
    from paraclip.evaluation.zeroshot import ZeroShotClassificationEvaluator

    if data.dataset is None:
        raise DataError("zeroshot-classification needs labelled images: pass --dataset (a folder with one sub-folder "
                        "per class, tuxpaint, miniworld-shape/-colour/-count, or imagenet1k/cifar10/wds_vtab-… online).")
    dataset = data.dataset if isinstance(data.dataset, ClassificationSet) else load_classification_dataset(data.dataset)
    return [ZeroShotClassificationEvaluator(dataset, data.templates)]


TaskBuilder = Callable[[SuiteData], list[Evaluator]]
TASKS: Registry[TaskBuilder] = Registry("evaluation task")


def _paraphrased(data: SuiteData) -> list[Evaluator]:
    from paraclip.evaluation.paraphrased import ParaphrasedRetrievalEvaluator

    return [ParaphrasedRetrievalEvaluator(data.get_pairs(), data.get_gallery(), data.ks, data.recall_ks,
                                          memory_budget_mb=data.memory_budget_mb)]


def _retrieval(data: SuiteData) -> list[Evaluator]:
    from paraclip.evaluation.retrieval import RetrievalEvaluator

    return [RetrievalEvaluator(data.get_gallery(), data.recall_ks, memory_budget_mb=data.memory_budget_mb)]


def _aro_dir(data: SuiteData) -> Path:
    if data.aro_dir is None:
        raise DataError("VG-Relation / VG-Attribution need ARO's files: pass --aro-dir DIR holding "
                        "visual_genome_relation.json, visual_genome_attribution.json and images/ "
                        "(see paraclip.evaluation.aro.download_aro).")
    return Path(data.aro_dir)


def _vg_relation(data: SuiteData) -> list[Evaluator]:
    from paraclip.evaluation.aro import vg_relation

    return [vg_relation(_aro_dir(data))]


def _vg_attribution(data: SuiteData) -> list[Evaluator]:
    from paraclip.evaluation.aro import vg_attribution

    return [vg_attribution(_aro_dir(data))]


def _sts_builder(names: Sequence[str] | None) -> TaskBuilder:
    def build(data: SuiteData) -> list[Evaluator]:
        from paraclip.evaluation.sts import PAPER_STS_TASKS, sts_evaluator

        return [sts_evaluator(name, data.sts_dir, data.sts_score_range) for name in (names or PAPER_STS_TASKS)]

    return build


TASKS.register("paraphrased-retrieval", _paraphrased, "paraphrased", "rank-similarity")
TASKS.register("retrieval", _retrieval, "zero-shot-retrieval")
TASKS.register("vg-relation", _vg_relation, "vgr", "vg_relation")
TASKS.register("vg-attribution", _vg_attribution, "vga", "vg_attribution")
TASKS.register("sts", _sts_builder(None))
TASKS.register("zeroshot-classification", _zeroshot_classification, "zeroshot", "classification")


def _register_sts_tasks() -> None:
    """Each STS task (STS12 … SICK-R) is also a task of its own."""
    try:
        from paraclip.evaluation.sts import STS_TASKS
    except ImportError:  # the STS module is optional for the rest of the suite
        return
    for name in STS_TASKS.names():
        if name not in TASKS:
            TASKS.register(name, _sts_builder([name]))


_register_sts_tasks()
DEFAULT_TASKS = ("paraphrased-retrieval", "retrieval", "vg-relation", "vg-attribution", "sts")


def build_evaluators(tasks: str | Sequence[str] | None, data: SuiteData) -> list[Evaluator]:
    """Evaluators for the named tasks (validated; data loaded now, models not yet).

    A task that is a path to a CSV/TSV/JSONL file of ``sentence1, sentence2, score`` is a custom
    STS task (as in ``paraclip sts``).
    """
    parts = tasks.split(",") if isinstance(tasks, str) else list(tasks or DEFAULT_TASKS)
    evaluators: list[Evaluator] = []
    from paraclip.data.sts import custom_task_file

    for part in (p.strip() for p in parts if p and p.strip()):
        if custom_task_file(part):
            evaluators += _sts_builder([part])(data)
            continue
        for name in (DEFAULT_TASKS if part.lower() == "all" else TASKS.parse_list(part)):
            evaluators += TASKS.get(name)(data)
    names = [ev.name for ev in evaluators]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ParaclipError(f"task {dup!r} is listed twice (e.g. both 'sts' and one STS task); list it once.")
    return evaluators


# -- models ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelRef:
    """A model to evaluate: a name for :func:`paraclip.models.load_encoder`, or a ready encoder."""

    name: str
    pretrained: str | None = None
    encoder: Any = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.pretrained})" if self.pretrained else self.name

    def load(self, device=None):
        if self.encoder is not None:
            return self.encoder
        from paraclip.models import load_encoder

        return load_encoder(self.name, self.pretrained, device=device)


def as_model_refs(models: Sequence[Any]) -> list[ModelRef]:
    """Accept names, ``(name, pretrained)`` tuples, :class:`ModelRef` or encoder objects."""
    refs = []
    for m in models:
        if isinstance(m, ModelRef):
            refs.append(m)
        elif isinstance(m, str):
            refs.append(ModelRef(m))
        elif isinstance(m, tuple):
            refs.append(ModelRef(m[0], m[1] if len(m) > 1 else None))
        elif hasattr(m, "encode_text"):
            refs.append(ModelRef(getattr(m, "name", "model"), getattr(m, "pretrained", None), m))
        else:
            raise TypeError(f"cannot evaluate {m!r}: give a model name, (name, pretrained) or an Encoder")
    labels = [r.label for r in refs]
    dup = next((lab for lab in labels if labels.count(lab) > 1), None)
    if dup:
        raise ParaclipError(f"model {dup!r} is listed twice; results and deltas are keyed by model, so list each "
                            f"model once (give different checkpoints different file names).")
    return refs


# -- running ---------------------------------------------------------------------------------

def config_key(evaluator: Evaluator) -> str:
    """What must match for a saved result to be reused: task, data source, size and k values."""
    parts = [evaluator.name, str(getattr(evaluator, "source", "")), str(len(evaluator))]
    for attr in ("ks", "recall_ks"):
        if hasattr(evaluator, attr):
            parts.append(f"{attr}={list(getattr(evaluator, attr))}")
    return " | ".join(parts)


def result_path(out_dir: str | os.PathLike, ref: ModelRef, task: str) -> Path:
    """Where the (model, task) result goes: a name unique to the exact model spec (see ``result_file_name``)."""
    return Path(out_dir) / result_file_name(ref.name, ref.pretrained, task)


def _reusable(path: Path, ref: ModelRef, evaluator: Evaluator, notes: list[str]) -> EvalResult | None:
    if not path.exists():
        return None
    try:
        found = load_results(path)
    except ResultFileError as exc:
        notes.append(f"{exc} It is recomputed.")  # a damaged file is recomputed, never trusted
        return None
    res = found[0] if len(found) == 1 else None
    same = (res is not None and res.model == ref.name and res.pretrained == ref.pretrained
            and res.task == evaluator.name and res.details.get("config") == config_key(evaluator)
            and "items" in res.details)
    return res if same else None


@dataclass
class Skip:
    model: str
    task: str
    reason: str


@dataclass
class SuiteOutput:
    """``results, table, deltas = evaluate_models(...)``; ``skipped`` lists (model, task) not run."""

    results: list[EvalResult]
    table: Any  # pandas DataFrame: model × task × metric
    deltas: Any  # pandas DataFrame: DELTA_COLUMNS
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a damaged result file that was recomputed

    def __iter__(self) -> Iterator[Any]:
        return iter((self.results, self.table, self.deltas))


def evaluate_models(
    models: Sequence[Any],
    tasks: str | Sequence[str] | None = None,
    gallery: Any = None,
    pairs: Any = None,
    aro_dir: str | os.PathLike | None = None,
    sts_dir: str | os.PathLike | None = None,
    ks: Sequence[int] = (10,),
    recall_ks: Sequence[int] = (1, 5, 10),
    gallery_limit: int | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    device: str | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = True,
    evaluators: Sequence[Evaluator] | None = None,
    progress: ProgressFn | None = None,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
) -> SuiteOutput:
    """Evaluate every model on every task; deltas are against ``models[0]``.

    ``models``: names (``"ViT-B-32"``, a checkpoint path), ``(name, pretrained)`` tuples or
    :class:`~paraclip.models.base.Encoder` objects. ``evaluators`` may be given instead of
    ``tasks`` (e.g. the mini-world's own sets). With ``out_dir``, each (model, task) result is
    written as soon as it is done and reused on a rerun (``resume``). A task a model cannot do
    (an image task for a text-only model) is skipped and listed in ``skipped``.
    """
    refs = as_model_refs(models)
    if not refs:
        raise ParaclipError("no models to evaluate")
    if int(n_boot) < 1:
        raise ParaclipError(f"the number of bootstrap replicates must be >= 1 (got {n_boot}).")
    if evaluators is None:
        data = SuiteData(gallery=gallery, pairs=pairs, aro_dir=aro_dir, sts_dir=sts_dir, ks=tuple(ks),
                         recall_ks=tuple(recall_ks), gallery_limit=gallery_limit, memory_budget_mb=memory_budget_mb)
        evaluators = build_evaluators(tasks if tasks is not None else list(DEFAULT_TASKS), data)
    results: list[EvalResult] = []
    skipped: list[Skip] = []
    notes: list[str] = []
    total, done = len(refs) * len(evaluators), 0
    for ref in refs:
        encoder = None
        for ev in evaluators:
            path = result_path(out_dir, ref, ev.name) if out_dir else None
            res = _reusable(path, ref, ev, notes) if (path is not None and resume) else None
            if res is not None:
                record_result(out_dir, path.name, res, keep_time=True)  # a folder from before the manifest
            if res is None:
                if encoder is None:
                    _report(progress, done, total, f"loading {ref.label}")
                    encoder = ref.load(device)
                _report(progress, done, total, f"{ref.label}: {ev.name}")
                try:
                    res = ev.evaluate(encoder, model=ref.name, pretrained=ref.pretrained)
                except NotImplementedError as exc:
                    skipped.append(Skip(ref.label, ev.name, str(exc)))
                    done += 1
                    continue
                # keyed exactly as asked (an encoder may report its checkpoint path as "pretrained")
                res.model, res.pretrained = ref.name, ref.pretrained
                res.details["config"] = config_key(ev)
                if path is not None:
                    save_results([res], path)
                    record_result(out_dir, path.name, res)
            results.append(res)
            done += 1
            _report(progress, done, total, f"{ref.label}: {ev.name} done")
        del encoder
    table = results_frame(results)
    deltas = compare(results, evaluators, [r.label for r in refs], n_boot=n_boot, seed=seed)
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        for name, frame in (("results.csv", table), ("deltas.csv", deltas)):
            atomic_write_text(Path(out_dir) / name, frame.to_csv(index=False))
    return SuiteOutput(results, table, deltas, skipped, notes)


def _report(progress: ProgressFn | None, done: int, total: int, message: str) -> None:
    if callable(progress):
        progress(done, total, message)


def item_arrays(result: EvalResult) -> dict[str, np.ndarray]:
    """The per-item arrays stored in a result's details (as numpy arrays)."""
    return {k: np.asarray(v) for k, v in result.details.get("items", {}).items()}


def compare(results: Sequence[EvalResult], evaluators: Sequence[Evaluator], order: Sequence[str] | None = None,
            n_boot: int = DEFAULT_N_BOOT, seed: int = 0, confidence: float = 0.95):
    """Deltas vs the first model of ``order`` (default: order of appearance) for every task,
    with paired bootstrap CIs computed from the per-item arrays kept in the results."""
    import pandas as pd

    by_task: dict[str, dict[str, EvalResult]] = {}
    for r in results:
        by_task.setdefault(r.task, {})[r.model_label] = r
    order = list(order) if order is not None else list(dict.fromkeys(r.model_label for r in results))
    frames = []
    for ev in evaluators:
        present = {lab: by_task.get(ev.name, {}).get(lab) for lab in order}
        labels = [lab for lab in order if present[lab] is not None and "items" in present[lab].details]
        if len(labels) < 2 or labels[0] != order[0]:
            continue  # no baseline result for this task (e.g. a text-only baseline on an image task)
        frames.append(paired_bootstrap(ev, {lab: item_arrays(present[lab]) for lab in labels}, baseline=labels[0],
                                       n_boot=n_boot, confidence=confidence, seed=seed, task=ev.name))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=DELTA_COLUMNS)


def sts_points(results: Sequence[EvalResult]):
    """Long DataFrame (model, task, gold, cosine) of the STS results' per-pair scores, for
    :func:`paraclip.plots.sts_scatter`."""
    import pandas as pd

    frames = []
    for r in results:
        items = r.details.get("items", {})
        if "gold" in items and "cosine" in items:
            frames.append(pd.DataFrame({"model": r.model_label, "task": r.task,
                                        "gold": items["gold"], "cosine": items["cosine"]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["model", "task", "gold", "cosine"])


def format_table(table, main_only: bool = True) -> str:
    """Plain-text pivot (task/metric rows × model columns) for the terminal."""
    if table is None or table.empty:
        return "(no results)"
    t = table[table["main"]] if main_only else table
    pivot = t.pivot_table(index=["task", "metric"], columns="label", values="value", aggfunc="first", sort=False)
    return pivot.to_string(float_format=lambda v: "nan" if math.isnan(v) else f"{v:.2f}")


def format_deltas(deltas) -> str:
    if deltas is None or deltas.empty:
        return "(no comparisons: one model, or no shared tasks)"
    lines = []
    for row in deltas.itertuples():
        mark = "*" if row.significant else " "
        lines.append(f"{mark} {row.task:<22} {row.metric:<16} {row.model:<28} {row.delta:+7.2f} "
                     f"[{row.ci_low:+.2f}, {row.ci_high:+.2f}]")
    return "\n".join(lines)


__all__ = ["DEFAULT_TASKS", "ModelRef", "Skip", "SuiteData", "SuiteOutput", "TASKS", "build_evaluators", "compare",
           "config_key", "evaluate_models", "format_deltas", "format_table", "item_arrays", "sts_points"]
