"""ParaCLIP Workbench: two-step paraphrasing, text-encoder fine-tuning and evaluation for CLIP.

Reproduces and extends Kim et al., "Fine-tuning CLIP Text Encoders with Two-step
Paraphrasing", Findings of EACL 2024 (ParaCLIP). The library never imports gradio;
the Gradio app lives in ``workbench/``.
"""

__version__ = "0.1.0"

from paraclip.errors import ParaclipError  # noqa: E402

__all__ = ["ParaclipError", "__version__"]
