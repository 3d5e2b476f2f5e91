"""Train tab: start ParaCLIP fine-tuning as a background job, watch it, cancel it.

Jobs are subprocesses run by :class:`paraclip.jobs.JobRunner` (history in SQLite); the page polls
them with a ``gr.Timer``, so a reload or a second browser sees the same jobs.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import pandas as pd

from paraclip.plots import empty_figure, loss_curves, validation_curves
from workbench.examples import example_training_data
from workbench.image_uploads import IMAGE_SUFFIXES, save_image_upload
from workbench.policy import user_error
from workbench.train_checks import LIMITS, TrainCheckError, check_budget, check_settings, plan_training
from workbench.upkeep import check_visitor_quota
from workbench.uploads import UploadError, check_text_upload, remember_uploads

JOB_COLUMNS = ["id", "name", "status", "owner", "started", "duration", "step", "message"]


@dataclass(frozen=True)
class TrainForm:
    """The tab's settings as the Start button sends them: one field per input component, in this order
    (``build`` wires the components from these names)."""

    base_model: str = ""
    data_path: str = ""
    data_upload: Any = None
    images: str = ""
    steps: float | None = 200
    batch_size: float | None = 32
    lr: float | None = 1e-4
    loss_preset: str = "paraclip"
    loss_weights: str = ""
    val_split: float | None = 0.1
    device: str = "auto"
    name: str = ""


class JobView(NamedTuple):
    """One job as the tab shows it, by name (``build`` wires the components by these names)."""

    job_status: Any  # markdown: state, step, loss, message, final checkpoint
    curve: Any  # the loss figure
    val_curve: Any  # the validation figure
    log: Any
    checkpoints: Any  # files to download


class JobPoll(NamedTuple):
    """A poll of the jobs: the history table and the picked job's :class:`JobView`."""

    history: Any
    job_status: Any
    curve: Any
    val_curve: Any
    log: Any
    checkpoints: Any


class JobStarted(NamedTuple):
    """Start / Resume: the message, the job picker (on the new job), the session."""

    message: Any
    job_pick: Any
    session: Any


class ExampleData(NamedTuple):
    """“Use the example data”: the form fields it fills and the message."""

    data_path: str
    images: str
    steps: int
    batch_size: int
    message: str


def _fmt_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""


def jobs_frame(services, session: dict | None = None) -> pd.DataFrame:
    rows = []
    for job in services.jobs(session):
        metrics = services.runner.metrics(job) if job.active else []
        step = max((r.get("step", 0) for r in metrics), default="")
        dur = job.duration_s()
        rows.append({"id": job.id, "name": job.name, "status": job.status, "owner": job.owner or "",
                     "started": _fmt_time(job.started), "duration": f"{dur:.0f} s" if dur is not None else "",
                     "step": step, "message": (job.message or "")[:160]})
    return pd.DataFrame(rows, columns=JOB_COLUMNS)


def curve_metrics(rows: list[dict[str, Any]]) -> list[str]:
    keys = dict.fromkeys(k for r in rows for k in r)
    return [k for k in keys if k.startswith(("loss", "val_")) and not k.endswith(("seconds", "_s"))
            and any(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in rows)]


def job_view(services, job_id: str | None, session: dict | None = None) -> JobView:
    """What the tab shows of one job."""
    if not job_id:
        blank = empty_figure("Start a job or pick one from the history.")
        return JobView("No job selected.", blank, blank, "", None)
    job = services.runner.get(job_id)
    if job is not None and services.config.public and job.id not in {j.id for j in services.jobs(session)}:
        job = None  # another visitor's job: as if it did not exist
    if job is None:
        return JobView(f"No job {job_id}.", empty_figure("Unknown job."), empty_figure("Unknown job."), "", None)
    rows = services.runner.metrics(job)
    frame = pd.DataFrame(rows) if rows else None
    last = rows[-1] if rows else {}
    total = job.config.get("steps")
    step = last.get("step")
    progress = f" — step {step}/{total}" if step is not None and total else (f" — step {step}" if step else "")
    loss = f", loss {last['loss']:.4f}" if isinstance(last.get("loss"), (int, float)) else ""
    icon = {"running": "⏳", "cancelling": "⏹", "succeeded": "✅", "failed": "❌", "cancelled": "⏹",
            "lost": "⚠"}.get(job.status, "")
    status = f"{icon} **{job.name}** (`{job.id}`): **{job.status}**{progress}{loss}"
    if job.message and not job.active:
        status += f"\n\n{job.message}"
    if job.final_checkpoint:
        status += (f"\n\nFinal checkpoint: `{services.shown_path(job.final_checkpoint, session)}` — it now appears "
                   f"in Compare and Explore.")
    if job.status in ("interrupted", "cancelled", "lost", "failed") and job.kind == "train":
        status += "\n\n“Resume job” continues it from its last checkpoint."
    if frame is not None:  # losses and validation scores have different scales: one plot each
        shown = frame[["step", *curve_metrics(rows)]] if "step" in frame.columns else frame
        losses, scores = loss_curves(shown, f"Loss: {job.name}"), validation_curves(shown, f"Validation: {job.name}")
    else:
        losses = empty_figure("Waiting for the first metrics row …", "Loss")
        scores = empty_figure("Waiting for the first validation …", "Validation")
    checkpoints = services.downloadable(job.checkpoints(), session) or None
    return JobView(services.redact(status, session), losses, scores,
                   services.redact(services.runner.log_tail(job, 12_000), session), checkpoints)


def start_job(services, session, form: TrainForm, request: gr.Request | None) -> JobStarted:
    """Check the form, the data and the images, then start ``paraclip train`` as a subprocess."""
    from paraclip.errors import ParaclipError

    username = getattr(request, "username", None) if request is not None else None
    if not services.can_start_jobs(username):
        return JobStarted("❌ Log in to start jobs.", gr.skip(), gr.skip())
    session = dict(session or {})
    owner = services.owner(session, username)
    if services.config.public:
        services.session_dir(session)  # where this visitor's downloads are linked
    try:
        folder = services.session_dir(session)
        if form.data_upload is not None:
            data = str(check_text_upload(form.data_upload, folder, services.config.max_upload_mb, (".jsonl",),
                                         session=session if services.config.public else None))
        else:
            data = (form.data_path or "").strip() or session.get("paraphrases")
        if not data:
            raise UploadError("No training data: paraphrase captions in the Paraphrase tab and press "
                              "“Send to Train”, upload a paraphrase JSONL, or press “Use the example data”.")
        data = str(services.check_path(data, "Training data", session, username))
        settings = check_settings(form.steps, form.batch_size, form.lr, form.val_split, form.loss_preset,
                                  form.loss_weights)
        check_budget(settings, services.config.max_train_samples if services.config.public else None)
        check_visitor_quota(services, owner)
        model = services.resolve_model(form.base_model, session, username)
        image_spec = training_images(services, form.images, session, username)
        plan = plan_training(data, image_spec, f"“{form.images}”" if form.images else "the image source", settings,
                             form.loss_preset, folder)
        steps, val = settings["steps"], settings["val_split"]
        config: dict[str, Any] = {
            "model": model.name, "pretrained": model.pretrained or "none", "data": plan.data,
            "images": str(image_spec) if image_spec and Path(str(image_spec)).exists() else None,
            "steps": steps, "batch_size": settings["batch_size"], "lr": settings["lr"], "loss_preset": form.loss_preset,
            "loss_weights": (form.loss_weights or "").strip() or None, "val_split": val,
            "validation": ["heldout"] if val > 0 else [], "validate_every": max(1, steps // 5) if val > 0 else 0,
            "checkpoint_every": max(1, steps // 4), "device": form.device or "auto", "warmup": 0.1,
            "skip_missing_images": True, **plan.updates,
        }
        job = services.runner.start_training(config, name=(form.name or "").strip() or None, owner=owner)
    except TrainCheckError as exc:
        return JobStarted(str(exc), gr.skip(), session)
    except (UploadError, ParaclipError, ValueError) as exc:
        return JobStarted(f"❌ {user_error(exc, services.config.public)}", gr.skip(), session)
    notes = f" ({'; '.join(plan.notes)})" if plan.notes else ""
    return JobStarted(f"⏳ started job `{job.id}`{notes}", gr.update(choices=job_ids(services, session), value=job.id),
                      session)


def use_example_data(services) -> ExampleData:
    """The form filled with the ready-made mini-world training data."""
    data, images = example_training_data(services)
    with open(data, encoding="utf-8") as f:
        n = sum(1 for line in f if line.strip())
    data, images = services.shown_path(data), services.shown_path(images)  # public: no server paths
    return ExampleData(data, images, 200, 32, f"Example data: {n} mini-world scenes (not the Compare gallery's), each "
                       f"with a caption, two paraphrases and its image. Press “Start training”.")


def use_text_only():
    return ("no-l1", 0.0, "Text-only losses: `no-l1` = L2 (caption ↔ paraphrase 1) + L3 (paraphrase 1 ↔ paraphrase 2), "
            "the paper's ablation without the image term; no images needed, no held-out validation.")


def upload_images(services, session, files):
    """An image upload (zip or files named by image_id) as the image source of this session."""
    session = dict(session or {})
    if not files:
        return gr.skip(), "", session
    try:
        folder, count, skipped = save_image_upload(files, services.session_dir(session),
                                                   services.config.max_upload_mb)
    except UploadError as exc:
        return gr.skip(), f"❌ {exc}", session
    extra = f" ({skipped} other files skipped)" if skipped else ""
    return services.shown_path(folder, session), f"✅ {count} images uploaded{extra}; they are now the image source.", session


def training_images(services, images: str | None, session: dict, username: str | None) -> str | None:
    """The image source for a job: a gallery's folder, or (checked in public mode) a typed folder."""
    spec = services.defaults.gallery_choices().get(images, images)
    if not spec or not services.config.public or spec in services.defaults.gallery_choices().values():
        return spec
    path = services.check_path(spec, "Images", session, username)
    if not path.is_dir():
        raise UploadError("Images: in a public app, pick a gallery or give an image folder (image lists in "
                          "CSV/JSONL can name files anywhere, so they are not accepted).")
    return str(path)


def job_ids(services, session: dict | None = None) -> list[tuple[str, str]]:
    return [(f"{j.name} · {j.status} · {j.id}", j.id) for j in services.jobs(session)]


def cancel_job(services, job_id, request: gr.Request, session: dict | None = None):
    from paraclip.errors import ParaclipError

    username = getattr(request, "username", None) if request is not None else None
    if not job_id:
        return "❌ Pick a job to cancel."
    job = services.runner.get(job_id)
    if job is None:
        return f"❌ No job {job_id}."
    if services.config.auth_enabled and (not username or (job.owner and job.owner != username)):
        return "❌ Only the user who started a job can cancel it."
    if services.config.public and job.id not in {j.id for j in services.jobs(session, username)}:
        return f"❌ No job {job_id}."
    try:
        job = services.runner.cancel(job_id)
    except ParaclipError as exc:
        return f"❌ {exc}"
    return f"⏹ cancelling `{job.id}` (stops at the next step; killed after {services.runner.cancel_grace_s:.0f} s)"


def resume_job(services, job_id, session, request: gr.Request | None) -> JobStarted:
    """Start a stopped training job again from its last checkpoint (its owner only)."""
    from paraclip.errors import ParaclipError

    username = getattr(request, "username", None) if request is not None else None
    session = dict(session or {})
    mine = {j.id for j in services.jobs(session, username)}
    if not job_id or (services.config.public and job_id not in mine):
        return JobStarted("❌ Pick one of your stopped jobs to resume.", gr.skip(), session)
    if not services.can_start_jobs(username):
        return JobStarted("❌ Log in to start jobs.", gr.skip(), session)
    try:
        owner = services.owner(session, username)
        check_visitor_quota(services, owner)
        job = services.runner.resume(job_id, owner)
    except (ParaclipError, ValueError) as exc:
        return JobStarted(f"❌ {user_error(exc, services.config.public)}", gr.skip(), session)
    return JobStarted(f"⏳ resumed as job `{job.id}` (from its last checkpoint)",
                      gr.update(choices=job_ids(services, session), value=job.id), session)


def pick_from_history(services, evt: gr.SelectData, session: dict | None = None):
    if not evt.row_value:
        return gr.skip()
    return gr.update(choices=job_ids(services, session), value=evt.row_value[0])


def poll(services, job_id, session: dict | None = None, timer: bool = False) -> JobPoll:
    """The history and the picked job; a timer tick on a job finished a while ago sends only the history
    (its view, checkpoint files included, was sent when it finished or was picked)."""
    job = services.runner.get(job_id) if job_id and timer else None
    if job is not None and not job.active and time.time() - (job.finished or 0) > 3 * services.config.poll_s:
        return JobPoll(jobs_frame(services, session), *[gr.skip()] * len(JobView._fields))
    return JobPoll(jobs_frame(services, session), *job_view(services, job_id, session))


class Handlers:
    """Handlers that take gr.Request / gr.SelectData: bound methods, so Gradio sees their type hints
    (it does not look through functools.partial)."""

    def __init__(self, services):
        self.services = services

    def start(self, request: gr.Request, session, *values):
        """``values``: the inputs in :class:`TrainForm`'s order."""
        return start_job(self.services, session, TrainForm(*values), request)

    def cancel(self, job_id, session, request: gr.Request):
        return cancel_job(self.services, job_id, request, session)

    def resume(self, job_id, session, request: gr.Request):
        return resume_job(self.services, job_id, session, request)

    def pick(self, session, evt: gr.SelectData):
        return pick_from_history(self.services, evt, session)

    def export(self, job_id, session, request: gr.Request):
        from workbench.export_job import export_job

        message, archive, session = export_job(self.services, job_id, session, getattr(request, "username", None))
        return message, gr.update(value=archive, visible=archive is not None), session


# The trainer's loss presets (paraclip.training.losses.LOSS_PRESETS; a test keeps the two equal) -
# listed here so that building the page does not import torch.
LOSS_PRESET_NAMES = ["paraclip", "l1-only", "no-l1", "l2-only", "no-l2", "l3-only", "no-l3", "clip", "laclip"]


def build(services, session: gr.State) -> dict[str, Any]:
    handlers = Handlers(services)

    with gr.Row():
        with gr.Column():
            base_model = gr.Dropdown(label="Base model (or type NAME@PRETRAINED, e.g. ViT-B-32@openai)", choices=[],
                                     allow_custom_value=True, elem_id="train-model")
            data_path = gr.Textbox(label="Paraphrase JSONL (filled by “Send to Train”)", elem_id="train-data")
            data_upload = gr.File(label="…or upload a paraphrase JSONL", file_types=[".jsonl"], height=100)
            images = gr.Dropdown(label="Images (a gallery, or an image folder path)", choices=[],
                                 allow_custom_value=True, elem_id="train-images")
            image_upload = gr.File(label="…or upload images (a zip, or the files) named by image_id",
                                   file_types=[".zip", *IMAGE_SUFFIXES], file_count="multiple", height=120)
            with gr.Row():
                example = gr.Button("Use the example data", size="sm", elem_id="train-example")
                text_only = gr.Button("Use text-only losses (no images)", size="sm", elem_id="train-text-only")
        with gr.Column():
            with gr.Row():
                steps = gr.Number(label="steps", value=200, precision=0, minimum=LIMITS["steps"][0],
                                  maximum=LIMITS["steps"][1])
                batch_size = gr.Number(label="batch size (global)", value=32, precision=0,
                                       minimum=LIMITS["batch_size"][0], maximum=LIMITS["batch_size"][1])
                lr = gr.Number(label="learning rate", value=1e-4)
            with gr.Row():
                loss_preset = gr.Dropdown(LOSS_PRESET_NAMES, value="paraclip", label="loss preset",
                                          info="paraclip = L1 + L2 + L3 (the paper); ablations drop terms")
                loss_weights = gr.Textbox(label="loss weights (e.g. l1=1,l2=0.5)")
            with gr.Row():
                val_split = gr.Slider(*LIMITS["val_split"], value=0.1, step=0.05,
                                      label="held-out fraction for validation")
                device = gr.Dropdown(["auto", "cpu", "cuda"], value="auto", label="device")
            job_name = gr.Textbox(label="Job name (optional)")
    with gr.Row():
        start = gr.Button("Start training", variant="primary", elem_id="train-start")
        cancel = gr.Button("Cancel job", variant="stop", elem_id="train-cancel")
        resume = gr.Button("Resume job", elem_id="train-resume")
    message = gr.Markdown(elem_id="train-message")
    with gr.Row():
        job_pick = gr.Dropdown(label="Job", choices=[], elem_id="train-job")
    job_status = gr.Markdown(elem_id="train-job-status")
    with gr.Row():  # the figures carry their titles; Gradio's label badge would cover them
        curve = gr.Plot(label="Loss", show_label=False, elem_id="train-curve", min_width=360)
        val_curve = gr.Plot(label="Validation", show_label=False, elem_id="train-validation", min_width=360)
    with gr.Accordion("Log", open=False):
        log = gr.Textbox(label="Log (last lines)", lines=12, max_lines=12, autoscroll=True)
    checkpoints = gr.File(label="Checkpoints", file_count="multiple", interactive=False)
    with gr.Row():  # the message below the button: beside it, a phone squeezes it into a narrow column
        export = gr.Button("Export as open_clip model (zip)", size="sm", elem_id="train-export", scale=0,
                           min_width=240)
    export_message = gr.Markdown(elem_id="train-export-message")
    export_file = gr.File(label="Exported model", interactive=False, visible=False, elem_id="train-export-file")
    history = gr.Dataframe(headers=JOB_COLUMNS, label="Job history (kept across app restarts)", interactive=False,
                           elem_id="train-history")
    timer = gr.Timer(services.config.poll_s)

    form = {"base_model": base_model, "data_path": data_path, "data_upload": data_upload, "images": images,
            "steps": steps, "batch_size": batch_size, "lr": lr, "loss_preset": loss_preset,
            "loss_weights": loss_weights, "val_split": val_split, "device": device, "name": job_name}
    shown = {"message": message, "job_pick": job_pick, "session": session, "data_path": data_path, "images": images,
             "steps": steps, "batch_size": batch_size, "history": history, "job_status": job_status, "curve": curve,
             "val_curve": val_curve, "log": log, "checkpoints": checkpoints}
    started = [shown[name] for name in JobStarted._fields]
    start.click(handlers.start, [session, *(form[f.name] for f in dataclasses.fields(TrainForm))],
                started, api_name="start_training", concurrency_id="train", concurrency_limit=2)
    cancel.click(handlers.cancel, [job_pick, session], message, api_name="cancel_training")
    resume.click(handlers.resume, [job_pick, session], started, api_name="resume_training")
    data_upload.upload(remember_uploads, [session, data_upload], session, api_visibility="private", queue=False)
    example.click(functools.partial(use_example_data, services), None, [shown[name] for name in ExampleData._fields],
                  api_visibility="private")
    text_only.click(use_text_only, None, [loss_preset, val_split, message], api_visibility="private")
    image_upload.upload(functools.partial(upload_images, services), [session, image_upload],
                        [images, message, session], api_visibility="private")
    outputs = [shown[name] for name in JobPoll._fields]
    timer.tick(functools.partial(poll, services, timer=True), [job_pick, session], outputs, api_visibility="private",
               show_progress="hidden", queue=False)
    job_pick.change(functools.partial(poll, services), [job_pick, session], outputs, api_visibility="private")
    export.click(handlers.export, [job_pick, session], [export_message, export_file, session],
                 api_visibility="private", concurrency_id="export", concurrency_limit=1)
    history.select(handlers.pick, session, job_pick, api_visibility="private")
    job_pick.focus(lambda s: gr.update(choices=job_ids(services, s)), session, job_pick, api_visibility="private")
    return {"base_model": base_model, "data_path": data_path, "images": images, "job_pick": job_pick}
