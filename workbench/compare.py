"""Compare tab: a baseline against other models on chosen tasks, with paired bootstrap CIs.

All evaluation is :func:`paraclip.evaluation.suite.evaluate_models`; plots are
:mod:`paraclip.plots` builders. Finished training jobs appear in the model lists automatically.
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from typing import Any

import gradio as gr
import pandas as pd

from paraclip.plots import delta_bars, empty_figure, rank_similarity_curves, sts_scatter, task_bars
from workbench.policy import user_error

# label shown -> suite task name(s)
TASK_CHOICES = {
    "zero-shot retrieval (gallery)": "retrieval",
    "paraphrased retrieval AO@k / JS@k (gallery + pairs)": "paraphrased-retrieval",
    "STS-B (offline)": "STSB",
    "STS: all 7 of the paper": "sts",
    "VG-Relation (ARO data)": "vg-relation",
    "VG-Attribution (ARO data)": "vg-attribution",
}
DEFAULT_TASKS = ["zero-shot retrieval (gallery)", "STS-B (offline)"]


def parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(k) for k in str(text or "10").replace(" ", "").split(",") if k}))
    except ValueError:
        raise ValueError(f"k values must be comma-separated integers, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise ValueError("k values must be positive integers")
    return ks


def pivot(table: pd.DataFrame) -> pd.DataFrame:
    if table is None or table.empty:
        return pd.DataFrame()
    main = table[table["main"]] if "main" in table.columns else table
    out = main.pivot_table(index=["task", "metric"], columns="label", values="value", aggfunc="first", sort=False)
    return out.round(2).reset_index()


def deltas_view(deltas: pd.DataFrame) -> pd.DataFrame:
    if deltas is None or deltas.empty:
        return pd.DataFrame(columns=["task", "metric", "model", "delta", "95% CI", "significant"])
    view = deltas[["task", "metric", "model", "delta"]].copy()
    view["delta"] = view["delta"].round(2)
    view["95% CI"] = [f"[{lo:+.2f}, {hi:+.2f}]" for lo, hi in zip(deltas["ci_low"], deltas["ci_high"])]
    view["significant"] = ["yes" if s else "" for s in deltas.get("significant", [False] * len(deltas))]
    return view


def run_compare(services, session, baseline, others, tasks, gallery_label, pairs_path, ks_text, gallery_limit):
    """Generator: yields (status, results, deltas, bars, curves, scatter, delta plot, files, session)."""
    from paraclip.errors import ParaclipError
    from paraclip.evaluation.suite import ModelRef, evaluate_models, sts_points
    from paraclip.results import save_results

    session = dict(session or {})
    skip7 = [gr.skip()] * 7
    try:
        labels = [baseline] + [o for o in (others or []) if o and o != baseline]
        if not baseline or len(labels) < 1:
            raise ValueError("Pick a baseline model (and one or more models to compare with it).")
        task_names = [TASK_CHOICES.get(t, t) for t in (tasks or [])]
        if not task_names:
            raise ValueError("Pick at least one task.")
        ks = parse_ks(ks_text)
        pairs = (pairs_path or "").strip() or session.get("paraphrases")
        if pairs:
            pairs = str(services.check_path(pairs, "Paraphrase pairs", session))
        if "paraphrased-retrieval" in task_names and not pairs:
            raise ValueError("Paraphrased retrieval needs (caption, paraphrase) pairs: paraphrase the gallery's "
                             "captions in the Paraphrase tab and press “Send to Compare”, or give a pairs file.")
        choices = [services.resolve_model(label, session) for label in labels]
        gallery = services.gallery(gallery_label, session) if gallery_label else None
        limit = int(gallery_limit) if gallery_limit else None
        if gallery is not None and limit:
            gallery = gallery.subset(limit)
    except (ValueError, ParaclipError) as exc:
        yield (f"❌ {user_error(exc, services.config.public)}", *skip7, session)
        return
    folder = services.session_dir(session) / f"compare-{uuid.uuid4().hex[:6]}"
    state: dict[str, Any] = {"message": "starting"}
    stop = threading.Event()

    def progress(done, total, message):
        if stop.is_set():
            raise KeyboardInterrupt("stopped by the user")
        state["message"] = f"{done}/{total}: {message}"

    def work():
        try:
            refs = []
            for choice in choices:
                state["message"] = f"loading {choice.label}"
                refs.append(ModelRef(choice.label, None, services.encoders.get(*choice.key)))
                if gallery_label and refs[-1].encoder.has_image_tower:
                    # fills the feature cache under the app's per-(model, gallery) lock, so concurrent
                    # comparisons and Explore queries never write the same cache at once
                    state["message"] = f"embedding the gallery with {choice.label}"
                    services.gallery_index(choice.key, gallery_label, session)
            state["output"] = evaluate_models(refs, tasks=task_names, gallery=gallery, pairs=pairs,
                                              aro_dir=os.environ.get("PARACLIP_ARO_DIR") or None,
                                              ks=ks, recall_ks=(1, 5, 10), n_boot=1000, out_dir=folder,
                                              progress=progress)
        except BaseException as exc:  # noqa: BLE001 - shown to the user
            state["error"] = exc

    worker = threading.Thread(target=work, name="paraclip-wb-compare", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
            yield (f"⏳ {state['message']}", *skip7, session)
    finally:
        stop.set()
    if "error" in state:
        yield (f"❌ {user_error(state['error'], services.config.public)}", *skip7, session)
        return
    out = state["output"]
    table, deltas = out.table, out.deltas
    json_path = folder / "results.json"
    save_results(out.results, json_path, with_details=False)
    files = [str(p) for p in (folder / "results.csv", folder / "deltas.csv", json_path) if p.is_file()]
    points = sts_points(out.results)
    skipped = "; ".join(f"{s.model} / {s.task}: {s.reason}" for s in out.skipped)
    message = f"✅ {len(out.results)} results" + (f" (skipped: {skipped})" if skipped else "")
    session["compare_dir"] = str(folder)
    yield (message, pivot(table), deltas_view(deltas), task_bars(table), rank_similarity_curves(table),
           sts_scatter(points) if len(points) else empty_figure("No STS task in this comparison.", "STS"),
           delta_bars(deltas), files, session)


def build(services, session: gr.State) -> dict[str, Any]:
    with gr.Row():
        baseline = gr.Dropdown(label="Baseline", choices=[], allow_custom_value=True, elem_id="compare-baseline")
        others = gr.Dropdown(label="Compare with (one or more)", choices=[], multiselect=True, allow_custom_value=True,
                             elem_id="compare-others")
    with gr.Row():
        tasks = gr.CheckboxGroup(list(TASK_CHOICES), value=DEFAULT_TASKS, label="Tasks")
    with gr.Row():
        gallery = gr.Dropdown(label="Gallery", choices=[], allow_custom_value=True)
        pairs = gr.Textbox(label="Paraphrase pairs (JSONL/CSV; filled by “Send to Compare”)")
        ks = gr.Textbox(label="k values for AO@k / JS@k", value="1,5,10,20")
        limit = gr.Number(label="Use the first N gallery images (0 = all)", value=0, precision=0)
    with gr.Row():
        run = gr.Button("Run comparison", variant="primary", elem_id="compare-run")
        stop = gr.Button("Stop", variant="stop")
    status = gr.Markdown(elem_id="compare-status")
    with gr.Row():
        results = gr.Dataframe(label="Results (main metric per task)", interactive=False, elem_id="compare-results")
        deltas = gr.Dataframe(label="Differences vs baseline (paired bootstrap, 95% CI)", interactive=False)
    with gr.Row():
        bars = gr.Plot(label="Scores per task", elem_id="compare-bars")
        delta_plot = gr.Plot(label="Differences with CIs")
    with gr.Row():
        curves = gr.Plot(label="AO@k / JS@k")
        scatter = gr.Plot(label="STS scatter")
    files = gr.File(label="Download results (CSV, JSON)", file_count="multiple", interactive=False)
    event = run.click(functools.partial(run_compare, services),
                      [session, baseline, others, tasks, gallery, pairs, ks, limit],
                      [status, results, deltas, bars, curves, scatter, delta_plot, files, session],
                      concurrency_id="models", concurrency_limit=2, api_name="compare")
    stop.click(lambda: "⏹ stopped.", None, status, cancels=[event], api_visibility="private")
    return {"baseline": baseline, "others": others, "gallery": gallery, "pairs": pairs}
