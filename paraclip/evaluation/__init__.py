"""Evaluators: STS, paraphrased retrieval, zero-shot retrieval, VG-Relation / VG-Attribution.

The suite's entry points are imported lazily (``from paraclip.evaluation import evaluate_models``)
so that importing the package stays cheap.
"""

from paraclip.evaluation.base import Evaluator, ItemScores, select

_LAZY = {
    "evaluate_models": "paraclip.evaluation.suite",
    "TASKS": "paraclip.evaluation.suite",
    "ModelRef": "paraclip.evaluation.suite",
    "SuiteData": "paraclip.evaluation.suite",
    "build_evaluators": "paraclip.evaluation.suite",
    "compare": "paraclip.evaluation.suite",
    "paired_bootstrap": "paraclip.evaluation.bootstrap",
    "ParaphrasedRetrievalEvaluator": "paraclip.evaluation.paraphrased",
    "ParaphrasePairs": "paraclip.evaluation.paraphrased",
    "load_pairs": "paraclip.evaluation.paraphrased",
    "RetrievalEvaluator": "paraclip.evaluation.retrieval",
    "AROEvaluator": "paraclip.evaluation.aro",
    "AROExample": "paraclip.evaluation.aro",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'paraclip.evaluation' has no attribute {name!r}")


__all__ = ["Evaluator", "ItemScores", "select", *_LAZY]
