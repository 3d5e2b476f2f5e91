"""Validation during training: small callables ``(encoder) -> dict[str, float]``.

Any callable with that signature can be passed to :func:`paraclip.training.train`; its
metrics appear in ``metrics.jsonl`` as ``val_<name>_<metric>``. Built in:

* ``stsb-dev`` — Spearman ×100 on the STS-B dev split (the evaluation suite's STS evaluator;
  the paper reports STS-B among its STS tasks, Kim et al., 2024, Table 3).
* ``heldout`` — on held-out records: the training losses, caption→image R@1, and AO@10 /
  JS@10 between the top-10 images retrieved by a caption and by its paraphrase — the paper's
  paraphrased-retrieval measures, computed by the evaluation suite's own gallery search and
  metrics (:mod:`paraclip.evaluation.metrics`), here on held-out data and pooled over both
  paraphrases.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from paraclip.evaluation.metrics import gallery_search, nanmean, rank_similarity, recall_hits
from paraclip.training.losses import IMAGE, RANDOM_TEXT, LossPreset, contrastive_loss

Validator = Callable[[object], dict[str, float]]


def validator_name(validator) -> str:
    name = getattr(validator, "name", None) or getattr(validator, "__name__", None) or type(validator).__name__
    return "".join(c if c.isalnum() else "_" for c in str(name)).strip("_").lower() or "validator"


class STSBDevValidator:
    """Spearman on the STS-B dev split, loaded lazily from the evaluation suite."""

    name = "stsb_dev"

    def __init__(self, data_dir: str | None = None):
        from paraclip.evaluation.sts import sts_evaluator

        self.evaluator = sts_evaluator("STSB-dev", data_dir)

    def __call__(self, encoder) -> dict[str, float]:
        return self.evaluator(encoder)


class HeldOutValidator:
    """Losses, retrieval and paraphrase-consistency on records kept out of training."""

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
        n = len(self.captions)
        images = self.image_features(encoder)
        texts = {"caption": encoder.encode_text(self.captions, progress=False)}
        if all(p[0] for p in self.paraphrases):
            texts["paraphrase_1"] = encoder.encode_text([p[0] for p in self.paraphrases], progress=False)
        if all(p[1] for p in self.paraphrases):
            texts["paraphrase_2"] = encoder.encode_text([p[1] for p in self.paraphrases], progress=False)
        feats = {**texts, IMAGE: images[self.image_rows]}
        scale = encoder.model.logit_scale.detach().exp().float().cpu()
        out: dict[str, float] = {}
        out.update(self._losses(feats, scale, n))
        # AO@10 / JS@10 only mean something when there are more than 10 images to choose from
        k = 10 if images.shape[0] > 10 else 1
        labels = self.image_rows.cpu().numpy()
        gallery_labels = np.arange(images.shape[0])
        caption = gallery_search(texts["caption"], images, k, labels, gallery_labels)
        out["r1_caption"] = 100.0 * nanmean(recall_hits(caption.ranks, 1))
        similarity: dict[str, list[np.ndarray]] = {"AO@10": [], "JS@10": []}
        for key in ("paraphrase_1", "paraphrase_2"):
            if key not in texts:
                continue
            found = gallery_search(texts[key], images, k, labels, gallery_labels)
            out[f"r1_{key}"] = 100.0 * nanmean(recall_hits(found.ranks, 1))
            if k == 10:
                for name, values in rank_similarity(caption.topk, found.topk, [10]).items():
                    similarity[name].append(values)
        if similarity["AO@10"]:
            out["ao10"] = 100.0 * float(np.concatenate(similarity["AO@10"]).mean())
            out["js10"] = 100.0 * float(np.concatenate(similarity["JS@10"]).mean())
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
