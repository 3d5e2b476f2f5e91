"""Does a benchmark lie inside what a model was trained on? Word coverage notes for Compare.

A model trained only on the mini-world has never read most of STS-B's words, so its STS-B score
says little about the method. The note compares the words of each task's texts with the words
of the model's training text, found from the model's own metadata: a checkpoint written by
``paraclip train`` records its training config (data file and base model, followed back to a
model trained from scratch). Models labelled as mini-world models without that metadata use the
mini-world's vocabulary; untrained (random-init) fallbacks have none. Others (pretrained web-scale
models) get no note.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

COVERAGE_FLOOR = 0.9  # below this share of known words a task is called outside the training text
SAMPLE_TEXTS = 3000


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", str(text).lower())


@functools.lru_cache(maxsize=64)
def _checkpoint_vocabulary(path: str, mtime: float) -> frozenset[str] | None:
    """Words of the training text behind a ``paraclip train`` checkpoint and its base models."""
    import torch

    try:
        meta = (torch.load(path, map_location="cpu", weights_only=True, mmap=True) or {}).get("paraclip")
    except Exception:  # noqa: BLE001 - not a checkpoint we can read: no note
        return None
    if not isinstance(meta, dict):
        return None
    config = meta.get("config") or {}
    vocab = set(_data_words(config.get("data")))
    base = meta.get("pretrained") or config.get("pretrained")
    if base and str(base).lower() not in ("none", "null") and Path(str(base)).is_file():
        base_vocab = _checkpoint_vocabulary(str(base), Path(str(base)).stat().st_mtime)
        if base_vocab is None:
            return None  # a base model we know nothing about (e.g. pretrained weights): no claim
        vocab |= base_vocab
    elif base and str(base).lower() not in ("none", "null"):
        return None  # started from pretrained weights: its vocabulary is much larger than its data
    return frozenset(vocab)


def _data_words(data: str | None) -> set[str]:
    out: set[str] = set()
    if not data or not Path(data).is_file():
        return out
    with open(data, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            for key in ("caption", "paraphrase_1", "paraphrase_2"):
                out.update(words(rec.get(key) or ""))
    return out


def model_vocabulary(choice: Any) -> frozenset[str] | None:
    """The words a model's text encoder was trained on; None when unknown (no note is made)."""
    if getattr(choice, "kind", "") == "fallback":
        return frozenset()
    for candidate in (choice.pretrained, choice.name):
        if candidate and Path(str(candidate)).is_file():
            vocab = _checkpoint_vocabulary(str(candidate), Path(str(candidate)).stat().st_mtime)
            if vocab is not None:
                return vocab
    if "mini-world" in choice.label.lower():
        return _miniworld_vocabulary()
    return None


@functools.cache
def _miniworld_vocabulary() -> frozenset[str]:
    """Built once: the rewriter's tables are constants (rebuilding them cost ≈ 1.4 ms per Explore query)."""
    from paraclip.miniworld.rewriter import inventory_vocabulary

    return frozenset(inventory_vocabulary())


def evaluator_texts(evaluator: Any) -> list[str]:
    """The texts an evaluator encodes (STS sentences, gallery captions, paraphrase pairs)."""
    pairs = getattr(evaluator, "pairs", None)
    texts: list[str] = []
    if pairs is not None and hasattr(pairs, "sentences1"):
        texts = list(pairs.sentences1) + list(pairs.sentences2)
    elif pairs is not None and hasattr(pairs, "originals"):
        texts = list(pairs.originals) + list(pairs.paraphrases)
    elif getattr(evaluator, "gallery", None) is not None:
        texts = [c for caps in evaluator.gallery.captions for c in caps]
    return texts[:SAMPLE_TEXTS]


def unknown_words(texts: Iterable[str], vocab: frozenset[str]) -> list[str]:
    """The words of ``texts`` that are not in ``vocab``, in order of first use, each once."""
    return list(dict.fromkeys(w for t in texts for w in words(t) if w not in vocab))


def coverage(texts: Iterable[str], vocab: frozenset[str]) -> float | None:
    tokens = [w for t in texts for w in words(t)]
    return None if not tokens else sum(w in vocab for w in tokens) / len(tokens)


def coverage_notes(choices: Sequence[Any], evaluators: Sequence[Any]) -> list[str]:
    """One line per (model, task) whose texts lie outside the model's training text."""
    notes = []
    texts = {ev.name: evaluator_texts(ev) for ev in evaluators}
    for choice in choices:
        vocab = model_vocabulary(choice)
        if vocab is None:
            continue
        if not vocab:
            notes.append(f"**{choice.label}** is untrained (random weights): its scores are chance level, "
                         f"not a measurement of the method.")
            continue
        outside = []
        for task, task_texts in texts.items():
            share = coverage(task_texts, vocab)
            if share is not None and share < COVERAGE_FLOOR:
                outside.append(f"{task} ({100 * share:.0f}% of its words occur in the training text)")
        if outside:
            notes.append(f"**{choice.label}**: outside its training vocabulary — {', '.join(outside)}; read these "
                         f"scores as out-of-domain, not as the method's effect.")
    return notes
