"""Explore tab (the page a visitor lands on): one query and its paraphrase, top-k images under two
models side by side, with a ready example searched on load and a warning for words a model never read.

For each model, the top-k lists of the query and of the paraphrase are shown with the images in
both lists outlined, and AO@k / JS@k (``paraclip.evaluation.metrics``) say how stable retrieval
is under paraphrasing — the quantity ParaCLIP improves. Gallery embeddings are computed once per
(model, gallery) and kept, so a query costs two text encodings per model.
"""

from __future__ import annotations

import functools
import html
import json
import time
from typing import Any, NamedTuple

import gradio as gr
from gradio.components.plot import PlotData
import numpy as np
import pandas as pd

from paraclip.errors import ModelLoadError
from paraclip.plots import empty_figure
from paraclip.similarity_plots import similarity_rows_spec
from workbench import robustness
from workbench.local_llm import explain_local_failure
from workbench.runs import LANES
from workbench.policy import user_error
from workbench.vocabulary import model_vocabulary, unknown_words

# An in-vocabulary pair of the shipped mini-world pairs (assets/pairs/in-vocab.jsonl): searched on load.
EXAMPLE_QUERY = "three large red striped squares"
EXAMPLE_PARAPHRASE = "a trio of huge blocks with stripes that are crimson"
INTRO = (
    "**ParaCLIP** fine-tunes CLIP's text encoder on two-step paraphrases so that rewording a query changes its "
    "search results less. Below, one query and its paraphrase search the same images under a plain CLIP and its "
    "ParaCLIP version: the more images the two top-k lists share (outlined), the steadier the model.\n\n"
    "**These demo models know only a toy world of coloured shapes** (circles, squares, stars… in a few colours, "
    "sizes and textures) — ask about that world; other words mean nothing to them.\n\n"
    "**Real CLIP models:** on a server with internet, type e.g. `ViT-B-32@openai` into a model box (here or in "
    "Compare)."
)


def rank_metrics(a: np.ndarray, b: np.ndarray, k: int) -> tuple[float, float]:
    from paraclip.evaluation.metrics import average_overlap, jaccard_at_k

    return float(average_overlap(a[None], b[None], k)[0]), float(jaccard_at_k(a[None], b[None], k)[0])


def _tiles(index, rows: np.ndarray, scores: np.ndarray, shared: set[str]) -> str:
    cells = []
    for rank, (row, score) in enumerate(zip(rows, scores), 1):
        image_id = index.ids[row]
        cls = "pc-tile pc-shared" if image_id in shared else "pc-tile"
        caption = html.escape(index.gallery.caption_of(image_id))
        cells.append(f'<figure class="{cls}" title="{caption}"><img src="{index.thumbnail(image_id)}" alt="{caption}">'
                      f'<figcaption>{rank}. {score:.2f}</figcaption></figure>')
    return '<div class="pc-row">' + "".join(cells) + "</div>"


def model_panel(label: str, index, query_rows, query_scores, para_rows, para_scores, k: int) -> tuple[str, dict]:
    q_ids = [index.ids[r] for r in query_rows]
    p_ids = [index.ids[r] for r in para_rows]
    shared = set(q_ids) & set(p_ids)
    ao, js = rank_metrics(np.asarray(query_rows), np.asarray(para_rows), k)
    body = (f'<div class="pc-panel"><h3>{html.escape(label)}</h3>'
            f'<p class="pc-metrics">AO@{k} <b>{100 * ao:.1f}</b> · JS@{k} <b>{100 * js:.1f}</b> · '
            f'{len(shared)}/{k} images in both lists (outlined)</p>'
            f"<p>query</p>{_tiles(index, query_rows, query_scores, shared)}"
            f"<p>paraphrase</p>{_tiles(index, para_rows, para_scores, shared)}</div>")
    return body, {"model": label, f"AO@{k}": round(100 * ao, 1), f"JS@{k}": round(100 * js, 1),
                  "shared": len(shared)}


def vocabulary_warnings(choices: list, texts: list[str]) -> str:
    """Warnings (HTML) when ``texts`` use words outside a model's training text — one line for models
    that miss the same words; "" when every word is known or the vocabulary is unknown (a pretrained
    web-scale model)."""
    untrained, missing = [], {}
    for choice in choices:
        vocab = model_vocabulary(choice)
        if vocab is None:
            continue
        if not vocab:
            untrained.append(choice.label)
            continue
        unknown = tuple(unknown_words(texts, vocab))
        if unknown:
            missing.setdefault(unknown, []).append(choice.label)
    lines = [f"<p class='pc-warn'>⚠ <b>{html.escape(label)}</b> is untrained (random weights): its results are "
             f"chance.</p>" for label in untrained]
    for unknown, labels in missing.items():
        shown = ", ".join(f"“{html.escape(w)}”" for w in unknown[:8]) + (" …" if len(unknown) > 8 else "")
        who = " and ".join(f"<b>{html.escape(label)}</b>" for label in labels)
        lines.append(f"<p class='pc-warn'>⚠ Out of vocabulary: {who} never saw {shown} in training, so "
                     f"{'their' if len(labels) > 1 else 'its'} scores for this text are not meaningful (the demo "
                     f"models know only the toy world of coloured shapes).</p>")
    return "".join(lines)


def defaults_for(services, baseline, other, gallery_label):
    """Empty picks (the page has just loaded) become the defaults: the first two models and gallery."""
    labels = [c.label for c in services.defaults.model_choices()]
    galleries = list(services.defaults.gallery_choices())
    baseline = baseline or (labels[0] if labels else None)
    other = other or (labels[1] if len(labels) > 1 else None)
    return baseline, other, gallery_label or (galleries[0] if galleries else None)


class ExploreOutputs(NamedTuple):
    """What a search shows, by name (``build`` wires the components by these names)."""

    panels: str  # HTML: each model's top-k of the query and of the paraphrase
    metrics: pd.DataFrame  # AO@k / JS@k per model
    heatmap: Any  # the texts' cosine similarities under each model
    timing: str

    @classmethod
    def message(cls, html_text: str, figure_text: str) -> "ExploreOutputs":
        """A note instead of results: empty table, an empty figure saying ``figure_text``."""
        return cls(html_text, pd.DataFrame(), empty_figure(figure_text), "")


def heatmap_plot(rows: list[tuple]):
    """The similarity heatmaps of (model, text_a, text_b, cosine) rows as Gradio's plot payload, serialised
    straight from the plain spec: building and validating a ``go.Figure`` per query held the GIL for ≈ 5 ms
    that concurrent visitors waited on."""
    spec = similarity_rows_spec(rows)
    if spec is None or isinstance(spec, str):
        return empty_figure(spec or "Type a query and a paraphrase.")
    return PlotData(type="plotly", plot=json.dumps(spec, allow_nan=False))


def explore(services, baseline, other, gallery_label, query, paraphrase, k, session=None) -> ExploreOutputs:
    start = time.perf_counter()
    baseline, other, gallery_label = defaults_for(services, baseline, other, gallery_label)
    query, paraphrase = (query or "").strip(), (paraphrase or "").strip()
    if not query or not paraphrase:
        return ExploreOutputs.message("<p class='pc-note'>Type a query and a paraphrase of it (or press “Generate "
                                      "paraphrase”).</p>", "Type a query and a paraphrase.")
    if not gallery_label:
        return ExploreOutputs.message("<p class='pc-note'>⏳ The demo models and gallery are still being prepared (the "
                                      "banner at the top shows the progress); press Search in a moment.</p>",
                                      "No gallery yet.")
    k = int(k)
    panels, rows, sims, choices = [], [], [], []
    try:
        for label in [baseline, other]:
            if not label:
                continue
            choice = services.resolve_model(label, session)
            index = services.gallery_index(choice.key, gallery_label, session)
            encoder = services.encoders.get(*choice.key)
            texts = [query, paraphrase]
            choices.append(choice)
            feats = encoder.encode_text(texts).float().numpy()
            top, scores = index.search(feats, k)
            body, metrics = model_panel(choice.label, index, top[0], scores[0], top[1], scores[1], min(k, top.shape[1]))
            panels.append(body)
            rows.append(metrics)
            cos = feats @ feats.T
            roles = ["query", "paraphrase"]  # short tick labels: the texts are in the boxes above
            for i, a in enumerate(roles):
                for j, b in enumerate(roles):
                    sims.append((choice.label, a, b, float(cos[i, j])))
    except Exception as exc:  # noqa: BLE001 - a bad model name or gallery is a message, not a crash
        return ExploreOutputs.message(f"<p class='pc-error'>❌ {html.escape(user_error(exc, services.config.public))}"
                                      f"</p>", "Nothing to show.")
    page = vocabulary_warnings(choices, [query, paraphrase]) + '<div class="pc-compare">' + "".join(panels) + "</div>"
    figure = heatmap_plot(sims)
    elapsed = 1000 * (time.perf_counter() - start)
    return ExploreOutputs(page, pd.DataFrame(rows), figure, f"{elapsed:.0f} ms")


def generate_paraphrase(services, query):
    """One two-step paraphrase of ``query`` with the offline local backend (kept loaded)."""
    query = (query or "").strip()
    if not query:
        return gr.skip(), "Type a query first."
    try:
        text = services.paraphrase_one(query)
    except ModelLoadError as exc:  # no local model on this server: say who can fix it
        return gr.skip(), explain_local_failure(exc)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        return gr.skip(), f"❌ {user_error(exc, services.config.public)}"
    if not text:
        return gr.skip(), "The local model gave no usable paraphrase (it copied the caption); type one instead."
    return text, ""


def build(services, session: gr.State) -> dict[str, Any]:
    """The tab's components; ``search_example`` (returned) runs the ready example when the page loads."""
    gr.Markdown(INTRO, elem_id="explore-intro")
    with gr.Row():
        # min widths: on a phone each box gets its own line, so the model names are readable
        baseline = gr.Dropdown(label="Baseline", choices=[], allow_custom_value=True, elem_id="explore-baseline",
                               min_width=240)
        other = gr.Dropdown(label="ParaCLIP model", choices=[], allow_custom_value=True, elem_id="explore-other",
                            min_width=240)
        gallery = gr.Dropdown(label="Gallery", choices=[], allow_custom_value=True, elem_id="explore-gallery",
                              min_width=160)
        k = gr.Slider(1, 20, value=8, step=1, label="k", min_width=160)
    with gr.Row():
        query = gr.Textbox(label="Query", value=EXAMPLE_QUERY, elem_id="explore-query", min_width=280,
                           placeholder="two small red circles left of a large blue square")
        paraphrase = gr.Textbox(label="Paraphrase", value=EXAMPLE_PARAPHRASE, elem_id="explore-paraphrase",
                                min_width=280)
    with gr.Row():
        search = gr.Button("Search", variant="primary", elem_id="explore-search")
        gen = gr.Button("Generate paraphrase (offline LLM)")
        timing = gr.Markdown()
    note = gr.Markdown()
    panels = gr.HTML(elem_id="explore-results")
    metrics = gr.Dataframe(headers=["model", "AO@k", "JS@k", "shared"], interactive=False, wrap=True,
                           label="Rank similarity between the top-k of the query and of the paraphrase",
                           column_widths=["40%", "20%", "20%", "20%"], elem_id="explore-metrics")
    # the figure carries its title; Gradio's label badge would cover it
    heatmap = gr.Plot(label="Cosine similarity of the texts", show_label=False, elem_id="explore-heatmap")
    inputs = [baseline, other, gallery, query, paraphrase, k, session]
    shown = {"panels": panels, "metrics": metrics, "heatmap": heatmap, "timing": timing}
    outputs = [shown[name] for name in ExploreOutputs._fields]
    fn = functools.partial(explore, services)
    search.click(fn, inputs, outputs, api_name="explore", concurrency_id="explore", concurrency_limit=LANES["explore"])
    query.submit(fn, inputs, outputs, api_visibility="private", concurrency_id="explore")
    paraphrase.submit(fn, inputs, outputs, api_visibility="private", concurrency_id="explore")
    # the local LLM has its own lane: a slow generation never holds up searches
    gen.click(functools.partial(generate_paraphrase, services), query, [paraphrase, note],
              concurrency_id="explore-llm", concurrency_limit=LANES["explore-llm"], api_visibility="private")
    robustness.build(services, session, baseline, other, gallery, query, k)
    return {"baseline": baseline, "other": other, "gallery": gallery, "search_inputs": inputs,
            "search_outputs": outputs, "search": fn}


CSS = """
.pc-compare {display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); gap: 16px;}
.pc-panel h3 {margin: 4px 0;}
.pc-row {display: flex; flex-wrap: wrap; gap: 6px; margin-bottom: 8px;}
.pc-tile {margin: 0; padding: 2px; border: 3px solid transparent; border-radius: 6px; width: 84px; text-align: center;}
.pc-tile img {width: 76px; height: 76px; image-rendering: pixelated; border-radius: 4px; background: #eee;}
.pc-tile figcaption {font-size: 11px;}
.pc-shared {border-color: #16a34a; background: #dcfce7;}
.pc-metrics {font-size: 14px;}
.pc-error {color: #b91c1c;}
.pc-warn {color: #92400e; background: #fef3c7; border-radius: 6px; padding: 4px 8px; margin: 4px 0;}
"""
