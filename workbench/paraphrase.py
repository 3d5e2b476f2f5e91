"""Paraphrase tab: captions in, the paper's two-step paraphrases out, reviewed row by row.

Work is done by :func:`paraclip.paraphrase.run_paraphrasing` in a worker thread; the handler
is a generator that reports progress and stops the run (finished records kept) when the user
presses Stop or leaves. The API key is a password field: it is handed to the backend through a
one-off environment variable that is removed as soon as the backend has read it, and it is
never written to disk, logged or kept in the session.
"""

from __future__ import annotations

import csv
import functools
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from workbench.policy import AccessPolicy, user_error
from workbench.uploads import UploadError, check_text_upload

BACKEND_LOCAL = "local (offline LLM)"
BACKEND_API = "OpenAI-compatible API"
TABLE_COLUMNS = ["index", "image_id", "caption", "paraphrase_1", "paraphrase_2", "status", "flags", "review"]
_key_lock = threading.Lock()


def preset_fields(name: str) -> tuple[str, str, float, float, int]:
    from paraclip.paraphrase import PRESETS

    p = PRESETS.get(name)
    return p.step1, p.step2, p.sampling.temperature, p.sampling.top_p, p.sampling.max_tokens


def flags_of(record: dict[str, Any]) -> str:
    """Short quality marks for the table: copies, failures, low novelty."""
    q = record.get("quality") or {}
    marks = []
    if record.get("status") != "ok":
        marks.append(f"⚠ {record.get('error') or record.get('status')}")
    if q.get("copy_1") or q.get("copy_2"):
        marks.append("copy")
    for key in ("novelty_1", "novelty_2"):
        if q.get(key) is not None and q[key] < 0.2:
            marks.append(f"low {key.replace('_', ' ')} {q[key]:.2f}")
    return "; ".join(marks)


def records_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"index": r.get("index"), "image_id": r.get("image_id") or "", "caption": r.get("caption"),
             "paraphrase_1": r.get("paraphrase_1") or "", "paraphrase_2": r.get("paraphrase_2") or "",
             "status": r.get("status"), "flags": flags_of(r), "review": r.get("review", "unreviewed")}
            for r in records]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def write_captions_input(text: str, upload, folder: Path, max_mb: float) -> Path:
    """The captions to paraphrase as a file: the upload (checked) or the pasted text."""
    if upload is not None:
        return check_text_upload(upload, folder, max_mb)
    text = (text or "").strip()
    if not text:
        raise UploadError("No captions: paste one caption per line (or image_id,caption CSV), or upload a file.")
    first = text.splitlines()[0].strip().lower().replace(" ", "")
    if first.startswith("image_id,caption") or first.startswith("caption,image_id"):
        path = folder / f"captions-{uuid.uuid4().hex[:6]}.csv"
    else:
        path = folder / f"captions-{uuid.uuid4().hex[:6]}.txt"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def make_backend_for(kind: str, local_model: str, base_url: str, api_model: str, api_key: str,
                     policy: AccessPolicy | None = None, roots=()):
    """The chosen backend. ``policy`` (public mode) vets the base URL — checked now and again at every
    connection — and the local model box; API errors then carry no reply text."""
    from paraclip.paraphrase import make_backend
    from paraclip.paraphrase.backends.openai_compat import DEFAULT_BASE_URL

    policy = policy or AccessPolicy()
    if kind == BACKEND_API:
        if not (base_url or "").strip() and not (api_key or "").strip():
            raise UploadError("The OpenAI-compatible backend needs a base URL (for a local server) or an API key.")
        policy.check_url((base_url or "").strip() or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
        env_name = f"PARACLIP_WB_KEY_{uuid.uuid4().hex}"
        with _key_lock:
            if api_key:
                os.environ[env_name] = api_key
            try:
                return make_backend("openai", model=(api_model or "gpt-3.5-turbo").strip(),
                                    base_url=(base_url or "").strip() or None, api_key_env=env_name, concurrency=8,
                                    max_retries=2, timeout=60.0, transport=policy.transport(8),
                                    show_bodies=not policy.public)
            finally:
                os.environ.pop(env_name, None)
    local_model = policy.check_spec((local_model or "").strip(), "Local model", roots)
    return make_backend("local", model=local_model or None, batch_size=8)


def export_csv(records: list[dict[str, Any]], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "image_id", "caption", "paraphrase_1", "paraphrase_2", "status", "review"])
        for r in records:
            writer.writerow([r.get("index"), r.get("image_id") or "", r.get("caption"), r.get("paraphrase_1") or "",
                             r.get("paraphrase_2") or "", r.get("status"), r.get("review", "unreviewed")])
    return path


def run_paraphrase(services, session, text, upload, backend_kind, local_model, base_url, api_model, api_key,
                   preset, step1, step2, temperature, top_p, max_tokens, limit):
    """Generator handler: yields (status, table, files, session) while the run goes on."""
    from paraclip.errors import ParaclipError
    from paraclip.paraphrase import ParaphraseConfig, load_records, run_paraphrasing

    session = dict(session or {})
    folder = services.session_dir(session)
    try:
        source = write_captions_input(text, upload, folder, services.config.max_upload_mb)
        config = ParaphraseConfig(preset=preset, step1_prompt=step1 or None, step2_prompt=step2 or None,
                                  temperature=float(temperature), top_p=float(top_p), max_tokens=int(max_tokens),
                                  limit=int(limit) if limit else None, skip_bad_lines=True,
                                  cache_path=str(services.config.app_dir / "paraphrase-cache.sqlite"))
        yield "⏳ loading the backend …", gr.skip(), gr.skip(), session
        backend = make_backend_for(backend_kind, local_model, base_url, api_model, api_key, services.policy,
                                   services.allowed_roots(session))
    except (UploadError, ParaclipError, ValueError) as exc:
        yield f"❌ {user_error(exc, services.config.public)}", gr.skip(), gr.skip(), session
        return
    out = folder / f"paraphrases-{uuid.uuid4().hex[:6]}.jsonl"
    stats: dict[str, Any] = {}
    outcome: dict[str, Any] = {}
    stop = threading.Event()

    def work():
        try:
            outcome["summary"] = run_paraphrasing(source, out, backend, config, progress=stats.update,
                                                  should_stop=stop.is_set)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            outcome["error"] = exc
        finally:
            backend.close()

    worker = threading.Thread(target=work, name="paraclip-wb-paraphrase", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
            if stats:
                eta = f", ETA {stats['eta_s']:.0f} s" if stats.get("eta_s") else ""
                yield (f"⏳ {stats.get('done', 0)}/{stats.get('total', '?')} captions ({stats.get('ok', 0)} ok, "
                       f"{stats.get('failed', 0)} failed){eta}", gr.skip(), gr.skip(), session)
    finally:
        stop.set()  # the user pressed Stop or left: the run ends, finished records stay in the file
    records = load_records(out) if out.is_file() else []
    session["paraphrases"] = str(out)
    files = [str(out), str(export_csv(records, out.with_suffix(".csv")))] if records else None
    if "error" in outcome:
        message = f"❌ {user_error(outcome['error'], services.config.public)}"
    else:
        s = outcome["summary"]
        message = (f"✅ {s['ok']} paraphrased, {s['failed']} failed, {s.get('filtered', 0)} filtered "
                   f"({s['filtered_by_length']} captions outside the paper's 2–15 word filter, "
                   f"{s['skipped_bad_lines']} bad lines skipped) in {s['elapsed_s']:.1f} s.")
    yield message, records_table(records), files, session


def apply_review(session, index, review, p1, p2):
    """Set one record's review state (and optionally its corrected paraphrases)."""
    from paraclip.errors import ParaclipError
    from paraclip.paraphrase import load_records, update_reviews

    path = (session or {}).get("paraphrases")
    if not path:
        return "❌ Nothing to review yet: run paraphrasing first.", gr.skip(), gr.skip()
    if index is None:
        return "❌ Pick a row: click it in the table or type its index.", gr.skip(), gr.skip()
    update: dict[str, Any] = {"review": review}
    if (p1 or "").strip():
        update["paraphrase_1"] = p1
    if (p2 or "").strip():
        update["paraphrase_2"] = p2
    if review != "edited" and len(update) > 1:
        update["review"] = "edited"
    try:
        update_reviews(path, {int(index): update})
    except ParaclipError as exc:
        return f"❌ {exc}", gr.skip(), gr.skip()
    records = load_records(path)
    files = [path, str(export_csv(records, Path(path).with_suffix(".csv")))]
    return f"✅ row {int(index)} → {update['review']}", records_table(records), files


def accept_all_ok(session):
    from paraclip.paraphrase import load_records, update_reviews

    path = (session or {}).get("paraphrases")
    if not path:
        return "❌ Nothing to review yet.", gr.skip()
    records = load_records(path)
    updates = {r["index"]: {"review": "accepted"} for r in records
               if r.get("status") == "ok" and r.get("review", "unreviewed") == "unreviewed"}
    if updates:
        update_reviews(path, updates)
    return f"✅ accepted {len(updates)} unreviewed ok rows", records_table(load_records(path))


def select_row(table: pd.DataFrame, evt: gr.SelectData):
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    try:
        rec = table.iloc[int(row)]
    except (IndexError, ValueError, TypeError):
        return gr.skip(), gr.skip(), gr.skip()
    return int(rec["index"]), rec["paraphrase_1"], rec["paraphrase_2"]


def gallery_captions(services, gallery_label: str) -> str:
    import io

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
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image_id", "caption"])
    writer.writerows((i, caps[0]) for i, caps in zip(gallery.ids, gallery.captions))
    return buf.getvalue().strip()


def build(services, session: gr.State) -> dict[str, Any]:
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
            local_model = gr.Textbox(label="Local model (empty = offline LLM pack, else SmolLM2-135M)",
                                     placeholder="path to a .gguf / model folder / HF id")
            with gr.Group(visible=False) as api_box:
                base_url = gr.Textbox(label="Base URL", placeholder="https://api.openai.com/v1")
                api_model = gr.Textbox(label="Model", value="gpt-3.5-turbo")
                api_key = gr.Textbox(label="API key (never stored or logged)", type="password")
            limit = gr.Number(label="Paraphrase at most N captions (0 = all)", value=0, precision=0)
    with gr.Accordion("Prompts and sampling (the paper's two steps)", open=False):
        preset = gr.Dropdown(["paper", "small-model"], value="small-model", label="Preset",
                             info="paper: the official prompts for API models; small-model: for local LLMs < 3B")
        p_step1 = gr.Textbox(label="Step 1 prompt ({} = caption)", value=step1, lines=2)
        p_step2 = gr.Textbox(label="Step 2 prompt ({} = step-1 output)", value=step2, lines=2)
        with gr.Row():
            temp = gr.Slider(0, 2, value=temperature, step=0.05, label="temperature")
            topp = gr.Slider(0.01, 1, value=top_p, step=0.01, label="top_p")
            maxtok = gr.Number(value=max_tokens, precision=0, label="max tokens")
    with gr.Row():
        run = gr.Button("Generate paraphrases", variant="primary", elem_id="paraphrase-run")
        stop = gr.Button("Stop", variant="stop")
    status = gr.Markdown(elem_id="paraphrase-status")
    table = gr.Dataframe(headers=TABLE_COLUMNS, label="Paraphrases (click a row to review it)", interactive=False,
                         wrap=True, max_height=420, elem_id="paraphrase-table")
    with gr.Accordion("Review the selected row", open=True):
        with gr.Row():
            row_index = gr.Number(label="Row index", precision=0)
            review = gr.Dropdown(["accepted", "rejected", "edited", "unreviewed"], value="accepted", label="Review")
            edit1 = gr.Textbox(label="paraphrase 1 (edit to correct)")
            edit2 = gr.Textbox(label="paraphrase 2 (edit to correct)")
        with gr.Row():
            apply = gr.Button("Apply review")
            accept_ok = gr.Button("Accept all unreviewed ok rows")
    files = gr.File(label="Download (JSONL, CSV)", file_count="multiple", interactive=False)
    with gr.Row():
        to_train = gr.Button("Send to Train →")
        to_compare = gr.Button("Send to Compare →")

    backend.change(lambda k: gr.update(visible=k == BACKEND_API), backend, api_box, api_visibility="private")
    preset.change(lambda p: preset_fields(p), preset, [p_step1, p_step2, temp, topp, maxtok], api_visibility="private")
    load_gallery.click(functools.partial(gallery_captions, services), gallery_pick, text, api_visibility="private")
    run_event = run.click(
        functools.partial(run_paraphrase, services),
        [session, text, upload, backend, local_model, base_url, api_model, api_key, preset, p_step1, p_step2,
         temp, topp, maxtok, limit],
        [status, table, files, session], concurrency_id="models", concurrency_limit=1, api_name="paraphrase",
    )
    stop.click(lambda: "⏹ stopped; finished records are kept.", None, status, cancels=[run_event],
               api_visibility="private")
    table.select(select_row, table, [row_index, edit1, edit2], api_visibility="private")
    apply.click(apply_review, [session, row_index, review, edit1, edit2], [status, table, files],
                api_visibility="private")
    accept_ok.click(accept_all_ok, session, [status, table], api_visibility="private")
    return {"status": status, "to_train": to_train, "to_compare": to_compare, "gallery_pick": gallery_pick,
            "upload": upload}
