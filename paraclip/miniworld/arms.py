"""The objectives the mini-world compares, and the main arms' training stages.

An :class:`Arm` is one fine-tuning objective of the baseline's text encoder (a loss preset of
:mod:`paraclip.training.losses`). Two groups use them:

* the **main arms** (``main_arms(cfg)``), at the main budget (``paraclip_steps`` × ``paraclip_batch_size``
  images): the paper's objective and its two fair controls — plain CLIP fine-tuning on the
  captions (``clip``) and LaCLIP-style paraphrases as captions (``laclip``; Fan et al., 2023: each
  image paired with one text drawn per step from caption, p1 and p2). A ParaCLIP step encodes
  three texts per image, a control step one, so the controls' batch is three times larger: every
  arm sees the same number of text samples per step. Every main arm is trained and selected the
  same way: each learning rate of ``lr_grid`` on the selection seed (the first of ``seeds``), the
  rate and stopping step chosen on the validation world (``selection.py``), the other seeds
  trained at the chosen rate;
* the **ablation arms** (``ABLATION_ARMS``, ``ablations.py``): the paper's objective and each of its
  terms dropped or alone, at their own shorter budget and one fixed learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from paraclip.miniworld.runner import Run, Stage

TEXTS_PER_PARACLIP_SAMPLE = 3  # caption, paraphrase_1, paraphrase_2


@dataclass(frozen=True)
class Arm:
    """One fine-tuning objective."""

    name: str  # run folder / stage name part, and the loss preset
    label: str  # the model's name in results and the report
    kind: str  # "paper", "ablation" or "control"
    batch_factor: int = 1  # batch = the budget's batch × this (equal text samples for the controls)

    @property
    def loss(self) -> str:
        return self.name


PARACLIP = Arm("paraclip", "ParaCLIP", "paper")
CLIP_FT = Arm("clip", "CLIP fine-tuning", "control", TEXTS_PER_PARACLIP_SAMPLE)
LACLIP = Arm("laclip", "LaCLIP-style", "control", TEXTS_PER_PARACLIP_SAMPLE)

ABLATION_ARMS: tuple[Arm, ...] = (
    Arm("paraclip", "ParaCLIP (L1+L2+L3)", "paper"),
    Arm("no-l1", "no L1 (L2+L3)", "ablation"),
    Arm("no-l2", "no L2 (L1+L3)", "ablation"),
    Arm("no-l3", "no L3 (L1+L2)", "ablation"),
    Arm("l1-only", "L1 only (image, p2)", "ablation"),
    Arm("l2-only", "L2 only (caption, p1)", "ablation"),
    Arm("l3-only", "L3 only (p1, p2)", "ablation"),
)


def main_arms(cfg) -> tuple[Arm, ...]:
    """ParaCLIP, then the controls when ``cfg.controls``."""
    return (PARACLIP, LACLIP, CLIP_FT) if cfg.controls else (PARACLIP,)


def text_samples_per_step(arm: Arm, batch_size: int) -> int:
    """Texts through the encoder per step: the loss's distinct text roles × the arm's batch."""
    from paraclip.training.losses import RANDOM_TEXT, resolve_preset

    roles = resolve_preset(arm.loss).roles
    per_image = 1 if RANDOM_TEXT in roles else len([r for r in roles if r != "image"])
    return per_image * batch_size * arm.batch_factor


def lr_tag(lr: float) -> str:
    return f"{lr:g}"


def selection_seed(cfg) -> int:
    return cfg.seeds[0]


def run_kind(cfg, arm: Arm, seed: int, lr: float | None = None) -> str:
    """The run folder / stage name part of a main arm's run: on the selection seed one per grid rate
    (``paraclip-lr0.001``), on the other seeds one run at the chosen rate (``paraclip``)."""
    if seed == selection_seed(cfg):
        return f"{arm.name}-lr{lr_tag(lr if lr is not None else cfg.lr_grid[0])}"
    return arm.name


def main_arm_stage(run: Run, arm: Arm, seed: int, lr: float | None) -> Stage:
    """A main arm's run: ``lr`` on the selection seed; None on the other seeds (the rate the select
    stage chose, read when the stage runs; its fingerprint covers the select stage's)."""
    from paraclip.miniworld.stages import baseline_checkpoint, candidate_steps, paraclip_minutes, train_paraclip

    cfg = run.config
    kind = run_kind(cfg, arm, seed, lr)
    batch = cfg.paraclip_batch_size * arm.batch_factor
    share = text_samples_per_step(arm, cfg.paraclip_batch_size) / (3 * cfg.paraclip_batch_size)

    def chosen_lr() -> float:
        return lr if lr is not None else run.infos["select"]["chosen"][arm.name]["lr"]

    def fingerprint(fp) -> dict:
        parts = {"baseline": fp[f"baseline-s{seed}"], "paraphrases": fp["paraphrases"], "arm": arm.name,
                 "loss": arm.loss if arm is not PARACLIP else cfg.paraclip_loss, "steps": cfg.paraclip_steps,
                 "batch": batch, "wd": cfg.paraclip_weight_decay, "seed": seed,
                 "candidates": candidate_steps(cfg.paraclip_steps, cfg.stop_candidates)}
        parts.update({"lr": lr} if lr is not None else {"select": fp["select"]})
        return parts

    return Stage(f"{kind}-s{seed}", share * paraclip_minutes(cfg.paraclip_steps, cfg.paraclip_batch_size),
                 lambda: f"{arm.label}: training the text encoder only, seed {seed}, lr {chosen_lr():g} "
                         f"({cfg.paraclip_steps} steps x {batch})",
                 fingerprint, [run.run_dir(kind, seed)],
                 lambda: train_paraclip(run, seed, baseline_checkpoint(run, seed), kind=kind, batch_size=batch,
                                        loss=arm.loss if arm is not PARACLIP else cfg.paraclip_loss,
                                        lr=chosen_lr(), keep_candidates=True))


def main_arm_checkpoint(run: Run, arm: Arm, seed: int, lr: float, step: int) -> str:
    """The checkpoint of a main arm's run at ``step`` (the final one at the last step)."""
    from paraclip.training.checkpoint import RunFiles

    files = RunFiles(run.run_dir(run_kind(run.config, arm, seed, lr), seed))
    return str(files.final if step == run.config.paraclip_steps else files.step_path(step))
