"""Encoder wrappers for the three model families (open_clip, HF CLIP, sentence-transformers)."""

from __future__ import annotations

from typing import Any

import torch

from paraclip.models.base import Encoder


class OpenCLIPEncoder(Encoder):
    """An open_clip model (``CLIP`` or ``CustomTextCLIP``) with its tokenizer and eval transform.

    ``model`` stays a plain open_clip module, so the trainer can fine-tune it and save a
    checkpoint that ``open_clip.create_model_and_transforms(arch, pretrained=path)`` loads.
    """

    def __init__(self, model, preprocess, tokenizer, name: str, pretrained: str | None = None,
                 arch: str | None = None, device=None):
        super().__init__(device)
        self.model = model.to(self.device).eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name
        self.pretrained = pretrained
        self.arch = arch or name

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self.device)
        return self.model.encode_text(tokens)

    def _embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)


class HFCLIPEncoder(Encoder):
    """A transformers ``CLIPModel`` (hub id or saved directory)."""

    def __init__(self, model, tokenizer, image_processor, name: str, device=None):
        super().__init__(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.name = name
        self.max_length = int(getattr(model.config.text_config, "max_position_embeddings", 77))
        self.preprocess = self._preprocess if image_processor is not None else None

    def _preprocess(self, image) -> torch.Tensor:
        return self.image_processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"][0]

    @staticmethod
    def _features(out: Any) -> torch.Tensor:
        # transformers < 5 returns the projected tensor; 5.x returns an output object whose
        # pooler_output holds the projection.
        if torch.is_tensor(out):
            return out
        for attr in ("text_embeds", "image_embeds", "pooler_output"):
            value = getattr(out, attr, None)
            if value is not None:
                return value
        raise TypeError(f"unexpected CLIP feature output {type(out).__name__}")

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt").to(self.device)
        return self._features(self.model.get_text_features(**batch))

    def _embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._features(self.model.get_image_features(pixel_values=pixels))


class SentenceEncoder(Encoder):
    """A text-only sentence-transformers model, for the STS comparison rows."""

    def __init__(self, model, name: str, device=None):
        super().__init__(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = model.tokenizer
        self.name = name
        self.preprocess = None

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        return self.model.encode(texts, batch_size=len(texts), convert_to_tensor=True,
                                 show_progress_bar=False, normalize_embeddings=False)
