"""The mini-world: a procedural world in which the whole ParaCLIP pipeline runs offline on CPU.

Scenes of one to three shapes (``world``), a scene-aware two-step rewriter standing in for the
LLM (``rewriter``), held-out evaluation sets with in- and out-of-vocabulary paraphrases and
swap pairs (``evalsets``), a scene-spec checker (``checker``), and the reproduce pipeline.
"""
