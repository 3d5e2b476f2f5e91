"""The trainable module around an open_clip model, the optimiser and the learning-rate schedule.

:class:`ContrastiveModule` is what DDP wraps: one ``forward`` encodes every text of the step
in a single batch (caption, paraphrases … concatenated) and, when the image tower trains,
the images. Text sequences are cut to the longest one in the batch: CLIP's text tower is
causal and pools at the end-of-text token, so the padding after it never affects the result
(checked in the tests), and captions are usually far shorter than the context length.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LOGIT_SCALE_MAX = math.log(100.0)  # CLIP clamps the temperature at 100 (Radford et al., 2021)


def _can_trim(clip: nn.Module) -> bool:
    from open_clip.model import CLIP

    return (isinstance(clip, CLIP) and getattr(clip, "attn_mask", None) is not None
            and getattr(clip, "text_pool_type", None) in ("argmax", "eos"))


def encode_text_trimmed(clip: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``clip.encode_text`` (unnormalised) computed on tokens cut after the last non-pad position."""
    if not _can_trim(clip):
        # other text towers (CustomTextCLIP, HF towers) expect the full context: pad back with their own
        # pad id (RoBERTa's is 1; a 0 there is <s>, which its attention mask would let through)
        context = getattr(clip, "context_length", None) or getattr(getattr(clip, "text", None), "context_length", None)
        if isinstance(context, int) and tokens.shape[1] < context:
            tokens = F.pad(tokens, (0, context - tokens.shape[1]), value=text_pad_id(clip))
        return clip.encode_text(tokens)
    lengths = _lengths(tokens)
    if tokens.shape[0] >= 2 * MIN_BUCKET_ROWS:
        return _encode_in_length_buckets(clip, tokens, lengths)
    return _encode_trimmed(clip, tokens[:, :int(lengths.max().item())])


def text_pad_id(clip: nn.Module) -> int:
    """The id the text tower's tokenizer pads with: the HF model's ``pad_token_id``, else 0 (open_clip's)."""
    pad = getattr(getattr(getattr(clip, "text", None), "config", None), "pad_token_id", None)
    return int(pad) if isinstance(pad, int) else 0


# Length buckets: at most MAX_BUCKETS (few launches on a GPU), each at least MIN_BUCKET_ROWS rows
# (matmuls stay efficient on a CPU).
MAX_BUCKETS, MIN_BUCKET_ROWS = 8, 128


def _lengths(tokens: torch.Tensor) -> torch.Tensor:
    """Position after the last non-pad token of each row (at least 1)."""
    positions = torch.arange(1, tokens.shape[1] + 1, device=tokens.device)
    return ((tokens != 0) * positions).amax(1).clamp(min=1)


def _encode_in_length_buckets(clip: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Sort rows by length, encode each bucket cut to its own longest row, restore the order.

    A step's texts mix short captions with paraphrases about twice as long; cutting the whole
    batch to its longest row pays for that row everywhere. The result equals one call (the text
    tower is causal and pools at the end-of-text token) at a fraction of the tokens.
    """
    n = tokens.shape[0]
    buckets = min(MAX_BUCKETS, n // MIN_BUCKET_ROWS)
    order = torch.argsort(lengths, stable=True)
    sorted_lengths = lengths[order].tolist()  # one device sync for all buckets
    bounds = [round(i * n / buckets) for i in range(buckets + 1)]
    parts = [_encode_trimmed(clip, tokens[order[a:b], :sorted_lengths[b - 1]]) for a, b in zip(bounds, bounds[1:])]
    return torch.cat(parts)[torch.argsort(order)]


def _encode_trimmed(clip: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    from open_clip.transformer import text_global_pool

    length = tokens.shape[1]
    cast = clip.transformer.get_cast_dtype()
    x = clip.token_embedding(tokens).to(cast) + clip.positional_embedding[:length].to(cast)
    x = clip.transformer(x, attn_mask=clip.attn_mask[:length, :length])
    x = clip.ln_final(x)
    x = text_global_pool(x, tokens, clip.text_pool_type, eos_token_id=getattr(clip, "text_eos_id", None))
    if clip.text_projection is not None:
        x = clip.text_projection(x) if isinstance(clip.text_projection, nn.Linear) else x @ clip.text_projection
    return x


class ContrastiveModule(nn.Module):
    """Normalised text (and optionally image) features plus the exponentiated logit scale."""

    def __init__(self, clip: nn.Module, freeze_image: bool, learn_logit_scale: bool):
        super().__init__()
        self.clip = clip
        self.freeze_image = freeze_image
        for name, p in clip.named_parameters():
            if name.startswith("visual."):
                p.requires_grad_(not freeze_image)
            elif name == "logit_scale":
                p.requires_grad_(learn_logit_scale)
            elif name == "logit_bias":
                p.requires_grad_(False)  # SigLIP-style bias is not part of the InfoNCE objective
            else:
                p.requires_grad_(True)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_image and hasattr(self.clip, "visual"):
            self.clip.visual.eval()  # frozen tower: no dropout, norms in inference mode
        return self

    def forward(self, tokens: torch.Tensor, pixels: torch.Tensor | None = None):
        text = F.normalize(encode_text_trimmed(self.clip, tokens), dim=-1)
        image = F.normalize(self.clip.encode_image(pixels), dim=-1) if pixels is not None else None
        return text, image, self.clip.logit_scale.exp()

    def clamp_logit_scale(self) -> None:
        with torch.no_grad():
            self.clip.logit_scale.clamp_(0, LOGIT_SCALE_MAX)


def parameter_groups(clip: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay on weight matrices only — not on biases, norms, embeddings or the logit scale."""
    decay, no_decay = [], []
    for name, p in clip.named_parameters():
        if not p.requires_grad:
            continue
        exempt = p.ndim < 2 or "embedding" in name or name in ("logit_scale", "logit_bias")
        (no_decay if exempt else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(clip: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float],
                    eps: float) -> torch.optim.AdamW:
    groups = parameter_groups(clip, weight_decay)
    if not groups:
        raise ValueError("nothing to train: every parameter is frozen")
    # The fused kernel (CPU and CUDA) is several times faster than the per-tensor loop that
    # torch otherwise uses on CPU; it matters because the token embedding is a large tensor.
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=True)
    except (RuntimeError, ValueError):  # a device or dtype without a fused kernel
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)


def warmup_steps(warmup: float, total_steps: int) -> int:
    return int(warmup) if warmup >= 1 else int(round(warmup * total_steps))


def lr_at(step: int, total_steps: int, peak: float, warmup: int, floor: float = 0.0) -> float:
    """Linear warmup to ``peak`` over ``warmup`` steps, then cosine decay to ``floor`` (0-based step)."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    span = max(1, total_steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * progress))
