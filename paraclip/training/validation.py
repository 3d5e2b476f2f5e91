"""Validation during training: small callables ``(encoder) -> dict[str, float]``.

Any callable with that signature can be passed to :func:`paraclip.training.train`; its
metrics appear in ``metrics.jsonl`` as ``val_<name>_<metric>``. Built in:

* ``stsb-dev`` — Spearman ×100 on the STS-B dev split (the evaluation suite's STS evaluator;
  the paper reports STS-B among its STS tasks, Kim et al., 2024, Table 3).
* ``heldout`` — on held-out records: the training losses, caption→image R@1, and AO@10 /
  JS@10 between the top-10 images retrieved by a caption and by its paraphrase — the paper's
  paraphrased-retrieval measures, computed by the evaluation suite's own gallery search and
  metrics (its :class:`~paraclip.evaluation.paraphrased.ParaphrasedRetrievalEvaluator`), here on
  held-out data and pooled over both paraphrases.

Built-in validators wrap the evaluation suite's evaluators (:class:`SuiteValidator`), so a metric
has one definition for training and for standalone evaluation.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from paraclip.errors import ParaclipError
from paraclip.evaluation.base import Evaluator
from paraclip.training.config import normalise_validator
from paraclip.training.losses import IMAGE, RANDOM_TEXT, LossPreset, contrastive_loss

Validator = Callable[[object], dict[str, float]]


def validator_name(validator) -> str:
    name = getattr(validator, "name", None) or getattr(validator, "__name__", None) or type(validator).__name__
    return "".join(c if c.isalnum() else "_" for c in str(name)).strip("_").lower() or "validator"


class SuiteValidator:
    """One of the evaluation suite's evaluators, run as a validator under ``name``."""

    def __init__(self, name: str, evaluator: Evaluator):
        self.name, self.evaluator = name, evaluator

    def __call__(self, encoder) -> dict[str, float]:
        return self.evaluator(encoder)


class STSBDevValidator(SuiteValidator):
    """Spearman on the STS-B dev split: the suite's STS evaluator."""

    def __init__(self, data_dir: str | None = None):
        from paraclip.evaluation.sts import sts_evaluator

        super().__init__("stsb_dev", sts_evaluator("STSB-dev", data_dir))


class _HeldOutImages:
    """The held-out images as a gallery for the suite's evaluator: ids are row numbers, features
    are the ones the validator already has."""

    def __init__(self, features: torch.Tensor):
        self.features = features
        self.ids = [str(i) for i in range(features.shape[0])]
        self.name, self.source = "held-out images", "held-out records"

    def embed(self, encoder, cache=None):
        from paraclip.data.galleries import GalleryFeatures

        return GalleryFeatures(self.ids, self.features)


class _KnownTexts:
    """An encoder view whose texts were encoded already (for the losses), so the suite's
    evaluator does not encode them again."""

    def __init__(self, embeddings: dict[str, torch.Tensor]):
        self.embeddings = embeddings

    def encode_text(self, texts, batch_size=None, progress=None) -> torch.Tensor:
        return torch.stack([self.embeddings[t] for t in texts])


class HeldOutValidator:
    """Losses, retrieval and paraphrase-consistency on records kept out of training.

    R@1, AO@10 and JS@10 are the suite's :class:`ParaphrasedRetrievalEvaluator` on the held-out
    images, with the pairs caption–paraphrase_1 and caption–paraphrase_2 pooled."""

    name = "heldout"

    def __init__(self, captions: list[str], paraphrases: list[list[str]], image_rows: torch.Tensor,
                 image_features: Callable[[object], torch.Tensor], preset: LossPreset, batch_size: int):
        """``paraphrases`` holds [paraphrase_1, paraphrase_2] per record (empty strings when absent);
        ``image_features(encoder)`` returns normalised features of the held-out images, indexed by
        ``image_rows``."""
        self.captions, self.paraphrases = captions, paraphrases
        self.image_rows, self.image_features = image_rows, image_features
        self.preset, self.batch_size = preset, batch_size

    def __len__(self) -> int:
        return len(self.captions)

    def __call__(self, encoder) -> dict[str, float]:
        images = self.image_features(encoder)
        texts = {"caption": encoder.encode_text(self.captions, progress=False)}
        for n, key in enumerate(("paraphrase_1", "paraphrase_2")):
            if all(p[n] for p in self.paraphrases):
                texts[key] = encoder.encode_text([p[n] for p in self.paraphrases], progress=False)
        scale = encoder.model.logit_scale.detach().exp().float().cpu()
        out = self._losses({**texts, IMAGE: images[self.image_rows]}, scale, len(self.captions))
        out.update(self._retrieval(texts, images))
        return out

    def _retrieval(self, texts: dict[str, torch.Tensor], images: torch.Tensor) -> dict[str, float]:
        from paraclip.evaluation.paraphrased import ParaphrasedRetrievalEvaluator, ParaphrasePairs

        n = len(self.captions)
        keys = [k for k in ("paraphrase_1", "paraphrase_2") if k in texts] or ["caption"]
        sources = {"caption": self.captions, "paraphrase_1": [p[0] for p in self.paraphrases],
                   "paraphrase_2": [p[1] for p in self.paraphrases]}
        known = {t: e for key in ("caption", *keys) for t, e in zip(sources[key], texts[key])}
        image_ids = [str(int(r)) for r in self.image_rows]
        pairs = ParaphrasePairs(self.captions * len(keys), [t for key in keys for t in sources[key]],
                                image_ids * len(keys), source="held-out records")
        # AO@10 / JS@10 only mean something when there are more than 10 images to choose from
        k = 10 if images.shape[0] > 10 else 1
        evaluator = ParaphrasedRetrievalEvaluator(pairs, _HeldOutImages(images), ks=(k,), recall_ks=(1,))
        items = evaluator.item_scores(_KnownTexts(known))
        out = {"r1_caption": evaluator.metrics(items, np.arange(n))["q_R@1"]}
        for j, key in enumerate(keys):
            if key != "caption":
                out[f"r1_{key}"] = evaluator.metrics(items, np.arange(j * n, (j + 1) * n))["p_R@1"]
        if k == 10 and keys != ["caption"]:
            pooled = evaluator.metrics(items)
            out["ao10"], out["js10"] = pooled["AO@10"], pooled["JS@10"]
        return out

    def _losses(self, feats: dict[str, torch.Tensor], scale: torch.Tensor, n: int) -> dict[str, float]:
        bs = max(2, min(self.batch_size, n))
        sums: dict[str, float] = {}
        chunks = 0
        for start in range(0, n - bs + 1, bs):  # full chunks only, like training batches
            chunks += 1
            total = 0.0
            for term in self.preset.terms:
                if term.weight == 0 or term.left == RANDOM_TEXT or term.right == RANDOM_TEXT:
                    continue
                if term.left not in feats or term.right not in feats:
                    continue
                a, b = feats[term.left][start:start + bs], feats[term.right][start:start + bs]
                value = float(contrastive_loss(a, b, scale))
                sums[f"loss_{term.name}"] = sums.get(f"loss_{term.name}", 0.0) + value
                total += term.weight * value
            sums["loss"] = sums.get("loss", 0.0) + total
        if not chunks or len(sums) == 1:
            return {}
        return {k: v / chunks for k, v in sums.items()}


def heldout_validator(heldout: Sequence, image_source, val_image_rows: np.ndarray, n_images: int,
                      preset: LossPreset, batch_size: int) -> HeldOutValidator:
    """The held-out validator of a run: its images' features come from the run's image source."""
    rows = torch.as_tensor(val_image_rows)
    unique = torch.unique(rows)
    remap = torch.full((n_images,), -1, dtype=torch.long)
    remap[unique] = torch.arange(len(unique))
    return HeldOutValidator([r.caption for r in heldout], [[r.paraphrase_1, r.paraphrase_2] for r in heldout],
                            remap[rows], lambda encoder: image_source.encode(unique, encoder), preset, batch_size)


def _stsb_dev(sts_dir: str | None, heldout: Callable[[], HeldOutValidator] | None) -> Validator:
    return STSBDevValidator(sts_dir)


def _heldout(sts_dir: str | None, heldout: Callable[[], HeldOutValidator] | None) -> Validator:
    if heldout is None:
        raise ParaclipError("no held-out records (set val_data or val_split)")
    return heldout()


# the names of config.VALIDATORS; a builder raises ParaclipError when its data is not there
BUILT_IN_VALIDATORS = {"stsb-dev": _stsb_dev, "heldout": _heldout}


def build_validators(names: Sequence[str], sts_dir: str | None, heldout: Callable[[], HeldOutValidator] | None,
                     say: Callable[[str], None]) -> list[Validator]:
    """The built-in validators named in the config; one whose data is missing is skipped with a message."""
    out: list[Validator] = []
    for name in map(normalise_validator, names):
        if name not in BUILT_IN_VALIDATORS:
            raise ParaclipError(f"Unknown validator {name!r} in `validation`; built in: "
                                f"{', '.join(BUILT_IN_VALIDATORS)}.")
        try:
            out.append(BUILT_IN_VALIDATORS[name](sts_dir, heldout))
        except ParaclipError as exc:
            say(f"validation {name} skipped: {exc}")
    return out
