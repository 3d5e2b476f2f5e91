"""The paper's ablation and fair controls on the mini-world (``paraclip miniworld --reproduce --ablations``).

Every arm fine-tunes the text encoder of the same baseline (per seed) on the same training
records, for the same number of steps, with the same seeds, learning rate and schedule; only
the objective differs (presets of :mod:`paraclip.training.losses`):

* ``paraclip`` — the paper's L1(image, p2) + L2(caption, p1) + L3(p1, p2) (Kim et al., 2024,
  Sec. 3), trained again on this stage's schedule so that it is compared like with like;
* the paper's ablation (Kim et al., 2024, Sec. 4, the loss ablation): each term dropped
  (``no-l1``, ``no-l2``, ``no-l3``) and each term alone (``l1-only``, ``l2-only``, ``l3-only``),
  at the same batch of images, as the paper does;
* fair controls that use the same data without the paper's objective: plain CLIP fine-tuning on
  the captions (``clip``), and LaCLIP-style paraphrases as extra captions (``laclip``; Fan et al.,
  2023: each image paired with one text drawn per step from caption, p1 and p2). A ParaCLIP step
  encodes three texts per image, these one, so their batch is three times larger: every arm sees
  the same number of text samples (and the controls see each image three times as often).

The stage has its own schedule (``ablation_steps``, default 600 × 256, half the main run's
steps: 9 arms × 3 seeds at the main schedule would take ~2.5 h on 2 cores); the final
checkpoint of every arm is scored — the budget is fixed in advance, nothing is selected by
looking at results. Test-world scores of all arms go into one table of the report.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXTS_PER_PARACLIP_SAMPLE = 3  # caption, paraphrase_1, paraphrase_2


@dataclass(frozen=True)
class Arm:
    """One objective of the ablation stage."""

    name: str  # run folder / stage name part, and the loss preset unless ``loss`` says otherwise
    label: str  # the model's name in results and the report
    kind: str  # "paper", "ablation" or "control"
    batch_factor: int = 1  # batch = ablation_batch_size × this (equal text samples for the controls)

    @property
    def loss(self) -> str:
        return self.name


ARMS: tuple[Arm, ...] = (
    Arm("paraclip", "ParaCLIP (L1+L2+L3)", "paper"),
    Arm("no-l1", "no L1 (L2+L3)", "ablation"),
    Arm("no-l2", "no L2 (L1+L3)", "ablation"),
    Arm("no-l3", "no L3 (L1+L2)", "ablation"),
    Arm("l1-only", "L1 only (image, p2)", "ablation"),
    Arm("l2-only", "L2 only (caption, p1)", "ablation"),
    Arm("l3-only", "L3 only (p1, p2)", "ablation"),
    Arm("clip", "CLIP fine-tuning (captions)", "control", TEXTS_PER_PARACLIP_SAMPLE),
    Arm("laclip", "LaCLIP (paraphrases as captions)", "control", TEXTS_PER_PARACLIP_SAMPLE),
)
ARM_BY_LABEL = {arm.label: arm for arm in ARMS}


def ablation_seeds(cfg) -> list[int]:
    return list(cfg.ablation_seeds) if cfg.ablation_seeds else list(cfg.seeds)


def text_samples_per_step(arm: Arm, batch_size: int) -> int:
    """Texts through the encoder per step: the loss's distinct text roles × the arm's batch."""
    from paraclip.training.losses import RANDOM_TEXT, resolve_preset

    roles = resolve_preset(arm.loss).roles
    per_image = 1 if RANDOM_TEXT in roles else len([r for r in roles if r != "image"])
    return per_image * batch_size * arm.batch_factor


def plan_ablation_stages(cfg) -> list[tuple[str, float, str]]:
    from paraclip.miniworld.pipeline import paraclip_minutes

    plan = []
    for seed in ablation_seeds(cfg):
        for arm in ARMS:
            share = text_samples_per_step(arm, cfg.ablation_batch_size) / (3 * cfg.ablation_batch_size)
            plan.append((f"abl-{arm.name}-s{seed}",
                         share * paraclip_minutes(cfg.ablation_steps, cfg.ablation_batch_size), ""))
    return plan


def run_ablation_training(run, do, checkpoints: dict) -> dict[str, dict[int, str]]:
    """Train every arm for every ablation seed (``do`` is the pipeline's stage runner); returns
    ``arm label -> seed -> checkpoint``. The seed's baseline must be in ``checkpoints``."""
    from paraclip.miniworld.pipeline import train_paraclip

    cfg = run.config
    fp = run.fingerprints
    out: dict[str, dict[int, str]] = {arm.label: {} for arm in ARMS}
    for seed in ablation_seeds(cfg):
        for arm in ARMS:
            batch = cfg.ablation_batch_size * arm.batch_factor
            info = do(f"abl-{arm.name}-s{seed}",
                      {"baseline": fp[f"baseline-s{seed}"], "paraphrases": fp["paraphrases"], "arm": arm.name,
                       "loss": arm.loss, "steps": cfg.ablation_steps, "batch": batch, "lr": cfg.paraclip_lr,
                       "wd": cfg.paraclip_weight_decay, "seed": seed},
                      [run.run_dir(f"abl-{arm.name}", seed)],
                      lambda s=seed, a=arm, b=batch: train_paraclip(
                          run, s, checkpoints["baseline"][s], kind=f"abl-{a.name}", steps=cfg.ablation_steps,
                          batch_size=b, loss=a.loss),
                      f"ablation {arm.label}, seed {seed} ({cfg.ablation_steps} steps x {batch})")
            out[arm.label][seed] = info["checkpoint"]
    return out
