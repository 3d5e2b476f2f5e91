"""Compare tab: a baseline against other models on chosen tasks, with paired bootstrap CIs.

All evaluation is :func:`paraclip.evaluation.suite.evaluate_models`; what is shown is built by
:mod:`workbench.compare_view`. Paraphrased retrieval (AO@k / JS@k, the paper's measure) is on by
default with the gallery's default paraphrase pairs (:func:`workbench.examples.default_pairs`).
A comparison runs in its own queue lane; Stop sets this run's stop flag, which the models check
between batches, and the finished evaluations are shown.
"""

from __future__ import annotations

import functools
import os
import uuid
from dataclasses import replace
from collections import namedtuple
from typing import Any

import gradio as gr
from gradio.components.plot import PlotData

from workbench.compare_tasks import (ARO_FILES, DEFAULT_TASKS, OFFLINE_DATASETS, TASK_CHOICES, aro_dir,
                                     classification_data, dataset_choices,
                                     save_aro_upload, save_class_zip, uploaded_label)
from workbench.compare_run import CompareFinished, CompareRequest, compare_in_process, compare_work
from workbench.compare_view import DELTA_VIEW_COLUMNS, PLOT_SLOTS, undefined_notes
from workbench.examples import default_pairs
from workbench.policy import hide_paths, user_error
from workbench.runs import LANES, ProcessWorker, Worker, session_key
from workbench.uploads import UploadError

LANE = "compare"
__all__ = ["DEFAULT_TASKS", "TASK_CHOICES", "build", "prepare", "run_compare"]
SLOT_LABELS = {"retrieval": "Zero-shot retrieval", "paraphrased": "AO@k / JS@k", "sts": "STS",
               "aro": "VG-Relation / VG-Attribution",
               "classification": "Zero-shot classification", "forest": "Differences with CIs", "scatter": "STS scatter"}


def parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(k) for k in str(text or "10").replace(" ", "").split(",") if k}))
    except ValueError:
        raise ValueError(f"k values must be comma-separated integers, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise ValueError("k values must be positive integers")
    return ks


def resolve_pairs(services, typed: str, gallery_label: str | None, session: dict | None = None
                  ) -> tuple[str | None, str]:
    """(pairs file, a note saying which pairs these are) — typed or sent pairs (checked against the app's
    access policy), else the gallery's default."""
    typed = (typed or "").strip()
    if typed:
        typed = str(services.check_path(typed, "Paraphrase pairs", session))
        return typed, f"pairs: `{os.path.basename(typed)}`"
    path = default_pairs(services, gallery_label)
    if path:
        return path, f"pairs: the default in-vocabulary paraphrase pairs of the {gallery_label} gallery"
    return None, ""


def prepare(services, baseline, others, tasks, gallery_label, pairs_text, ks_text, gallery_limit,
            session: dict | None = None):
    """Check the form; returns (model choices, task names, gallery, pairs, note, ks). A task that lacks its
    data here is dropped with a note (``note``), never failing the others."""
    labels = [baseline] + [o for o in (others or []) if o and o != baseline]
    if not baseline:
        raise ValueError("Pick a baseline model (and one or more models to compare with it).")
    task_names = [TASK_CHOICES.get(t, t) for t in (tasks or [])]
    if not task_names:
        raise ValueError("Pick at least one task.")
    ks = parse_ks(ks_text)
    pairs, note = (resolve_pairs(services, pairs_text, gallery_label, session) if "paraphrased-retrieval" in task_names
                   else (None, ""))
    if "paraphrased-retrieval" in task_names and not pairs:
        task_names = [t for t in task_names if t != "paraphrased-retrieval"]
        note = ("**paraphrased-retrieval** skipped: it needs (caption, paraphrase) pairs, and this gallery has no "
                "default pairs (the mini-world gallery has): paraphrase the gallery's captions in the Paraphrase tab "
                "and press “Send to Compare”, or give a pairs file.")
        if not task_names:  # it was the only task: say so up front
            raise ValueError(note.replace("**paraphrased-retrieval** skipped: it", "Paraphrased retrieval"))
    choices = [services.resolve_model(label, session) for label in labels]
    gallery = services.gallery(gallery_label, session) if gallery_label else None
    if gallery is not None and gallery_limit:  # 0 / empty = the whole gallery; subset() refuses -1 or 2.5
        gallery = gallery.subset(gallery_limit)
    return choices, task_names, gallery, pairs, note, ks


# What a comparison shows, one name per output component: ``build`` wires the components by these names.
OUTPUTS = ("status", "results", "deltas", "summary", "notes", *(f"plot_{slot}" for slot in PLOT_SLOTS), "files",
           "session")


class CompareOutputs(namedtuple("CompareOutputs", OUTPUTS)):
    """The Compare handler's outputs by name (a tuple in :data:`OUTPUTS` order, as Gradio takes it)."""

    __slots__ = ()

    @classmethod
    def only(cls, **values) -> "CompareOutputs":
        """The outputs given; every other component keeps what it shows (``gr.skip()``)."""
        return cls(**{name: values.get(name, gr.skip()) for name in cls._fields})


def outputs_for(view, files, status, notes, session) -> CompareOutputs:
    """``view.figures`` holds plotly JSON strings (:func:`workbench.compare_run.compare_work`), sent as they are.

    A plot slot's visibility is changed only when it must change (the session remembers which slots this tab
    shows): each ``gr.update`` rebuilds the component's config in the server, ≈ 8 ms holding the GIL, and a
    comparison used to send seven of them (issue 22 §9)."""
    shown = set(session.get("compare_plots") or [])
    plots = {}
    for slot in PLOT_SLOTS:
        if slot in view.figures:
            value = PlotData(type="plotly", plot=view.figures[slot])
            plots[f"plot_{slot}"] = value if slot in shown else gr.update(value=value, visible=True)
        else:
            plots[f"plot_{slot}"] = gr.update(visible=False) if slot in shown else gr.skip()
    session["compare_plots"] = [slot for slot in PLOT_SLOTS if slot in view.figures]
    return CompareOutputs(status=status, results=view.results, deltas=view.deltas, summary=view.summary, notes=notes,
                          files=files, session=session, **plots)


def run_compare(services, session, baseline, others, tasks, gallery_label, pairs_path, ks_text, gallery_limit,
                session_id="api", dataset: str | None = None, templates: str | None = None):
    """Generator of :class:`CompareOutputs` while the comparison runs. ``dataset`` and ``templates`` are
    zero-shot classification's (see ``compare_tasks.classification_data``)."""
    from paraclip.errors import ParaclipError
    from paraclip.results import save_results

    session = dict(session or {})
    with services.runs.running(LANE, session_id) as run:
        if run.stopped:
            yield CompareOutputs.only(status="⏹ stopped before it started.", session=session)
            return
        try:
            choices, task_names, gallery, pairs, pairs_note, ks = prepare(
                services, baseline, others, tasks, gallery_label, pairs_path, ks_text, gallery_limit, session)
            classification = (classification_data(services, dataset, templates, session)
                              if "zeroshot-classification" in task_names else (None, None))
        except (ValueError, ParaclipError) as exc:
            yield CompareOutputs.only(status=f"❌ {user_error(exc, services.config.public)}", session=session)
            return
        folder = services.session_dir(session) / f"compare-{uuid.uuid4().hex[:6]}"
        request = CompareRequest(choices=choices, task_names=task_names, gallery=gallery, gallery_label=gallery_label,
                                 pairs=pairs, ks=ks, folder=folder, aro_dir=aro_dir(session),
                                 classification=classification, public=services.config.public, session=session)
        state: dict[str, Any] = {"message": "starting"}
        processes = services.worker_processes()
        if processes is not None:  # a serving app: the work holds another interpreter's GIL, not Explore's
            worker = ProcessWorker(run, "paraclip-wb-compare", processes, folder.with_name(folder.name + ".run")).start(
                compare_in_process, request)
        else:
            worker = Worker(run, "paraclip-wb-compare").start(compare_work, services, request, run.stop.is_set, state)
        while worker.wait(0.5):
            message = getattr(worker, "message", None) or state["message"]
            yield CompareOutputs.only(status=f"⏳ {message} — Stop keeps the finished evaluations", session=session)
        if worker.failed:
            skipped = getattr(worker.error, "notes", None) or state.get("skipped", [])
            notes = "\n".join(f"- {n}" for n in [pairs_note, *skipped] if n)
            yield CompareOutputs.only(status=f"❌ {user_error(worker.error, services.config.public)}", notes=notes,
                                      session=session)
            return
        done: CompareFinished = worker.result
        if services.config.public:  # the files a visitor downloads name no server folder (issue 22 §5)
            done.results = [replace(r, source=hide_paths(r.source)) for r in done.results]
            if "source" in done.table.columns:
                done.table = done.table.assign(source=done.table["source"].map(hide_paths))
        folder.mkdir(parents=True, exist_ok=True)
        json_path = folder / "results.json"
        save_results(done.results, json_path, with_details=False)
        done.table.to_csv(folder / "results.csv", index=False)
        done.deltas.to_csv(folder / "deltas.csv", index=False)
        files = [str(p) for p in (folder / "results.csv", folder / "deltas.csv", json_path) if p.is_file()]
        notes = [pairs_note] if pairs_note else []
        notes += done.skipped + done.notes + undefined_notes(done.results)
        if done.stopped:
            status = (f"⏹ stopped: {len(done.results)} of {done.evaluations} evaluations finished; they are shown "
                      f"below.")
        else:
            ran = done.evaluations // max(1, len(choices))
            left_out = f"; {len(done.skipped_tasks)} skipped (see the notes)" if done.skipped_tasks else ""
            status = f"✅ {len(done.results)} results ({len(choices)} models × {ran} tasks{left_out})."
        view = done.view
        session["compare_dir"] = str(folder)
        yield outputs_for(view, files, status, "\n".join(f"- {n}" for n in notes if n), session)


def upload_aro(services, session, files):
    """An ARO upload becomes this session's ARO folder for VG-Relation / VG-Attribution."""
    session = dict(session or {})
    if not files:
        return gr.skip(), session
    try:
        folder, found, count = save_aro_upload(files, services.session_dir(session), services.config.max_upload_mb)
    except UploadError as exc:
        return f"❌ {exc}", session
    session["aro_dir"] = str(folder)
    return f"✅ {', '.join(found)} and {count} images: VG tasks will use them.", session


def upload_classes(services, session, files):
    """A zip of class folders becomes this session's dataset for zero-shot classification."""
    session = dict(session or {})
    if not files:
        return gr.skip(), gr.skip(), session
    try:
        folder, classes, count = save_class_zip(files, services.session_dir(session), services.config.max_upload_mb)
    except UploadError as exc:
        return f"❌ {exc}", gr.skip(), session
    session["class_dir"] = str(folder)
    shown = ", ".join(classes[:6]) + (f" … ({len(classes)} classes)" if len(classes) > 6 else "")
    return (f"✅ {count} images in {len(classes)} classes ({shown}): picked as the dataset.",
            gr.update(choices=dataset_choices(session), value=uploaded_label(folder)), session)


class Handlers:
    """Bound methods, so Gradio sees the gr.Request type hints."""

    def __init__(self, services):
        self.services = services

    def queue(self, request: gr.Request):
        run = self.services.runs.enqueue(LANE, session_key(request))
        return self.services.runs.waiting_message(run)

    def run(self, session, baseline, others, tasks, gallery_label, pairs_path, ks_text, gallery_limit,
            dataset: str | None = None, templates: str | None = None, request: gr.Request = None):
        yield from run_compare(self.services, session, baseline, others, tasks, gallery_label, pairs_path, ks_text,
                               gallery_limit, session_key(request), dataset=dataset, templates=templates)

    def stop(self, request: gr.Request):
        if not self.services.runs.stop(LANE, session_key(request)):
            return "Nothing to stop: no comparison of yours is queued or running."
        return "⏹ stopping … the finished evaluations will show in a moment."


def build(services, session: gr.State) -> dict[str, Any]:
    handlers = Handlers(services)
    with gr.Row():
        baseline = gr.Dropdown(label="Baseline", choices=[], allow_custom_value=True, elem_id="compare-baseline",
                               min_width=240)
        others = gr.Dropdown(label="Compare with (one or more)", choices=[], multiselect=True, allow_custom_value=True,
                             elem_id="compare-others", min_width=240)
    tasks = gr.CheckboxGroup(list(TASK_CHOICES), value=DEFAULT_TASKS, label="Tasks", elem_id="compare-tasks",
                             info="A task whose data is not here is skipped with a note; the others run.")
    with gr.Accordion("Data for VG-Relation / VG-Attribution (ARO)", open=False, elem_id="compare-aro"):
        gr.Markdown(f"VG-Relation and VG-Attribution need ARO's `{ARO_FILES[0]}` / `{ARO_FILES[1]}` and the images "
                    f"they name (ARO's `images/` folder). Upload them as one zip (≤ {services.config.max_upload_mb} "
                    f"MB: a subset of the records with their images fits), or the app's owner sets "
                    f"`PARACLIP_ARO_DIR`.")
        aro_upload = gr.File(label="ARO zip (annotation JSON + images)", file_types=[".zip", ".json"],
                             file_count="multiple", height=100, elem_id="compare-aro-upload")
        aro_message = gr.Markdown(elem_id="compare-aro-message")
    with gr.Accordion("Data for zero-shot classification", open=False, elem_id="compare-zeroshot"):
        with gr.Row():
            dataset = gr.Dropdown(label="Labelled images", choices=dataset_choices(), value=OFFLINE_DATASETS[0],
                                  allow_custom_value=True, elem_id="compare-dataset", min_width=200,
                                  info="the mini-world sets render offline")
            templates = gr.Textbox(label="Templates (one per line, {c} = class name)", lines=2, min_width=200,
                                   placeholder="empty = the dataset's own, else open_clip's 80 ImageNet templates",
                                   elem_id="compare-templates")
        gr.Markdown(f"Or upload a zip with one folder of images per class (`dog/1.jpg`, `cat/2.jpg` …; ≤ "
                    f"{services.config.max_upload_mb} MB); folder names are the class names.")
        class_upload = gr.File(label="Zip of class folders", file_types=[".zip"], file_count="multiple", height=140,
                               elem_id="compare-class-upload")
        class_message = gr.Markdown(elem_id="compare-class-message")
    with gr.Row():
        gallery = gr.Dropdown(label="Gallery", choices=[], allow_custom_value=True, min_width=200)
        pairs = gr.Textbox(label="Paraphrase pairs (JSONL/CSV; filled by “Send to Compare”)", min_width=200,
                           placeholder="empty = the gallery's default pairs")
        ks = gr.Textbox(label="k values for AO@k / JS@k", value="1,5,10,20", min_width=160)
        limit = gr.Number(label="Use the first N gallery images (0 = all)", value=0, precision=0, min_width=160)
    with gr.Row():
        run = gr.Button("Run comparison", variant="primary", elem_id="compare-run")
        stop = gr.Button("Stop", variant="stop", elem_id="compare-stop")
    status = gr.Markdown(elem_id="compare-status")
    summary = gr.Markdown(elem_id="compare-summary")
    notes = gr.Markdown(elem_id="compare-notes")
    results = gr.Dataframe(headers=["task", "metric", "n"], label="Results (each task's main metric; n = items scored)",
                           interactive=False, elem_id="compare-results", wrap=True)
    deltas = gr.Dataframe(headers=DELTA_VIEW_COLUMNS, label="Differences vs the baseline (paired bootstrap, 95% CI)",
                          interactive=False, elem_id="compare-deltas", wrap=True)
    slots = {}
    for row in range(0, len(PLOT_SLOTS), 2):
        with gr.Row():
            for slot in PLOT_SLOTS[row:row + 2]:
                # the figure carries its title; Gradio's label badge would cover it
                slots[slot] = gr.Plot(label=SLOT_LABELS[slot], show_label=False, elem_id=f"compare-plot-{slot}",
                                      visible=False, min_width=360)
    files = gr.File(label="Download results (CSV, JSON)", file_count="multiple", interactive=False)
    shown = {"status": status, "results": results, "deltas": deltas, "summary": summary, "notes": notes,
             **{f"plot_{slot}": slots[slot] for slot in PLOT_SLOTS}, "files": files, "session": session}
    outputs = [shown[name] for name in CompareOutputs._fields]
    run.click(handlers.queue, None, status, queue=False, api_visibility="private").then(
        handlers.run, [session, baseline, others, tasks, gallery, pairs, ks, limit, dataset, templates], outputs,
        concurrency_id=LANE, concurrency_limit=LANES[LANE], api_name="compare", show_progress="minimal")
    stop.click(handlers.stop, None, status, queue=False, api_visibility="private")
    aro_upload.upload(functools.partial(upload_aro, services), [session, aro_upload], [aro_message, session],
                      api_visibility="private")
    class_upload.upload(functools.partial(upload_classes, services), [session, class_upload],
                        [class_message, dataset, session], api_visibility="private")
    return {"baseline": baseline, "others": others, "gallery": gallery, "pairs": pairs}
