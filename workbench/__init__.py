"""Gradio UI wiring for ParaCLIP Workbench. All work is done by ``paraclip`` functions."""

__all__ = ["build_demo", "launch_kwargs", "serve"]


def __getattr__(name: str):
    # lazy: `python app.py` checks the settings (workbench.serving) before gradio is imported
    if name in __all__:
        from workbench import app

        return getattr(app, name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
