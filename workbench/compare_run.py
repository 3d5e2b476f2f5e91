"""A comparison's work, apart from the page: evaluate every model on every task, then build what is shown.

:func:`compare_work` runs in a :class:`workbench.runs.Worker` thread or, on a serving app, in a low-priority
worker process (:class:`workbench.runs.WorkerProcesses`, ``PARACLIP_APP_COMPARE_PROCESS``): a comparison is
≈ 0.5 s of Python per model pair even on a small gallery (evaluation, bootstrap, plotly's validation of
its figures), and in the server's process every Explore query waited for the GIL behind it (issue 22 §9).
So this module never imports gradio, and what crosses to the page is plain data: tables, and the
figures as plotly JSON.

The same function serves both: ``env`` is the app's ``Services`` in a thread, or :class:`ProcessEnv` (a
process-wide encoder cache, no Explore index to warm) in a worker process; ``stop`` is the run's flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from workbench.runs import StoppableEncoder, Stopped


@dataclass
class CompareRequest:
    """What :func:`compare_work` needs, all picklable (it crosses to a worker process)."""

    choices: list  # workbench.defaults.ModelChoice
    task_names: list[str]
    gallery: Any  # a Gallery (or None)
    gallery_label: str | None
    pairs: str | None
    ks: tuple[int, ...]
    folder: Path
    aro_dir: str | None
    classification: tuple = (None, None)
    public: bool = False
    session: dict | None = None  # the visitor's (their uploaded gallery's index, in the server's process)


@dataclass
class CompareFinished:
    """What a comparison produced, finished or stopped: the finished evaluations, the tables and figures
    of the page (figures as plotly JSON strings, by slot), and the notes for the page."""

    results: list
    table: Any  # pandas DataFrame
    deltas: Any  # pandas DataFrame
    view: Any  # workbench.compare_view.CompareView with JSON figures
    stopped: bool
    evaluations: int  # how many (model, task) evaluations were asked for
    skipped: list[str] = field(default_factory=list)  # tasks without their data here
    skipped_tasks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # vocabulary coverage, damaged files, runs skipped


class ProcessEnv:
    """The part of ``Services`` a comparison uses, in a worker process: its own encoder cache (kept
    between comparisons for the process's life) and no Explore index to warm."""

    _encoders = None

    def __init__(self, public: bool):
        from types import SimpleNamespace

        self.config = SimpleNamespace(public=public)
        if ProcessEnv._encoders is None:
            from workbench.services import EncoderCache

            ProcessEnv._encoders = EncoderCache()
        self.encoders = ProcessEnv._encoders

    def gallery_index(self, *args, **kwargs) -> None:
        return None  # Explore's index lives in the server's process; it builds its own


def evaluate(env, request: CompareRequest, should_stop: Callable[[], bool], state: dict) -> Any:
    """Every model on every task; the models check ``should_stop`` between batches and raise Stopped.
    Progress and what is built go into ``state``."""
    from paraclip.evaluation.suite import ModelRef, SuiteData, evaluate_models
    from workbench.compare_tasks import NoTaskCanRun, build_available
    from workbench.vocabulary import coverage_notes

    def progress(done, total, message):
        if should_stop():
            raise Stopped("stopped by the user")
        state["message"] = f"{done}/{total}: {message}"

    dataset, templates = request.classification
    data = SuiteData(gallery=request.gallery, pairs=request.pairs, aro_dir=request.aro_dir, ks=request.ks,
                     recall_ks=(1, 5, 10), dataset=dataset, templates=templates)
    built = build_available(request.task_names, data, request.public)
    state["skipped"], state["skipped_tasks"] = built.skipped, built.skipped_tasks
    if not built.evaluators:
        raise NoTaskCanRun("None of the ticked tasks can run here (see the notes below).", notes=built.skipped)
    state["evaluators"] = evaluators = built.evaluators
    state["notes"] = coverage_notes(request.choices, evaluators)
    refs = []
    for choice in request.choices:
        state["message"] = f"loading {choice.label}"
        encoder = StoppableEncoder(env.encoders.get(*choice.key), should_stop)
        refs.append(ModelRef(choice.label, None, encoder))
        if request.gallery_label and encoder.has_image_tower:
            # fills the feature cache under the app's per-(model, gallery) lock, so concurrent
            # comparisons and Explore queries never write the same cache at once
            state["message"] = f"embedding the gallery with {choice.label}"
            env.gallery_index(choice.key, request.gallery_label, request.session, encoder=encoder)
    state["output"] = evaluate_models(refs, evaluators=evaluators, n_boot=1000, out_dir=request.folder,
                                      progress=progress)
    return state["output"]


def finished_results(folder: Path, state: dict, labels: list[str]):
    """(results, table, deltas) of the evaluations finished so far (all of them when not stopped)."""
    from paraclip.evaluation.suite import compare
    from paraclip.results import read_result_folder, results_frame

    if "output" in state:
        out = state["output"]
        return out.results, out.table, out.deltas
    results, skipped = read_result_folder(folder) if folder.is_dir() else ([], [])
    state.setdefault("notes", []).extend(skipped)  # a damaged file is named, never used
    results.sort(key=lambda r: labels.index(r.model) if r.model in labels else len(labels))
    deltas = compare(results, state.get("evaluators") or [], labels, n_boot=1000)
    return results, results_frame(results), deltas


def compare_work(env, request: CompareRequest, should_stop: Callable[[], bool], state: dict) -> CompareFinished:
    """Evaluate (stopping between batches when asked), then build the page's tables and figures from what
    finished. Failures other than a stop propagate (the handler shows them)."""
    from paraclip.evaluation.suite import sts_points
    from workbench.compare_view import build_view

    stopped = False
    try:
        evaluate(env, request, should_stop, state)
    except Stopped:
        stopped = True
    labels = [c.label for c in request.choices]
    results, table, deltas = finished_results(request.folder, state, labels)
    view = build_view(table, deltas, sts_points(results))
    # plotly JSON here, not in the server: serialising a validated figure is CPU the page's process would pay
    view.figures = {slot: figure.to_json() for slot, figure in view.figures.items()}
    output = state.get("output")
    notes = list(state.get("notes", []))
    if output is not None:
        notes += [f"{s.model} / {s.task} skipped: {s.reason}" for s in output.skipped] + list(output.notes)
    return CompareFinished(results=results, table=table, deltas=deltas, view=view, stopped=stopped,
                           evaluations=len(labels) * len(state.get("evaluators") or []),
                           skipped=list(state.get("skipped", [])), skipped_tasks=list(state.get("skipped_tasks", [])),
                           notes=notes)


class _ProgressFile(dict):
    """A state dict whose ``message`` is also written to a file, for the server's process to show."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if key == "message":
            from paraclip.files import atomic_write_text

            try:
                atomic_write_text(self.path, str(value))
            except OSError:
                pass  # progress is a courtesy; the work goes on


def compare_in_process(request: CompareRequest, stop_file: str, progress_file: str) -> CompareFinished:
    """:func:`compare_work` in a worker process: Stop in the page creates ``stop_file``; progress messages
    go to ``progress_file``."""
    stop_path = Path(stop_file)
    return compare_work(ProcessEnv(request.public), request, stop_path.exists, _ProgressFile(Path(progress_file)))


def warm_up() -> int:
    """Run once in a new worker process when the app starts: the imports a comparison needs (≈ 4 s of CPU
    on a 2-core machine) are paid then, not by the first visitor who compares, nor during a burst of
    Explore queries. Returns the process id."""
    import importlib
    import os

    for module in ("open_clip", "plotly.graph_objects", "paraclip.evaluation.suite", "workbench.compare_view"):
        importlib.import_module(module)
    ProcessEnv(public=False)
    return os.getpid()
