"""Paraphrase tab: captions in, the paper's two-step paraphrases out, reviewed row by row.

Work is done by :func:`paraclip.paraphrase.run_paraphrasing` in a worker thread; the handler is
a generator that shows progress and the rows finished so far. Stop sets this run's own stop flag
(:class:`workbench.runs.RunBoard`): the engine ends in-flight generation, keeps every finished
record, and the handler shows them (table and downloads). Runs have their own queue lane, so they
never hold up Compare or Explore. The API key is a password field: it is handed to the backend
as an argument, and it is never written to disk, logged, put in the environment or kept in the session.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from workbench import review as rv
from workbench.local_llm import copy_failures_note, explain_local_failure, local_backend, local_model_status
from workbench.policy import AccessPolicy, user_error
from workbench.runs import LANES, Worker, session_key
from workbench.uploads import UploadError, check_pasted_text, check_text_upload, remember_uploads

# On a phone (≤ 640 px) the wide table gives way to a narrow copy with the texts and one verdict column
# (no index, no image_id), so the text wraps at a readable length; a click on either selects the row.
CSS = """
.pc-narrow-only {display: none !important;}
@media (max-width: 640px) {
  .pc-wide-only {display: none !important;}
  .pc-narrow-only {display: flex !important;}
}
"""
BACKEND_LOCAL = "local (offline LLM)"
BACKEND_API = "OpenAI-compatible API"
LANE = "paraphrase"
TABLE_REFRESH_S = 2.0


@dataclass(frozen=True)
class ParaphraseForm:
    """The tab's settings as the Generate button sends them: one field per input component, in this
    order (``build`` wires the components from these names, so the two cannot drift apart)."""

    text: str = ""
    upload: Any = None
    backend: str = BACKEND_LOCAL
    local_model: str = ""
    base_url: str = ""
    api_model: str = ""
    api_key: str = ""
    preset: str = "small-model"
    step1: str = ""
    step2: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    limit: int | None = 0
    view: str = "all"
    meaning_judge: bool = False  # the API model judges each paraphrase (--meaning-judge); last: older API calls work

    def config(self, cache_path: str):
        """The engine's settings (prompts and sampling left empty take the preset's)."""
        from paraclip.paraphrase import CaptionInput, ParaphraseConfig

        def number(value, kind):
            return None if value is None else kind(value)

        return ParaphraseConfig(preset=self.preset, step1_prompt=self.step1 or None, step2_prompt=self.step2 or None,
                                temperature=number(self.temperature, float), top_p=number(self.top_p, float),
                                max_tokens=number(self.max_tokens, int), limit=int(self.limit) if self.limit else None,
                                meaning_judge=bool(self.meaning_judge) and self.backend == BACKEND_API,
                                input=CaptionInput(skip_bad_lines=True), cache_path=cache_path)


def preset_fields(name: str) -> tuple[str, str, float, float, int]:
    from paraclip.paraphrase import PRESETS

    p = PRESETS.get(name)
    return p.step1, p.step2, p.sampling.temperature, p.sampling.top_p, p.sampling.max_tokens


def write_captions_input(text: str, upload, folder: Path, max_mb: float, session: dict | None = None,
                         max_lines: int | None = None) -> Path:
    """The captions to paraphrase as a file: the upload (checked) or the pasted text. ``session`` and
    ``max_lines`` (public mode: :meth:`Services.upload_rules`): own uploads only, a caption cap."""
    if upload is not None:
        return check_text_upload(upload, folder, max_mb, session=session, max_lines=max_lines)
    text = (text or "").strip()
    if not text:
        raise UploadError("No captions: paste one caption per line (or image_id,caption CSV), or upload a file.")
    check_pasted_text(text, max_mb, max_lines)
    first = text.splitlines()[0].strip().lower().replace(" ", "")
    if first.startswith("image_id,caption") or first.startswith("caption,image_id"):
        path = folder / f"captions-{uuid.uuid4().hex[:6]}.csv"
    else:
        path = folder / f"captions-{uuid.uuid4().hex[:6]}.txt"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def make_api_backend(base_url: str, api_model: str, api_key: str, policy: AccessPolicy | None = None):
    """The OpenAI-compatible backend. ``policy`` (public mode) vets the base URL — checked now and again at
    every connection — and errors then carry no reply text."""
    from paraclip.paraphrase.backends.openai_compat import DEFAULT_BASE_URL, OpenAICompatibleBackend

    policy = policy or AccessPolicy()
    if not (base_url or "").strip() and not (api_key or "").strip():
        raise UploadError("The OpenAI-compatible backend needs a base URL (for a local server) or an API key.")
    policy.check_url((base_url or "").strip() or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
    # the key typed, or none: never the server's own OPENAI_API_KEY
    return OpenAICompatibleBackend(model=(api_model or "gpt-3.5-turbo").strip(),
                                   base_url=(base_url or "").strip() or None, api_key_env=None,
                                   api_key=api_key or None, concurrency=8, max_retries=2, timeout=60.0,
                                   transport=policy.transport(8), show_bodies=not policy.public)


def progress_text(stats: dict[str, Any], loading: str | None) -> str:
    if not stats:
        return f"⏳ {loading or 'starting'} …"
    eta = f", about {stats['eta_s']:.0f} s left" if stats.get("eta_s") else ""
    return (f"⏳ {stats.get('done', 0)}/{stats.get('total', '?')} captions ({stats.get('ok', 0)} ok, "
            f"{stats.get('failed', 0)} failed){eta} — Stop keeps the finished rows")


def final_text(outcome: dict[str, Any], records: list[dict[str, Any]], typed_model: bool, public: bool = False) -> str:
    if "load_error" in outcome:
        return explain_local_failure(outcome["load_error"], typed_model)
    if "error" in outcome:
        kept = f" The {len(records)} finished rows are kept below." if records else ""
        return f"❌ {user_error(outcome['error'], public)}{kept}"
    s = outcome.get("summary") or {}
    ok, failed = s.get("ok", 0), s.get("failed", 0)
    if s.get("stopped"):
        return (f"⏹ stopped: {s.get('done', len(records))} of {s.get('total', '?')} captions done ({ok} ok, "
                f"{failed} failed); the finished rows are below and in the downloads.")
    return (f"✅ {ok} paraphrased, {failed} failed, {s.get('filtered', 0)} filtered "
            f"({s.get('filtered_by_length', 0)} captions outside the paper's 2–15 word filter, "
            f"{s.get('skipped_bad_lines', 0)} bad lines skipped) in {s.get('elapsed_s', 0.0):.1f} s."
            f"{copy_failures_note(records)}")


class ParaphraseOutputs(NamedTuple):
    """The Generate handler's outputs by name (``build`` wires the components by these names)."""

    status: Any
    table: Any
    files: Any
    session: Any
    view: Any

    @classmethod
    def only(cls, **values) -> "ParaphraseOutputs":
        """The outputs given; every other component keeps what it shows (``gr.skip()``)."""
        return cls(**{name: values.get(name, gr.skip()) for name in cls._fields})


def run_paraphrase(services, session, form: ParaphraseForm, session_id="api"):
    """Generator handler: yields :class:`ParaphraseOutputs` (progress, the rows so far) while the run goes on."""
    from paraclip.errors import ParaclipError
    from paraclip.paraphrase import load_records, run_paraphrasing

    view = form.view or "all"
    session = dict(session or {})
    with services.runs.running(LANE, session_id) as run:
        if run.stopped:
            yield ParaphraseOutputs.only(status="⏹ stopped before it started.", session=session)
            return
        folder = services.session_dir(session)
        try:
            source = write_captions_input(form.text, form.upload, folder, services.config.max_upload_mb,
                                          **services.upload_rules(session))
            config = form.config(str(services.config.app_dir / "paraphrase-cache.sqlite"))
            api = make_api_backend(form.base_url, form.api_model, form.api_key, services.policy) \
                if form.backend == BACKEND_API else None
            local_model = services.policy.check_spec((form.local_model or "").strip(), "Local model",
                                                     services.allowed_roots(session))
        except (UploadError, ParaclipError, ValueError) as exc:
            yield ParaphraseOutputs.only(status=f"❌ {user_error(exc, services.config.public)}", session=session)
            return
        out = folder / f"paraphrases-{uuid.uuid4().hex[:6]}.jsonl"
        session["paraphrases"] = str(out)  # known from the first yield: a stopped or left run keeps its rows
        stats: dict[str, Any] = {}
        outcome: dict[str, Any] = {}
        worker = Worker(run, "paraclip-wb-paraphrase")
        worker.start(_work, api, local_model, source, out, config, worker, stats, outcome, run_paraphrasing)
        yield ParaphraseOutputs.only(status=progress_text(stats, outcome.get("loading")),
                                     table=rv.records_table([], view), files=None, session=session)
        shown, last = -1, 0.0
        while worker.wait(0.5):
            table = gr.skip()
            now = time.monotonic()
            if stats.get("done", 0) != shown and now - last >= TABLE_REFRESH_S and out.is_file():
                shown, last = stats.get("done", 0), now
                table = rv.records_table(load_records(out), view)
            yield ParaphraseOutputs.only(status=progress_text(stats, outcome.get("loading")), table=table,
                                         session=session)
        if worker.failed:
            outcome["error"] = worker.error
        records = load_records(out) if out.is_file() else []
        yield ParaphraseOutputs(final_text(outcome, records, bool((local_model or "").strip()), services.config.public),
                                rv.records_table(records, view), rv.downloads(out, records), session,
                                gr.update(choices=rv.filter_choices(records), value=view))


def _work(api, local_model, source, out, config, worker, stats, outcome, run_paraphrasing) -> None:
    """The worker (:class:`workbench.runs.Worker`): get the backend (the shared local model, loaded once),
    then run; the engine checks the run's stop flag and keeps every finished record."""
    backend = api
    try:
        if backend is None:
            try:
                backend = local_backend(local_model, lambda message: outcome.update(loading=message))
            except Exception as exc:  # noqa: BLE001 - explained to the user (what to install or type)
                outcome["load_error"] = exc
                return
        if worker.should_stop():
            outcome["summary"] = {"stopped": True, "done": 0}
            return
        outcome["loading"] = "paraphrasing"
        outcome["summary"] = run_paraphrasing(source, out, backend, config, progress=stats.update,
                                              should_stop=worker.should_stop)
    finally:
        if api is not None:  # the shared local model stays loaded for the next run
            api.close()


def gallery_captions(services, gallery_label: str) -> str:
    """The gallery's ``image_id,caption`` rows (each image's first caption) for the captions box."""
    if not gallery_label:
        # nothing picked yet: take the first gallery that is ready (the list fills in as defaults build)
        ready = list(services.defaults.gallery_choices())
        if not ready:
            gr.Warning("No gallery is ready yet (the offline defaults are still being prepared); try again shortly.")
            return gr.skip()
        gallery_label = ready[0]
    try:
        gallery = services.gallery(gallery_label)
    except Exception as exc:  # noqa: BLE001 - a typed gallery that cannot be read is a message
        gr.Warning(user_error(exc, services.config.public))
        return gr.skip()
    return gallery.captions_csv(first_only=True).strip()


class Handlers:
    """Handlers that take gr.Request: bound methods, so Gradio sees their type hints (it does not look
    through functools.partial)."""

    def __init__(self, services):
        self.services = services

    def queue(self, request: gr.Request):
        """Instant (outside the queue): note the run, say what it waits for, clear the review boxes."""
        run = self.services.runs.enqueue(LANE, session_key(request))
        return (self.services.runs.waiting_message(run), *rv.cleared_review())

    def run(self, request: gr.Request, session, *values):
        """``values``: the inputs in :class:`ParaphraseForm`'s order."""
        yield from run_paraphrase(self.services, session, ParaphraseForm(*values), session_key(request))

    def stop(self, request: gr.Request):
        runs = self.services.runs.stop(LANE, session_key(request))
        if not runs:
            return "Nothing to stop: no paraphrase run of yours is queued or running."
        return "⏹ stopping … the rows finished so far will show in a moment."


def build(services, session: gr.State) -> dict[str, Any]:
    handlers = Handlers(services)
    step1, step2, temperature, top_p, max_tokens = preset_fields("small-model")
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Captions (one per line, or CSV with image_id,caption)", lines=6,
                              placeholder="a dog runs across a grassy field\nthree people ride bikes on a road")
            with gr.Row():
                upload = gr.File(label=f"…or upload txt / CSV / JSONL (≤ {services.config.max_upload_mb} MB)",
                                 file_types=[".txt", ".csv", ".tsv", ".jsonl", ".json"], height=110)
                gallery_pick = gr.Dropdown(label="…or take a gallery's captions", choices=[], allow_custom_value=True)
            load_gallery = gr.Button("Load gallery captions", size="sm")
        with gr.Column(scale=2):
            backend = gr.Radio([BACKEND_LOCAL, BACKEND_API], value=BACKEND_LOCAL, label="Backend")
            gr.Markdown(local_model_status().markdown(), elem_id="paraphrase-model")
            local_model = gr.Textbox(label="Local model (empty = the server's shared model)",
                                     placeholder="path to a .gguf / model folder / HF id")
            with gr.Group(visible=False) as api_box:
                base_url = gr.Textbox(label="Base URL", placeholder="https://api.openai.com/v1")
                api_model = gr.Textbox(label="Model", value="gpt-3.5-turbo")
                api_key = gr.Textbox(label="API key (never stored or logged)", type="password")
                meaning_judge = gr.Checkbox(label="Let this model judge each paraphrase's meaning", value=False,
                                            info="one short extra request per paraphrase; the flags then come from "
                                                 "its verdict (README: Which flag to act on)")
            limit = gr.Number(label="Paraphrase at most N captions (0 = all)", value=0, precision=0)
    with gr.Accordion("Prompts and sampling (the paper's two steps)", open=False):
        from paraclip.paraphrase.config import ParaphraseConfig  # the choices and ranges below are its fields'
        from paraclip.settings import spec_of

        preset = gr.Dropdown(spec_of(ParaphraseConfig, "preset").choice_names(), value="small-model", label="Preset",
                             info="paper: the official prompts for API models; small-model: for local LLMs < 3B")
        p_step1 = gr.Textbox(label="Step 1 prompt ({} = caption)", value=step1, lines=2)
        p_step2 = gr.Textbox(label="Step 2 prompt ({} = step-1 output)", value=step2, lines=2)
        with gr.Row():
            t_range, p_range = ParaphraseConfig.bounds("temperature"), ParaphraseConfig.bounds("top_p")
            temp = gr.Slider(t_range.low, t_range.high, value=temperature, step=0.05, label="temperature")
            topp = gr.Slider(p_range.low + 0.01, p_range.high, value=top_p, step=0.01, label="top_p")  # (0, 1]
            maxtok = gr.Number(value=max_tokens, precision=0, label="max tokens")
    with gr.Row():
        run = gr.Button("Generate paraphrases", variant="primary", elem_id="paraphrase-run")
        stop = gr.Button("Stop", variant="stop", elem_id="paraphrase-stop")
    status = gr.Markdown(elem_id="paraphrase-status")
    view = gr.Radio(rv.filter_choices([]), value="all", label="Show rows", elem_id="paraphrase-view")
    table = gr.Dataframe(headers=rv.TABLE_COLUMNS, label="Paraphrases (click a row to review it)", interactive=False,
                         wrap=True, max_height=520, column_widths=rv.COLUMN_WIDTHS, elem_id="paraphrase-table",
                         elem_classes=["pc-wide-only"])
    narrow = gr.Dataframe(headers=rv.NARROW_COLUMNS, label="Paraphrases (tap a row to review it)", interactive=False,
                          wrap=True, max_height=640, column_widths=rv.NARROW_WIDTHS,
                          elem_id="paraphrase-table-narrow", elem_classes=["pc-narrow-only"])
    picked = gr.State(None)  # the clicked row and the file it belongs to
    with gr.Accordion("Review the selected row", open=True):
        with gr.Row():
            row_index = gr.Number(label="Row index", value=None, precision=0, elem_id="review-index")
            review = gr.Dropdown(rv.REVIEW_CHOICES, value="accepted", label="Review", elem_id="review-choice")
            edit1 = gr.Textbox(label="paraphrase 1 (edit to correct)", elem_id="review-p1")
            edit2 = gr.Textbox(label="paraphrase 2 (edit to correct)", elem_id="review-p2")
        with gr.Row():
            apply = gr.Button("Apply review", elem_id="review-apply")
            accept_ok = gr.Button("Accept all unreviewed ok rows")
    files = gr.File(label="Download (JSONL, CSV)", file_count="multiple", interactive=False,
                    elem_id="paraphrase-files")
    with gr.Row():
        to_train = gr.Button("Send to Train →")
        to_compare = gr.Button("Send to Compare →")

    upload.upload(remember_uploads, [session, upload], session, api_visibility="private", queue=False)
    backend.change(lambda k: gr.update(visible=k == BACKEND_API), backend, api_box, api_visibility="private")
    preset.change(lambda p: preset_fields(p), preset, [p_step1, p_step2, temp, topp, maxtok], api_visibility="private")
    load_gallery.click(functools.partial(gallery_captions, services), gallery_pick, text, api_visibility="private")
    form = {"text": text, "upload": upload, "backend": backend, "local_model": local_model, "base_url": base_url,
            "api_model": api_model, "api_key": api_key, "preset": preset, "step1": p_step1, "step2": p_step2,
            "temperature": temp, "top_p": topp, "max_tokens": maxtok, "limit": limit, "view": view,
            "meaning_judge": meaning_judge}
    shown = {"status": status, "table": table, "files": files, "session": session, "view": view}
    run.click(handlers.queue, None, [status, row_index, edit1, edit2, picked], queue=False,
              api_visibility="private").then(
        handlers.run, [session, *(form[f.name] for f in dataclasses.fields(ParaphraseForm))],
        [shown[name] for name in ParaphraseOutputs._fields], concurrency_id=LANE, concurrency_limit=LANES[LANE],
        api_name="paraphrase", show_progress="minimal",
    )
    stop.click(handlers.stop, None, status, queue=False, api_visibility="private")
    table.change(rv.narrow_table, table, narrow, api_visibility="private", queue=False, show_progress="hidden")
    for shown in (table, narrow):  # the narrow table's rows are the wide table's, in the same order
        shown.select(rv.select_row, [session, table], [row_index, edit1, edit2, picked], api_visibility="private")
    row_index.input(rv.typed_row, [session, row_index], [edit1, edit2, picked], api_visibility="private")
    apply.click(rv.apply_review, [session, picked, row_index, review, edit1, edit2, view], [status, table, files, view],
                api_visibility="private")
    accept_ok.click(rv.accept_all_ok, [session, view], [status, table, files], api_visibility="private")
    view.change(rv.change_view, [session, view], table, api_visibility="private")
    return {"status": status, "to_train": to_train, "to_compare": to_compare, "gallery_pick": gallery_pick,
            "upload": upload}
