"""The training loop: ParaCLIP text-encoder fine-tuning, its ablations, and CLIP training from scratch.

Flow of :func:`train` (one process, or each process under ``torchrun``)::

    load model  ->  read + join data  ->  image features (cached) or pixels  ->  tokenise
    ->  resume from out_dir if a checkpoint is there  ->  for each step: batch (a pure
    function of seed and step), forward, gather across processes, loss, backward, clip,
    AdamW  ->  metrics row / validation / checkpoint  ->  final.pt (open_clip format)

With ``freeze_image`` (the paper's setting) the image tower never runs during training:
features come from :class:`paraclip.features.FeatureCache`, computed once per model and
reused by later runs and by evaluation.
"""

from __future__ import annotations

import functools
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from paraclip.checks import check_output_dir, describe_os_error
from paraclip.errors import DataError, Interrupted, ParaclipError, WriteError
from paraclip.files import DamagedCacheWarning, atomic_write_text, naming_errors, read_json
from paraclip.results import library_versions
from paraclip.training import checkpoint as ckpt_io
from paraclip.training import distributed as D
from paraclip.training.checkpoint import RunFiles
from paraclip.training.config import TrainConfig, normalise_validator
from paraclip.training.data import BatchSchedule, read_records, records_fingerprint, split_heldout, tokenize
from paraclip.training.images_source import ImageInput, NoImages, StepPlan, prepare_images
from paraclip.training.losses import IMAGE, RANDOM_TEXT, TEXT_ROLES, resolve_preset, total_loss
from paraclip.training.model import ContrastiveModule, build_optimizer, lr_at, warmup_steps
from paraclip.training.run_control import Console, StopSignals, autocast, on_main_thread, peak_memory_mb
from paraclip.training.validation import Validator, build_validators, heldout_validator, validator_name

MetricsCallback = Callable[[dict], None]
StopCallback = Callable[[], bool]


@dataclass
class TrainResult:
    checkpoint: Path | None  # final.pt in open_clip format (None if the run stopped early)
    metrics_file: Path
    steps: int  # steps completed
    total_steps: int
    out_dir: Path
    completed: bool
    last_checkpoint: Path | None = None  # newest resumable checkpoint
    data_report: dict = field(default_factory=dict)
    final_metrics: dict = field(default_factory=dict)
    arch: str = ""  # open_clip architecture name of the checkpoint


def train(config: TrainConfig, on_metrics: MetricsCallback | None = None, should_stop: StopCallback | None = None,
          validators: Sequence[Validator] = (), images: ImageInput | None = None,
          progress: bool = False) -> TrainResult:
    """Train as ``config`` says; resume from ``config.out_dir`` when a checkpoint is there.

    ``on_metrics(row)`` receives every metrics row (also written to ``metrics.jsonl``);
    ``should_stop()`` is polled after each step — when it returns True a checkpoint is saved
    and the result has ``completed=False`` (calling ``train`` again resumes). ``validators``
    are extra ``(encoder) -> dict`` callables run with the built-in ones. ``images`` may supply
    images held in memory (a mapping or callable image_id -> PIL image / HWC uint8 array)
    instead of ``config.images``. ``progress`` shows a tqdm bar with ETA (the CLI turns it on).
    """
    config.validate()
    check_output_dir(config.out_dir, "out_dir")  # a file there, or no permission: say so before any work
    dist = D.init_distributed(config.device)
    files = RunFiles(config.out_dir)
    console = Console(progress and dist.is_main)
    threads_before = torch.get_num_threads()
    try:
        if config.threads:
            torch.set_num_threads(config.threads)
        finished, resume = _resume_point(config, files, dist, console)
        if finished:
            return _finished_result(files, resume, console)
        ckpt_io.seed_everything(config.seed)
        trainer = Trainer(config, dist=dist, files=files, console=console, resume=resume, on_metrics=on_metrics,
                          should_stop=should_stop, validators=validators, images=images)
        return trainer.run()
    except OSError as exc:  # e.g. a full disk while checkpointing: the previous checkpoint is intact
        raise WriteError(f"{describe_os_error(exc)} {ckpt_io.kept_work(files)}") from exc
    finally:
        console.close()
        if config.threads:
            torch.set_num_threads(threads_before)  # train() runs inside the app's process too
        D.shutdown(dist)


def _total_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    if config.steps is not None:
        return config.steps
    return max(1, int(round(config.epochs * steps_per_epoch)))


def _resume_point(config: TrainConfig, files: RunFiles, dist: D.DistInfo, console: Console) -> tuple[bool, dict | None]:
    """(already finished?, the newest resumable checkpoint or None to start fresh)."""
    if not config.resume:
        if dist.is_main and files.has_run():
            moved = files.move_aside()
            console.say(f"resume: false — the earlier run in {files.root} was moved to {moved}")
        D.barrier(dist)
        return False, None
    found = ckpt_io.latest_checkpoint(files)
    if found is None:
        if files.final.exists():
            raise ParaclipError(f"{files.root} holds a finished run (final.pt) but no resumable checkpoint. "
                                f"Use another out_dir, or set resume: false to start over (the old files are "
                                f"moved aside).")
        return False, None
    path, state = found
    ckpt_io.check_compatible(files, state, path, config)
    if files.final.exists() and state["step"] >= _total_steps(config, state["steps_per_epoch"]):
        return True, state
    console.say(f"resuming from {path} (step {state['step']})")
    return False, state


def _finished_result(files: RunFiles, state: dict, console: Console) -> TrainResult:
    console.say(f"{files.final} is already complete (step {state['step']}); nothing to do")
    report = _saved_data_report(files.data_report)
    return TrainResult(checkpoint=files.final, metrics_file=files.metrics, steps=state["step"],
                       total_steps=state["step"], out_dir=files.root, completed=True,
                       last_checkpoint=files.step_checkpoints()[-1], data_report=report, arch=state.get("arch", ""))


def _saved_data_report(path: Path) -> dict:
    """The data report a finished run saved; ``{}`` (with a note) when it is missing or damaged."""
    if not path.exists():
        return {}
    try:
        report = read_json(path)
    except DataError as exc:
        report = str(exc).removeprefix(f"{path}: ").rstrip(".")
    if not isinstance(report, dict):
        warnings.warn(f"{path}: damaged data report ({report if isinstance(report, str) else 'not an object'}); "
                      f"the result has none.", DamagedCacheWarning, stacklevel=2)
        return {}
    return report


class Trainer:
    """One run, set up in full by the constructor — model, data, image source, optimiser,
    validators, and the state of a resumed run; :meth:`run` trains to the end or to a stop."""

    def __init__(self, config: TrainConfig, *, dist: D.DistInfo, files: RunFiles, console: Console,
                 resume: dict | None = None, on_metrics: MetricsCallback | None = None,
                 should_stop: StopCallback | None = None, validators: Sequence[Validator] = (),
                 images: ImageInput | None = None):
        cfg = config
        self.config, self.dist, self.files, self.console = config, dist, files, console
        self.on_metrics, self.should_stop = on_metrics, should_stop
        self.preset = resolve_preset(cfg.loss_preset, cfg.loss_weights)
        self.encoder = self._load_encoder()
        self.clip = self.encoder.model.to(dist.device)
        self.encoder.device = dist.device
        self.arch: str = self.encoder.arch
        records, heldout, self.report = self._read_data()
        wants_heldout = bool(heldout) and "heldout" in map(normalise_validator, cfg.validation)
        prepared = prepare_images(cfg, self.encoder, dist, console, records, heldout, self.report, images,
                                  needed=self.preset.uses_image or wants_heldout)
        self.records, self.heldout = prepared.records, prepared.heldout
        self.step_images = prepared.source if self.preset.uses_image else NoImages()
        self.report.kept = len(self.records)
        if cfg.batch_size % dist.world_size:
            raise ParaclipError(f"batch_size {cfg.batch_size} must be divisible by the number of processes "
                                f"({dist.world_size}).")
        self.local_batch = cfg.batch_size // dist.world_size
        self.schedule = BatchSchedule(len(self.records), cfg.batch_size, cfg.seed)
        self.total_steps = _total_steps(cfg, self.schedule.steps_per_epoch)
        self.plan = StepPlan(self.schedule, self.total_steps,
                             slice(dist.rank * self.local_batch, (dist.rank + 1) * self.local_batch))
        self.warmup = warmup_steps(cfg.warmup, self.total_steps)
        self.fingerprint = records_fingerprint(self.records)
        self.tokens = self._tokenize()
        self.module = ContrastiveModule(self.clip, cfg.freeze_image, cfg.logit_scale == "learnable")
        if cfg.grad_checkpointing:
            self.clip.set_grad_checkpointing(True)
        self.module.train()
        self.ddp: torch.nn.Module = self.module
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [dist.device.index] if dist.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.module, device_ids=ids, broadcast_buffers=False)
        self.optimizer = build_optimizer(self.clip, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), cfg.eps)
        self.trainable = [p for p in self.clip.parameters() if p.requires_grad]
        make_heldout = functools.partial(heldout_validator, self.heldout, prepared.source, prepared.val_image_rows,
                                         prepared.n_images, self.preset, cfg.batch_size) if self.heldout else None
        self.validators = build_validators(cfg.validation, cfg.sts_dir, make_heldout, console.say) + list(validators)
        self.step, self.train_seconds = 0, 0.0
        if resume is not None:
            self._restore(resume)
        elif dist.is_main:
            files.metrics.parent.mkdir(parents=True, exist_ok=True)
            files.metrics.write_text("")
        self._write_run_files()

    # -- setup -----------------------------------------------------------------------------
    def _load_encoder(self):
        from paraclip.models import load_encoder

        cfg = self.config
        encoder = load_encoder(cfg.model, cfg.pretrained, device="cpu")
        if not hasattr(encoder, "model") or not hasattr(encoder, "arch") or not hasattr(encoder.model, "visual"):
            raise ParaclipError(f"Training needs an open_clip model; {cfg.model!r} loaded as {type(encoder).__name__}. "
                                f"Use an open_clip architecture (ViT-B-32, paraclip-mini, …) or a checkpoint of one.")
        if not cfg.freeze_image and not self.preset.uses_image:
            raise ParaclipError(f"freeze_image is false but loss preset {self.preset.name!r} has no image term, so "
                                f"the image tower would get no gradient. Use loss_preset clip (or paraclip/laclip).")
        return encoder

    def _read_data(self):
        cfg = self.config
        fields = self.preset.text_fields or ["caption"]
        records, report = read_records(cfg.data, fields, cfg.max_records)
        held: list = []
        if cfg.val_data:
            held, _ = read_records(cfg.val_data, fields)
        elif cfg.val_split > 0:
            records, held = split_heldout(records, cfg.val_split, cfg.seed)
            report.held_out = len(held)
        return records, held, report

    def _tokenize(self) -> dict[str, torch.Tensor]:
        """Token ids of every text field the loss reads, padded to one width."""
        texts = {f: [getattr(r, f) for r in self.records] for f in self.preset.text_fields}
        width_tokens = {f: tokenize(t, self.encoder.tokenizer) for f, t in texts.items()}
        width = max((t.shape[1] for t in width_tokens.values()), default=1)
        return {f: torch.nn.functional.pad(t, (0, width - t.shape[1])) for f, t in width_tokens.items()}

    def _restore(self, state: dict) -> None:
        if state.get("data_fingerprint") != self.fingerprint:
            raise ParaclipError(
                f"The training data changed since the checkpoint in {self.files.root} was written (it was "
                f"{state.get('records')} records, now {len(self.records)}), so the run cannot be resumed exactly. "
                f"Restore the data, or use another out_dir / resume: false.")
        self.clip.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        rngs = state["rng"]
        ckpt_io.set_rng_state(rngs[self.dist.rank] if self.dist.rank < len(rngs) else rngs[0])
        self.step = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        if self.dist.is_main:
            ckpt_io.truncate_metrics(self.files.metrics, self.step)

    def _write_run_files(self) -> None:
        if not self.dist.is_main:
            return
        import yaml

        self.files.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.files.config, yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        atomic_write_text(self.files.data_report, json.dumps(self.report.to_dict(), indent=1))
        self.console.say(self.report.summary())
        self._status("running")

    def _status(self, state: str, checkpoint: Path | None = None) -> None:
        if self.dist.is_main:
            self.files.write_status(state=state, step=self.step, total_steps=self.total_steps,
                                    checkpoint=str(checkpoint) if checkpoint else None,
                                    metrics=str(self.files.metrics), arch=self.arch, loss_preset=self.preset.name)

    # -- validation ------------------------------------------------------------------------------
    def _validate(self) -> dict:
        """Run validators on the main process; every process waits for it."""
        row: dict = {}
        if self.validators and self.dist.is_main:
            from paraclip.models.encoders import OpenCLIPEncoder

            start = time.perf_counter()
            view = OpenCLIPEncoder(self.clip, self.encoder.preprocess, self.encoder.tokenizer, name=self.arch,
                                   pretrained=self.config.pretrained, arch=self.arch, device=self.dist.device)
            try:
                for validator in self.validators:
                    prefix = f"val_{validator_name(validator)}_"
                    for key, value in validator(view).items():
                        row[prefix + key] = float(value)
            finally:
                self.module.train()
            row = {"step": self.step, "val_seconds": round(time.perf_counter() - start, 3), **row}
            self._emit(row)
        D.barrier(self.dist)
        return row

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg = self.config
        bar = self.console.start_training_bar(self.total_steps, self.step)
        last_val = self._validate() if cfg.validate_every > 0 and self.step == 0 else {}
        last_saved: Path | None = None
        with StopSignals() as signals:
            interval_start, interval_steps = time.perf_counter(), 0
            while self.step < self.total_steps:
                t0 = time.perf_counter()
                losses = self._train_step(self.step)
                self.step += 1
                interval_steps += 1
                self.train_seconds += time.perf_counter() - t0
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    row = self._train_row(losses, interval_steps, time.perf_counter() - interval_start)
                    self._emit(row)
                    if bar is not None:
                        bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
                    interval_start, interval_steps = time.perf_counter(), 0
                if bar is not None:
                    bar.update(1)
                paused = time.perf_counter()
                if cfg.validate_every > 0 and self.step % cfg.validate_every == 0 and self.step < self.total_steps:
                    last_val = self._validate() or last_val
                if cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0:
                    last_saved = self._save_step_checkpoint()
                stop = signals.requested or bool(self.should_stop and self.should_stop())
                if D.any_flag(stop, self.dist) and self.step < self.total_steps:
                    last_saved = self._checkpoint_unless_saved(last_saved)
                    self._status("stopped", last_saved)
                    self.console.say(f"stopped at step {self.step}; rerun the same command to resume")
                    if signals.requested and on_main_thread():
                        raise Interrupted(signals.signum)  # the CLI's exit status names the signal
                    return self._result(completed=False, last=last_saved, final_metrics=last_val)
                interval_start += time.perf_counter() - paused  # exclude validation/checkpoint time
        last_val = self._validate() or last_val
        last_saved = self._checkpoint_unless_saved(last_saved)
        final = self._save_final(last_val)
        self._status("finished", final)
        return self._result(completed=True, last=last_saved, final_metrics=last_val, final=final)

    def _batch_tokens(self, step: int) -> tuple[torch.Tensor | None, list[str]]:
        """(tokens of every text role of this process's share of the batch, stacked; the role names)."""
        local_idx = self.schedule.indices(step)[self.plan.local]
        roles = [r for r in self.preset.roles if r != IMAGE]
        parts = []
        for role in roles:
            if role == RANDOM_TEXT:
                choice = torch.as_tensor(self.schedule.choices(step, len(TEXT_ROLES))[self.plan.local])
                stacked = torch.stack([self.tokens[f][local_idx] for f in TEXT_ROLES])
                parts.append(stacked[choice, torch.arange(len(local_idx))])
            else:
                parts.append(self.tokens[role][local_idx])
        return (torch.cat(parts).to(self.dist.device, torch.long) if parts else None), roles

    def _train_step(self, step: int) -> dict[str, torch.Tensor]:
        cfg, dist = self.config, self.dist
        lr = lr_at(step, self.total_steps, cfg.lr, self.warmup, cfg.min_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        tokens, roles = self._batch_tokens(step)
        images = self.step_images.for_step(step, self.plan)
        b = self.local_batch
        with autocast(dist.device, cfg.precision):
            text, image, scale = self.ddp(tokens, images.pixels)
        text, image = text.float(), image.float() if image is not None else None
        gathered_text = D.gather_with_grad(text, dist)
        k = len(roles)
        global_text = gathered_text.view(dist.world_size, k, b, -1).transpose(0, 1).reshape(k, dist.world_size * b, -1)
        local = {role: text[i * b:(i + 1) * b] for i, role in enumerate(roles)}
        gathered = {role: global_text[i] for i, role in enumerate(roles)}
        if images.features is not None:
            gathered[IMAGE] = images.features
            local[IMAGE] = images.features[self.plan.local]
        elif image is not None:
            gathered[IMAGE] = D.gather_with_grad(image, dist)
            local[IMAGE] = image
        loss, parts = total_loss(self.preset, local, gathered, scale.float(), offset=dist.rank * b)
        if not torch.isfinite(loss):
            raise ParaclipError(f"The loss became {loss.item()} at step {step + 1} (lr {lr:.3g}). Lower lr, or keep "
                                f"grad_clip on; the last checkpoint in {self.files.checkpoints} is intact.")
        loss.backward()
        grad_norm = None
        if cfg.grad_clip:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.module.clamp_logit_scale()
        out = {"loss": loss.detach(), **{f"loss_{k}": v for k, v in parts.items()}}
        if grad_norm is not None:
            out["grad_norm"] = grad_norm.detach()
        out["lr"] = torch.tensor(lr)
        return out

    def _train_row(self, losses: dict[str, torch.Tensor], steps: int, seconds: float) -> dict:
        dist = self.dist
        keys = [k for k in losses if k != "lr"]
        values = D.all_reduce_mean(torch.stack([losses[k].float().to(dist.device) for k in keys]), dist).tolist()
        if dist.device.type == "cuda":
            torch.cuda.synchronize(dist.device)
        row = {"step": self.step, "epoch": round(self.step / self.schedule.steps_per_epoch, 4)}
        row.update({k: float(v) for k, v in zip(keys, values)})
        row["lr"] = float(losses["lr"])
        row["logit_scale"] = float(self.clip.logit_scale.detach().exp())
        row["samples_per_s"] = round(self.config.batch_size * steps / max(seconds, 1e-9), 2)
        row["mem_mb"] = round(peak_memory_mb(dist.device), 1)
        row["time"] = round(self.train_seconds, 3)
        return row

    def _emit(self, row: dict) -> None:
        if not self.dist.is_main:
            return
        with naming_errors(self.files.metrics), open(self.files.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.on_metrics is not None:
            self.on_metrics(dict(row))

    # -- checkpoints ------------------------------------------------------------------------------
    def _checkpoint_unless_saved(self, last_saved: Path | None) -> Path:
        """The checkpoint of the current step: ``last_saved`` when that is it, else a new one."""
        if last_saved is not None and last_saved == self.files.step_path(self.step):
            return last_saved
        return self._save_step_checkpoint()

    def _save_step_checkpoint(self) -> Path:
        rngs = D.all_gather_objects(ckpt_io.rng_state(), self.dist)
        path = self.files.step_path(self.step)
        if self.dist.is_main:
            cfg = self.config
            epoch, batch = self.schedule.position(self.step)
            ckpt_io.save_checkpoint(
                path, self.clip.state_dict(), self.arch, format=ckpt_io.TRAIN_CHECKPOINT_FORMAT,
                optimizer=self.optimizer.state_dict(), step=self.step,
                lr_schedule={"total_steps": self.total_steps, "warmup": self.warmup, "peak": cfg.lr,
                             "floor": cfg.min_lr},
                data_position={"epoch": epoch, "batch_in_epoch": batch, "seed": cfg.seed},
                steps_per_epoch=self.schedule.steps_per_epoch, data_fingerprint=self.fingerprint,
                records=len(self.records), rng=rngs, config=cfg.to_dict(), train_seconds=self.train_seconds)
            ckpt_io.prune_checkpoints(self.files, cfg.keep_checkpoints, cfg.checkpoint_every)
            self._status("running", path)
        D.barrier(self.dist)
        return path

    def _save_final(self, last_val: dict) -> Path:
        if self.dist.is_main:
            cfg = self.config
            meta = {
                "run_name": self.files.root.name,
                "step": self.step,
                "epoch": int(math.ceil(self.step / self.schedule.steps_per_epoch)),
                "base_model": cfg.model,
                "pretrained": cfg.pretrained,
                "loss_preset": self.preset.name,
                "loss_terms": [[t.name, t.left, t.right, t.weight] for t in self.preset.terms],
                "freeze_image": cfg.freeze_image,
                "records": len(self.records),
                "data_fingerprint": self.fingerprint,
                "config": cfg.to_dict(),
                "validation": {k: v for k, v in last_val.items() if k.startswith("val_")},
                "versions": library_versions(),
            }
            ckpt_io.save_checkpoint(self.files.final, self.clip.state_dict(), self.arch, **ckpt_io.final_fields(meta))
        D.barrier(self.dist)
        return self.files.final

    def _result(self, completed: bool, last: Path | None, final_metrics: dict, final: Path | None = None):
        return TrainResult(checkpoint=final, metrics_file=self.files.metrics, steps=self.step,
                           total_steps=self.total_steps, out_dir=self.files.root, completed=completed,
                           last_checkpoint=last, data_report=self.report.to_dict(), final_metrics=final_metrics,
                           arch=self.arch)
