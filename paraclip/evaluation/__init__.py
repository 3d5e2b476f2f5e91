"""Evaluators: STS, paraphrased retrieval, zero-shot retrieval, VG-Relation / VG-Attribution."""

from paraclip.evaluation.base import Evaluator, ItemScores, select

__all__ = ["Evaluator", "ItemScores", "select"]
