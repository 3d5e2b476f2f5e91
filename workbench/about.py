"""About tab: the method, the defaults, what runs offline."""

from __future__ import annotations

import gradio as gr

ABOUT = """
## ParaCLIP Workbench

**Method.** ParaCLIP (Kim et al., *Fine-tuning CLIP Text Encoders with Two-step Paraphrasing*, Findings of
EACL 2024) makes CLIP's text encoder robust to rewording. An LLM paraphrases each caption twice — step 1
rewords the caption, step 2 rewords step 1 while avoiding its words — and only the text encoder is fine-tuned
(image encoder frozen) with three contrastive losses: **L1** image ↔ paraphrase 2, **L2** caption ↔ paraphrase 1,
**L3** paraphrase 1 ↔ paraphrase 2, all weighted 1. The paper reports better paraphrased retrieval
(AO@10 / JS@10 between the top-10 lists of a query and its paraphrase), STS and VG-Relation/Attribution,
at a small cost in zero-shot retrieval.

**Tabs.** *Explore* (the page you land on) searches one query and its paraphrase under two models. *Paraphrase*
captions with the two prompts, review the rows → *Train* a text encoder as a background job → *Compare* it with
its baseline (deltas with 95 % paired-bootstrap CIs).

**Defaults (offline).** Models: the mini-world CLIP baseline and its ParaCLIP version (seed 0), shipped trained in
`assets/` (only if that folder is missing: an *untrained* `paraclip-mini` fallback, labelled as such); gallery: the
mini-world's held-out scenes (and Tux Paint stamps when installed); pairs: the held-out in-vocabulary and
out-of-vocabulary paraphrase pairs; paraphrasing: the offline LLM pack, else SmolLM2-135M; STS-B from the packaged
copy. `paraclip miniworld --export-assets` regenerates `assets/` (see its `manifest.json`).
Paraphrasing presets: `paper` (the official prompts and sampling, for API models) and `small-model` (for local
models under 3B). Training defaults: the paper's losses and frozen image tower; optimiser settings after CLIP
(AdamW, β₂ 0.98, ε 1e-6, cosine schedule).

**Online (optional).** Any open_clip model + tag (type `ViT-B-32@openai` in a model box), Hugging Face CLIP ids,
OpenAI-compatible APIs for paraphrasing (the key is used for the run only, never stored), COCO / Flickr30k
galleries, all 7 STS sets and ARO's VG data (set `PARACLIP_ARO_DIR`).

**Settings (environment).** `PARACLIP_APP_AUTH=user:password,...` turns on login (then only logged-in users can
start jobs); `PARACLIP_APP_MAX_UPLOAD_MB` (default 20); `PARACLIP_APP_MAX_JOBS` (default 2);
`PARACLIP_APP_DIR` (job history and checkpoints; default `$PARACLIP_CACHE/app`). On a Space (`SPACE_ID`) or with
`PARACLIP_APP_PUBLIC=1` the app is in public mode: it reads only uploads, its own data and the folders in
`PARACLIP_APP_DATA_DIRS`, sends API requests only to public hosts (or those in `PARACLIP_APP_ALLOWED_API_HOSTS`),
and shows each visitor only their own jobs (README: "Hosting publicly").

```bibtex
@inproceedings{kim-etal-2024-fine,
  title = {Fine-tuning {CLIP} Text Encoders with Two-step Paraphrasing},
  author = {Kim, Hyunjae and Yoon, Seunghyun and Bui, Trung and Zhao, Handong and Tran, Quan and
            Dernoncourt, Franck and Kang, Jaewoo},
  booktitle = {Findings of the Association for Computational Linguistics: EACL 2024},
  year = {2024}
}
```
"""


def rebuild_defaults(services, username: str | None) -> str:
    """Start training the mini-world defaults from scratch (an explicit action; never automatic)."""
    if services.config.public and not (services.config.auth_enabled and username):
        return ("❌ Rebuilding the default models is turned off in this public app (about 9 min of both CPU cores). "
                "The app's owner can allow it for logged-in users by setting PARACLIP_APP_AUTH.")
    if not services.defaults.rebuild():
        return "⏳ Already rebuilding; the banner at the top shows the progress."
    return ("⏳ Rebuilding the mini-world models from scratch (resumes an earlier build); the banner at the top "
            "shows the progress, and the app keeps using the current models until it finishes.")


def build(services, session) -> dict:
    gr.Markdown(ABOUT)
    with gr.Accordion("Rebuild the default models from scratch", open=False):
        gr.Markdown("Trains the mini-world baseline CLIP and its ParaCLIP version again with the current defaults "
                    "(`paraclip miniworld --defaults`; about 9 minutes on 2 idle CPU cores). The shipped models "
                    "are the same recipe, so this is only needed after changing the code or the assets.")
        start = gr.Button("Rebuild the default models", elem_id="about-rebuild")
        message = gr.Markdown()

    def rebuild(request: gr.Request):
        return rebuild_defaults(services, getattr(request, "username", None))

    start.click(rebuild, None, message, api_visibility="private")
    return {"rebuild": start}
