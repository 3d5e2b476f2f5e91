"""``build_demo() -> gr.Blocks``: the Workbench app factory, and ``launch_kwargs`` for ``launch()``.

One module per tab (paraphrase, train, compare, explore, about) builds its components and wires
its handlers; this module puts them together, shares the paraphrase output between tabs
(“Send to Train / Compare”), and keeps every model and gallery list current as default models
finish building and training jobs finish.
"""

from __future__ import annotations

import functools
import os
from typing import Any, NamedTuple

import gradio as gr

from workbench import about, boundary, compare, explore, paraphrase, train
from workbench.services import AppConfig, Services

TITLE = "ParaCLIP Workbench"
CSS = explore.CSS + """
#pc-banner {padding: 4px 10px; border-radius: 6px; background: var(--block-background-fill);}
""" + paraphrase.CSS


def follow(value, default, old_defaults: list, new_defaults: list):
    """The user's pick, unless it was a default that is gone (the untrained fallback replaced by the
    trained models, say): then the new default. Typed values and jobs are never replaced."""
    if not value or (value in old_defaults and value not in new_defaults):
        return default
    return value


class ChoiceUpdates(NamedTuple):
    """The banner and every model and gallery dropdown of the page, by name (``build_demo`` wires the
    components by these names; the dropdowns' current values come in, in :data:`DROPDOWNS` order)."""

    banner: Any
    known: Any  # the lists last sent to this page
    paraphrase_gallery: Any
    train_model: Any
    train_images: Any
    compare_baseline: Any
    compare_others: Any
    compare_gallery: Any
    explore_baseline: Any
    explore_other: Any
    explore_gallery: Any


DROPDOWNS = ChoiceUpdates._fields[2:]


class Sent(NamedTuple):
    """“Send to Train / Compare”: the receiving box, the tabs (switched), the Paraphrase tab's status."""

    target: Any
    tabs: Any
    status: Any


def refresh_choices(services: Services, known: dict | None, session: dict | None, *current) -> ChoiceUpdates:
    """Updates for the model and gallery dropdowns (``current``: their values, in :data:`DROPDOWNS` order) —
    only when the lists changed (keeps selections).

    The preselected models are always the defaults: a finished job is listed (to its owner only, in
    public mode) but never becomes anyone's default comparison model."""
    models = services.model_labels(session)
    defaults = [c.label for c in services.defaults.model_choices()]
    galleries = list(services.defaults.gallery_choices())
    known = dict(known or {})
    banner = services.defaults.status_markdown()
    if known.get("models") == models and known.get("galleries") == galleries:
        return ChoiceUpdates(banner, known, *[gr.skip()] * len(DROPDOWNS))
    old_defaults, old_galleries = known.get("defaults", []), known.get("galleries", [])
    known.update(models=models, galleries=galleries, defaults=defaults)
    picks = dict(zip(DROPDOWNS, current))
    first = defaults[0] if defaults else (models[0] if models else None)
    second = defaults[1] if len(defaults) > 1 else first

    def single(value, default):
        return gr.update(choices=models, value=follow(value, default, old_defaults, defaults))

    def gal(value):
        default = galleries[0] if galleries else None
        return gr.update(choices=galleries, value=follow(value, default, old_galleries, galleries))

    picked = [follow(v, second, old_defaults, defaults) for v in (picks["compare_others"] or [])] \
        or ([second] if second else [])

    return ChoiceUpdates(
        banner=banner, known=known, paraphrase_gallery=gal(picks["paraphrase_gallery"]),
        train_model=single(picks["train_model"], first), train_images=gal(picks["train_images"]),
        compare_baseline=single(picks["compare_baseline"], first),
        compare_others=gr.update(choices=models, value=list(dict.fromkeys(picked))),
        compare_gallery=gal(picks["compare_gallery"]), explore_baseline=single(picks["explore_baseline"], first),
        explore_other=single(picks["explore_other"], second), explore_gallery=gal(picks["explore_gallery"]))


def send_to(session: dict, tab: str, services: Services | None = None) -> Sent:
    path = (session or {}).get("paraphrases")
    if not path:
        return Sent(gr.skip(), gr.skip(), "❌ Generate paraphrases first.")
    shown = services.shown_path(path, session) if services is not None else path  # public: no server path
    return Sent(shown, gr.Tabs(selected=tab), f"➡ sent `{os.path.basename(path)}` to {tab.title()}")


def build_demo(services: Services | None = None, config: AppConfig | None = None) -> gr.Blocks:
    """The whole app. ``services`` (shared caches, job runner) is made from ``config`` when not given."""
    services = services or Services(config)
    services.defaults.start()  # background: the page is served at once and shows progress
    with gr.Blocks(title=TITLE) as demo:
        session = gr.State({})  # per browser session: scratch folder, last paraphrase file, last comparison
        known = gr.State({})
        gr.Markdown(f"# {TITLE}\nCaptions → two-step paraphrases → fine-tuned text encoder → comparison. "
                    "After Kim et al., EACL 2024 Findings.")
        banner = gr.Markdown(services.defaults.status_markdown(), elem_id="pc-banner")
        # a first-time visitor lands on Explore: a worked example, searched on load, says what ParaCLIP does
        with gr.Tabs(selected="explore") as tabs:
            with gr.Tab("Explore", id="explore"):
                e = explore.build(services, session)
            with gr.Tab("Paraphrase", id="paraphrase"):
                p = paraphrase.build(services, session)
            with gr.Tab("Train", id="train"):
                t = train.build(services, session)
            with gr.Tab("Compare", id="compare"):
                c = compare.build(services, session)
            with gr.Tab("About", id="about"):
                about.build(services, session)
        dropdowns = {"paraphrase_gallery": p["gallery_pick"], "train_model": t["base_model"],
                     "train_images": t["images"], "compare_baseline": c["baseline"], "compare_others": c["others"],
                     "compare_gallery": c["gallery"], "explore_baseline": e["baseline"], "explore_other": e["other"],
                     "explore_gallery": e["gallery"]}
        shown = {"banner": banner, "known": known, **dropdowns}
        inputs = [known, session, *(dropdowns[name] for name in DROPDOWNS)]
        outputs = [shown[name] for name in ChoiceUpdates._fields]
        refresh = functools.partial(refresh_choices, services)
        demo.load(refresh, inputs, outputs, api_visibility="private").then(
            e["search"], e["search_inputs"], e["search_outputs"], api_visibility="private", concurrency_id="explore")
        gr.Timer(3.0).tick(refresh, inputs, outputs, api_visibility="private", show_progress="hidden", queue=False)
        for button, tab, target in ((p["to_train"], "train", t["data_path"]), (p["to_compare"], "compare", c["pairs"])):
            sent = {"target": target, "tabs": tabs, "status": p["status"]}
            button.click(functools.partial(send_to, tab=tab, services=services), session,
                         [sent[name] for name in Sent._fields], api_visibility="private")
    boundary.guard_all(demo, services.config.public)  # one error boundary around every handler
    demo.services = services  # for tests and app.py
    return demo


def launch_kwargs(services: Services) -> dict[str, Any]:
    """What ``demo.launch()`` needs: theme/css (Gradio 6 takes them here), auth, upload limit, file access."""
    cfg = services.config
    return dict(
        theme=gr.themes.Soft(),
        css=CSS,
        auth=cfg.auth,
        auth_message="ParaCLIP Workbench: log in to start jobs." if cfg.auth else None,
        max_file_size=f"{cfg.max_upload_mb}mb",
        # downloads of job checkpoints; in public mode files are served only from the temp area
        allowed_paths=[] if cfg.public else [str(cfg.app_dir / "jobs")],
        footer_links=["gradio", "settings"],
    )


def serve(host: str | None = None, port: int | None = None, share: bool = False, **kwargs: Any):
    """Build and launch the app (``python app.py`` and ``paraclip app``): see :mod:`workbench.serving`."""
    from workbench.serving import serve as serve_checked

    return serve_checked(host=host, port=port, share=share, **kwargs)
