"""Zero-shot image classification, built the open_clip way and scored as CLIP_benchmark scores it.

The classifier is ``open_clip.build_zero_shot_classifier``: each class name is put into every
template, the normalised text embeddings are averaged per class and normalised again. Templates
come from ``--templates FILE``, else the dataset's own, else open_clip's 80 ImageNet templates
(``open_clip.zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES``). An open_clip encoder hands its own
model and tokenizer to the library; any other encoder (transformers CLIP) goes through a small
shim that looks like an open_clip model to it.

Metrics carry CLIP_benchmark's names (``clip_benchmark/metrics/zeroshot_classification.py``):
``acc1``, ``acc5`` (undefined below five classes, as there) and ``mean_per_class_recall`` (the
mean over the classes present of the share of their images ranked first, sklearn's
``balanced_accuracy_score``), ×100 like the suite's other scores. Ties between the true class and
another count against the model (the suite's convention; with float features they do not occur
unless two classes have the same prompts).

Per-item arrays are per image: ``label`` (class index) and ``rank`` (0-based rank of the true
class). The paired bootstrap resamples images *within each class* (:meth:`bootstrap_strata`): a
test set's class composition is fixed by design, and mean per-class recall weighs classes equally,
so a plain resample that drops or doubles a small class would measure a different quantity.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np
import torch

from paraclip.data.classification import ClassificationSet, check_template, read_templates
from paraclip.errors import DataError
from paraclip.evaluation.base import Evaluator, ItemScores, select

TOP_KS = (1, 5)


def default_templates() -> list[Callable[[str], str]]:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return list(OPENAI_IMAGENET_TEMPLATES)


def resolve_templates(dataset: ClassificationSet, templates: str | Sequence[str] | None) -> tuple[list, str]:
    """``(templates, where they come from)``: a file or list given, else the dataset's, else open_clip's."""
    if isinstance(templates, str) or hasattr(templates, "__fspath__"):
        return read_templates(templates), f"templates file {templates}"
    if templates:
        for n, t in enumerate(templates, 1):
            check_template(t, f"template {n}")
        return list(templates), "given templates"
    if dataset.templates:
        return list(dataset.templates), f"{dataset.name}'s own templates"
    return default_templates(), "open_clip's OPENAI_IMAGENET_TEMPLATES"


def _as_callables(templates: Sequence) -> list[Callable[[str], str]]:
    # ours are CLIP_benchmark-style "{c}" strings; open_clip formats strings positionally
    return [t if callable(t) else (lambda c, t=t: t.format(c=c)) for t in templates]


class _Texts(list):
    """A batch of texts that passes through ``.to(device)`` (what open_clip does with token tensors)."""

    def to(self, device):
        return self


class _EncoderAsOpenCLIP:
    """What ``build_zero_shot_classifier`` needs of a model, for an encoder that is not open_clip."""

    def __init__(self, encoder):
        self.encoder = encoder

    def tokenizer(self, texts: Sequence[str]) -> _Texts:
        return _Texts(texts)

    def encode_text(self, texts: Sequence[str], normalize: bool = True) -> torch.Tensor:
        return self.encoder.encode_text(list(texts))  # already L2-normalised


def zero_shot_classifier(encoder, classnames: Sequence[str], templates: Sequence) -> torch.Tensor:
    """``(embed_dim, n_classes)`` class weights from ``open_clip.build_zero_shot_classifier``."""
    from open_clip import build_zero_shot_classifier

    model = getattr(encoder, "model", None)
    tokenizer = getattr(encoder, "tokenizer", None)
    if model is not None and hasattr(model, "encode_text") and callable(tokenizer) and _is_open_clip(model):
        device = getattr(encoder, "device", "cpu")
        with torch.inference_mode(), encoder._autocast():
            weights = build_zero_shot_classifier(model, tokenizer, list(classnames), _as_callables(templates),
                                                 device=device)
    else:
        shim = _EncoderAsOpenCLIP(encoder)
        weights = build_zero_shot_classifier(shim, shim.tokenizer, list(classnames), _as_callables(templates))
    return weights.float().cpu()


def _is_open_clip(model) -> bool:
    return type(model).__module__.startswith("open_clip")


def true_class_ranks(logits: torch.Tensor, labels: np.ndarray) -> np.ndarray:
    """0-based rank of each row's true class; a tie with another class counts against it."""
    labels_t = torch.as_tensor(labels, dtype=torch.long)
    true = logits.gather(1, labels_t[:, None])
    ahead = (logits > true).sum(1) + (logits == true).sum(1) - 1
    return ahead.numpy().astype(np.int64)


class ZeroShotClassificationEvaluator(Evaluator):
    name = "zeroshot-classification"
    primary_metric = "acc1"

    def __init__(self, dataset: ClassificationSet, templates: str | Sequence[str] | None = None,
                 feature_cache=None, name: str | None = None):
        if len(dataset.classnames) < 2:
            raise DataError(f"{dataset.name}: zero-shot classification needs at least two classes "
                            f"(got {len(dataset.classnames)}).")
        self.dataset = dataset
        self.templates, self.templates_from = resolve_templates(dataset, templates)
        self.feature_cache = feature_cache
        self.name = name or self.name
        self.n_classes = len(dataset.classnames)
        self.source = f"{dataset.source}; {len(self.templates)} templates ({self.templates_from}, {self._digest()})"
        missing = [c for c, n in zip(dataset.classnames, dataset.class_counts()) if n == 0]
        self.data_notes = ((f"{dataset.name}: {len(missing)} of {self.n_classes} classes have no image "
                            f"(e.g. {missing[0]!r}); they compete in the classifier but have no recall"),) if missing else ()

    def _digest(self) -> str:
        # a result is reused only with the same prompts (config_key includes the source)
        probe = [t("{c}") if callable(t) else t for t in self.templates] + list(self.dataset.classnames)
        return "sha1 " + hashlib.sha1("\n".join(probe).encode()).hexdigest()[:10]

    def __len__(self) -> int:
        return len(self.dataset)

    def item_scores(self, encoder) -> ItemScores:
        feats = self.dataset.gallery.embed(encoder, cache=self.feature_cache)
        if not feats.ids:
            example = next(iter(self.dataset.gallery.problems.items()), ("?", "?"))
            raise DataError(f"{self.dataset.name}: none of the images could be opened (e.g. {example}).")
        weights = zero_shot_classifier(encoder, self.dataset.classnames, self.templates)
        labels = np.array([self.dataset.label_of[i] for i in feats.ids], dtype=np.int64)
        logits = feats.features.float() @ weights
        return {"label": labels, "rank": true_class_ranks(logits, labels)}

    def metrics(self, items: ItemScores, index: np.ndarray | None = None) -> dict[str, float]:
        items = select(items, index)
        rank = np.asarray(items["rank"], dtype=np.int64)
        label = np.asarray(items["label"], dtype=np.int64)
        if rank.size == 0:
            return {"acc1": float("nan"), "acc5": float("nan"), "mean_per_class_recall": float("nan")}
        top1 = (rank == 0).astype(np.float64)
        counts = np.bincount(label, minlength=self.n_classes)
        hits = np.bincount(label, weights=top1, minlength=self.n_classes)
        present = counts > 0
        return {
            "acc1": 100.0 * float(top1.mean()),
            "acc5": 100.0 * float(np.mean(rank < 5)) if self.n_classes >= 5 else float("nan"),
            "mean_per_class_recall": 100.0 * float(np.mean(hits[present] / counts[present])),
        }

    def bootstrap_strata(self, items: ItemScores) -> np.ndarray:
        """Resample within classes (see the module docstring)."""
        return np.asarray(items["label"], dtype=np.int64)

    def why_undefined(self, items: ItemScores, metric: str) -> str:
        if metric == "acc5" and self.n_classes < 5:
            return f"acc5 needs at least five classes; {self.dataset.name} has {self.n_classes} (as CLIP_benchmark)"
        return super().why_undefined(items, metric)


__all__ = ["ZeroShotClassificationEvaluator", "default_templates", "resolve_templates", "true_class_ranks",
           "zero_shot_classifier"]
