"""The uniform encoder interface used by training, evaluation and the app.

Every model (open_clip, HF transformers CLIP, a sentence-transformers text model) is
wrapped as an :class:`Encoder`: ``encode_text(list[str])`` and ``encode_image(list[PIL])``
return L2-normalised float32 CPU tensors, computed in batches under
``torch.inference_mode`` with autocast on CUDA, text sorted by length so that batches
pad little, and a tqdm bar for long inputs.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

ProgressFn = Callable[[int, int], None]  # (done, total)

PROGRESS_MIN_ITEMS = 2048  # show a tqdm bar only when there is enough work to watch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Encoder(ABC):
    """A text (and usually image) encoder producing L2-normalised embeddings."""

    name: str = "encoder"
    pretrained: str | None = None
    tokenizer: Any = None
    preprocess: Callable | None = None  # PIL image -> tensor (None for text-only encoders)
    text_batch_size: int = 256
    image_batch_size: int = 64

    def __init__(self, device: torch.device | str | None = None):
        self.device = torch.device(device) if device is not None else default_device()

    # -- what subclasses implement -------------------------------------------------
    @abstractmethod
    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        """Unnormalised embeddings of one batch of texts (on any device)."""

    def _embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Unnormalised embeddings of one batch of preprocessed images."""
        raise NotImplementedError(f"{self.name} is a text-only encoder; it cannot encode images")

    @property
    def has_image_tower(self) -> bool:
        return self.preprocess is not None

    # -- shared batching logic ------------------------------------------------------
    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def encode_text(self, texts: Sequence[str], batch_size: int | None = None,
                    progress: bool | ProgressFn | None = None) -> torch.Tensor:
        """L2-normalised embeddings, one row per text, in input order."""
        texts = [str(t) for t in texts]
        if not texts:
            return torch.empty(0, 0)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)  # batches pad little
        sorted_emb = self._encode([texts[i] for i in order], batch_size or self.text_batch_size, progress, "text",
                                  self._embed_texts)
        out = torch.empty_like(sorted_emb)
        out[torch.tensor(order)] = sorted_emb
        return out

    def encode_image(self, images: Sequence[Any], batch_size: int | None = None,
                     progress: bool | ProgressFn | None = None) -> torch.Tensor:
        """L2-normalised embeddings of PIL images (or already-preprocessed tensors)."""
        if not self.has_image_tower:
            raise NotImplementedError(f"{self.name} is a text-only encoder; it cannot encode images")
        if len(images) == 0:
            return torch.empty(0, 0)

        def embed(batch) -> torch.Tensor:
            pixels = torch.stack([b if torch.is_tensor(b) else self.preprocess(b) for b in batch])
            return self._embed_images(pixels.to(self.device))

        return self._encode(images, batch_size or self.image_batch_size, progress, "images", embed)

    def _encode(self, items: Sequence[Any], batch_size: int, progress: bool | ProgressFn | None, desc: str,
                embed: Callable[[Sequence[Any]], torch.Tensor]) -> torch.Tensor:
        """``embed`` over ``items`` in batches: L2-normalised float32 rows on the CPU, in order."""
        chunks = []
        with torch.inference_mode(), self._autocast(), _Progress(len(items), progress, desc) as bar:
            for start in range(0, len(items), batch_size):
                batch = items[start : start + batch_size]
                chunks.append(F.normalize(embed(batch).float(), dim=-1).cpu())
                bar.update(len(batch))
        return torch.cat(chunks)

    def __repr__(self) -> str:
        tag = f", pretrained={self.pretrained!r}" if self.pretrained else ""
        return f"{type(self).__name__}({self.name!r}{tag}, device={self.device})"


class _Progress:
    """tqdm for long CLI work, or a callback (done, total) for the app; silent otherwise."""

    def __init__(self, total: int, progress: bool | ProgressFn | None, desc: str):
        self.total, self.done, self.callback, self.bar = total, 0, None, None
        if callable(progress):
            self.callback = progress
        elif progress or (progress is None and total >= PROGRESS_MIN_ITEMS):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=f"encoding {desc}", unit=desc[:4], leave=False)

    def __enter__(self):
        return self

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False
