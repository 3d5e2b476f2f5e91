"""Gradio UI wiring for ParaCLIP Workbench. All work is done by ``paraclip`` functions."""

from workbench.app import build_demo, launch_kwargs, serve

__all__ = ["build_demo", "launch_kwargs", "serve"]
