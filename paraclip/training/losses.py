"""The paper's contrastive objective and its ablations, as data.

ParaCLIP (Kim et al., 2024, Sec. 3, "Training objectives") trains the text encoder with

    L = L1(X_I, X_T'') + L2(X_T, X_T') + L3(X_T', X_T'')

where X_I are image embeddings, X_T the original captions, X_T' the first-step paraphrases
(``paraphrase_1``) and X_T'' the second-step paraphrases (``paraphrase_2``). Each term is a
symmetric InfoNCE with in-batch negatives (the CLIP loss; Radford et al., 2021). The paper
sums the three terms; here each has a weight (default 1) and the pairing of every term is
configurable: a :class:`LossPreset` is a list of :class:`LossTerm` (name, left, right, weight).
All terms share the model's (learnable) logit scale, as in CLIP.

Presets (``LOSS_PRESETS``): ``paraclip``; each term alone (``l1-only`` …) or dropped
(``no-l1`` …), the paper's ablation; ``clip`` — plain CLIP fine-tuning on image–caption
pairs; ``laclip`` — LaCLIP-style (Fan et al., 2023, "Improving CLIP Training with Language
Rewrites"): each image is paired with one text drawn uniformly per step from its caption
and its rewrites.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from paraclip.errors import ParaclipError
from paraclip.registry import Registry, suggest

# Roles a term can contrast. "random_text" is drawn per sample and step from the text roles.
IMAGE = "image"
TEXT_ROLES = ("caption", "paraphrase_1", "paraphrase_2")
RANDOM_TEXT = "random_text"
ROLES = (IMAGE, *TEXT_ROLES, RANDOM_TEXT)


@dataclass(frozen=True)
class LossTerm:
    name: str
    left: str
    right: str
    weight: float = 1.0


@dataclass(frozen=True)
class LossPreset:
    name: str
    terms: tuple[LossTerm, ...]
    description: str = ""

    @property
    def roles(self) -> list[str]:
        """Roles used by terms with a non-zero weight, in a fixed order."""
        used = {r for t in self.terms if t.weight != 0 for r in (t.left, t.right)}
        return [r for r in ROLES if r in used]

    @property
    def text_fields(self) -> list[str]:
        """Record fields whose text the loss needs (``random_text`` needs all of them)."""
        roles = self.roles
        if RANDOM_TEXT in roles:
            return list(TEXT_ROLES)
        return [r for r in TEXT_ROLES if r in roles]

    @property
    def uses_image(self) -> bool:
        return IMAGE in self.roles

    def with_weights(self, weights: dict[str, float] | None) -> "LossPreset":
        if not weights:
            return self
        names = [t.name for t in self.terms]
        for key in weights:
            if key not in names:
                close = suggest(key, names)
                raise ParaclipError(
                    f"loss_weights names term {key!r}, which preset {self.name!r} does not have"
                    + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
                    + f". Its terms are {', '.join(names)}.")
        terms = tuple(replace(t, weight=float(weights.get(t.name, t.weight))) for t in self.terms)
        if all(t.weight == 0 for t in terms):
            raise ParaclipError(f"loss_weights {weights} set every term of preset {self.name!r} to 0.")
        return replace(self, terms=terms)


L1 = LossTerm("l1", IMAGE, "paraphrase_2")
L2 = LossTerm("l2", "caption", "paraphrase_1")
L3 = LossTerm("l3", "paraphrase_1", "paraphrase_2")
PARACLIP_TERMS = (L1, L2, L3)

LOSS_PRESETS: Registry[LossPreset] = Registry("loss preset")
LOSS_PRESETS.register("paraclip", LossPreset(
    "paraclip", PARACLIP_TERMS, "the paper: L1(image, paraphrase_2) + L2(caption, paraphrase_1) + "
    "L3(paraphrase_1, paraphrase_2)"))
for _term in PARACLIP_TERMS:
    LOSS_PRESETS.register(f"{_term.name}-only", LossPreset(
        f"{_term.name}-only", (_term,), f"ablation: {_term.name}({_term.left}, {_term.right}) alone"))
    LOSS_PRESETS.register(f"no-{_term.name}", LossPreset(
        f"no-{_term.name}", tuple(t for t in PARACLIP_TERMS if t is not _term), f"ablation: without {_term.name}"))
LOSS_PRESETS.register("clip", LossPreset(
    "clip", (LossTerm("clip", IMAGE, "caption"),), "plain CLIP fine-tuning: image vs caption"), "plain")
LOSS_PRESETS.register("laclip", LossPreset(
    "laclip", (LossTerm("laclip", IMAGE, RANDOM_TEXT),),
    "LaCLIP-style: image vs a text drawn per step from caption, paraphrase_1, paraphrase_2"))


def resolve_preset(name: str, weights: dict[str, float] | None = None) -> LossPreset:
    return LOSS_PRESETS.get(name).with_weights(weights)


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor,
                     a_all: torch.Tensor | None = None, b_all: torch.Tensor | None = None,
                     offset: int = 0) -> torch.Tensor:
    """Symmetric InfoNCE between L2-normalised rows of ``a`` and ``b`` (row i of each is a pair).

    With data parallelism, ``a``/``b`` are this process's rows and ``a_all``/``b_all`` the
    whole global batch (gathered with gradients); this process's rows start at ``offset`` of
    the global batch. Each process then computes the loss of its own rows against every
    global column (open_clip's ``--local-loss --gather-with-grad``), and averaging the
    per-process gradients gives exactly the gradient of the global-batch loss.
    """
    a_all = a if a_all is None else a_all
    b_all = b if b_all is None else b_all
    labels = torch.arange(a.shape[0], device=a.device) + offset
    logits_ab = logit_scale * a @ b_all.T
    logits_ba = logit_scale * b @ a_all.T
    return 0.5 * (F.cross_entropy(logits_ab.float(), labels) + F.cross_entropy(logits_ba.float(), labels))


def total_loss(preset: LossPreset, local: dict[str, torch.Tensor], gathered: dict[str, torch.Tensor],
               logit_scale: torch.Tensor, offset: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of the preset's terms; also each term's value (detached) for logging."""
    parts: dict[str, torch.Tensor] = {}
    total = None
    for term in preset.terms:
        if term.weight == 0:
            continue
        value = contrastive_loss(local[term.left], local[term.right], logit_scale,
                                 gathered[term.left], gathered[term.right], offset)
        parts[term.name] = value.detach()
        total = term.weight * value if total is None else total + term.weight * value
    return total, parts
