"""Explore's robustness sweep: the query and many paraphrases of it, under the two Explore models.

Each paraphrase's top-k list is compared with the query's (AO@k, JS@k); the figure shows every
paraphrase, the mean and the worst per model, the table the mean and worst, and the note the images
that stay in every list. The gallery embeddings are Explore's own (kept per model and gallery), so a
sweep costs one text encoding per paraphrase and model.
"""

from __future__ import annotations

import functools
import html
from typing import Any

import gradio as gr
import pandas as pd

from paraclip.plots import empty_figure
from workbench.policy import user_error

MAX_PARAPHRASES = 50


def sweep(services, baseline, other, gallery_label, query, paraphrases, k, session=None):
    """(figure, summary table, note)."""
    from paraclip.evaluation.robustness import robustness_sweep
    from paraclip.robustness_plots import robustness_figure

    lines = [p.strip() for p in (paraphrases or "").splitlines() if p.strip()]
    if not (query or "").strip() or not lines:
        return empty_figure("Type a query and some paraphrases of it, one per line."), pd.DataFrame(), ""
    if len(lines) > MAX_PARAPHRASES:
        return (empty_figure("Too many paraphrases."), pd.DataFrame(),
                f"❌ {len(lines)} paraphrases: give at most {MAX_PARAPHRASES}, one per line.")
    if not gallery_label:
        return empty_figure("No gallery."), pd.DataFrame(), "Pick a gallery."
    try:
        encoders, features, gallery = {}, {}, None
        for label in dict.fromkeys(m for m in (baseline, other) if m):
            choice = services.resolve_model(label, session)
            index = services.gallery_index(choice.key, gallery_label, session)
            encoders[choice.label] = services.encoders.get(*choice.key)
            features[choice.label], gallery = index, index.gallery
        k = min(int(k), min(len(index.ids) for index in features.values()))
        result = robustness_sweep(encoders, query, lines, gallery, ks=(k,), features=features)
    except Exception as exc:  # noqa: BLE001 - a bad model name or gallery is a message, not a crash
        return empty_figure("Nothing to show."), pd.DataFrame(), f"❌ {user_error(exc, services.config.public)}"
    summary = result.summary.round({"mean": 1, "worst": 1})
    note = "  \n".join(f"**{html.escape(model)}**: {len(ids)}/{k} images in every top-{k} list"
                       + (f" ({', '.join(html.escape(gallery.caption_of(i)) for i in ids[:5])}"
                          f"{' …' if len(ids) > 5 else ''})" if ids else "")
                       for model, ids in result.stable.items())
    return robustness_figure(result.per_paraphrase), summary, note


def build(services, session: gr.State, baseline, other, gallery, query, k) -> dict[str, Any]:
    """An accordion under Explore's results, reusing its model, gallery, query and k controls."""
    with gr.Accordion("Robustness sweep: many paraphrases of the query", open=False):
        paraphrases = gr.Textbox(label="Paraphrases of the query, one per line", lines=5,
                                 elem_id="explore-sweep-paraphrases")
        run = gr.Button("Run sweep", elem_id="explore-sweep")
        figure = gr.Plot(label="AO@k of each paraphrase's top-k vs the query's", elem_id="explore-sweep-plot")
        table = gr.Dataframe(label="Mean and worst over the paraphrases", interactive=False)
        note = gr.Markdown()
    run.click(functools.partial(sweep, services), [baseline, other, gallery, query, paraphrases, k, session],
              [figure, table, note], api_visibility="private", concurrency_id="explore")  # Explore's lane
    return {"paraphrases": paraphrases}
