"""``build_demo() -> gr.Blocks``: the Workbench app factory."""

from __future__ import annotations

import gradio as gr

ABOUT = """# ParaCLIP Workbench
Two-step paraphrasing, CLIP text-encoder fine-tuning and evaluation, after Kim et al.,
*Fine-tuning CLIP Text Encoders with Two-step Paraphrasing* (Findings of EACL 2024).
"""


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="ParaCLIP Workbench") as demo:
        with gr.Tab("About"):
            gr.Markdown(ABOUT)
    return demo
