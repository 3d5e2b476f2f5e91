"""The mini-world: a procedural world in which the whole ParaCLIP pipeline runs offline on CPU.

Scenes of one to three shapes (``world``), a scene-aware two-step rewriter standing in for the
LLM (``rewriter``), held-out evaluation sets with in- and out-of-vocabulary paraphrases and
swap pairs (``evalsets``), a held-out rewriter whose phrasings no training text has
(``heldout``), the word tables they share (``wording``), a scene-spec checker (``checker``),
the reproduction pipeline (``pipeline``: ``paraclip miniworld --reproduce``; its settings in
``config``, the run folder and stage runner in ``runner``, the main stages in ``stages``, JSONL
files in ``jsonl``), the LLM as a second paraphrase source (``llm_source``), the paper's
ablation and fair controls (``ablations``), the validation-world selection (``selection``),
the evaluation tasks (``tasks``), the scoring stages (``scoring``) and the report (``report``,
``report_text``, ``stats``).

    from paraclip.miniworld import ensure_default_models
    paths = ensure_default_models(progress=lambda done, total, message: ...)
    paths["baseline"], paths["paraclip"], paths["gallery"]  # checkpoints and a gallery folder
"""

from paraclip.miniworld.pipeline import (
    MiniWorldConfig, Reproduction, default_gallery, ensure_default_models, reproduce,
)

__all__ = ["MiniWorldConfig", "Reproduction", "default_gallery", "ensure_default_models", "reproduce"]
