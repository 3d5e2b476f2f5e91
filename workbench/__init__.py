"""Gradio UI wiring for ParaCLIP Workbench. All work is done by ``paraclip`` functions."""

from workbench.app import build_demo

__all__ = ["build_demo"]
