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

import contextlib
import json
import math
import resource
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from paraclip.checks import check_output_dir, describe_os_error
from paraclip.errors import DataError, ParaclipError, WriteError
from paraclip.features import FeatureCache, default_cache_root
from paraclip.results import atomic_write_text, library_versions
from paraclip.training import checkpoint as ckpt_io
from paraclip.training import distributed as D
from paraclip.training.config import TrainConfig, changed_fields
from paraclip.training.data import (
    BatchSchedule, DataReport, ImageIndex, PixelStore, StepPixels, check_image_ids, estimate_pixel_bytes,
    read_records, records_fingerprint, split_heldout, tokenize,
)
from paraclip.training.losses import IMAGE, RANDOM_TEXT, TEXT_ROLES, LossPreset, resolve_preset, total_loss
from paraclip.training.model import ContrastiveModule, build_optimizer, lr_at, warmup_steps
from paraclip.training.validation import HeldOutValidator, STSBDevValidator, Validator, validator_name

MetricsCallback = Callable[[dict], None]
StopCallback = Callable[[], bool]
ImageSource = Mapping[str, object] | Callable[[str], object]


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
          validators: Sequence[Validator] = (), images: ImageSource | None = None,
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
    trainer = Trainer(config, on_metrics, should_stop, list(validators), images, progress)
    try:
        return trainer.run()
    except OSError as exc:  # e.g. a full disk while checkpointing: the previous checkpoint is intact
        raise WriteError(f"{describe_os_error(exc)} {trainer.kept_work()}") from exc
    finally:
        trainer.close()


class _StopSignals:
    """Turn SIGINT/SIGTERM into a request to stop at the next step boundary (a second Ctrl-C aborts)."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


class Trainer:
    def __init__(self, config: TrainConfig, on_metrics, should_stop, validators, images, progress):
        self.config = config
        self.on_metrics, self.should_stop = on_metrics, should_stop
        self.extra_validators, self.image_source = validators, images
        self.dist = D.init_distributed(config.device)
        self.verbose = progress and self.dist.is_main
        self.files = ckpt_io.RunFiles(config.out_dir)
        self.preset: LossPreset = resolve_preset(config.loss_preset, config.loss_weights)
        self.bar = None
        self.step = 0
        self.train_seconds = 0.0
        self._threads_before = torch.get_num_threads()

    def kept_work(self) -> str:
        """What a rerun resumes from (for error messages)."""
        found = ckpt_io.latest_checkpoint(self.files)
        if found is None:
            return "No checkpoint had been written yet, so a rerun starts from the beginning."
        path, state = found
        return f"Finished work is kept: a rerun resumes from {path} (step {state['step']})."

    def say(self, message: str) -> None:
        if self.verbose:
            (self.bar.write if self.bar is not None else lambda m: print(m, file=sys.stderr))(message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.config.threads:
            torch.set_num_threads(self._threads_before)  # train() runs inside the app's process too
        D.shutdown(self.dist)

    # -- setup -----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        finished, resume = self._existing_run()
        if finished:
            return self._finished_result(resume)
        ckpt_io.seed_everything(cfg.seed)
        self._load_model()
        self._load_data()
        self._prepare_images()
        self._build_training_state()
        if resume is not None:
            self._restore(resume)
        elif self.dist.is_main:
            self.files.metrics.parent.mkdir(parents=True, exist_ok=True)
            self.files.metrics.write_text("")
        self._write_run_files()
        return self._loop()

    def _existing_run(self) -> tuple[bool, dict | None]:
        """(already finished?, the newest resumable checkpoint or None to start fresh)."""
        cfg, files = self.config, self.files
        if not cfg.resume:
            if self.dist.is_main and files.has_run():
                moved = files.move_aside()
                self.say(f"resume: false — the earlier run in {files.root} was moved to {moved}")
            D.barrier(self.dist)
            return False, None
        found = ckpt_io.latest_checkpoint(files)
        if found is None:
            if files.final.exists():
                raise ParaclipError(f"{files.root} holds a finished run (final.pt) but no resumable checkpoint. "
                                    f"Use another out_dir, or set resume: false to start over (the old files are "
                                    f"moved aside).")
            return False, None
        path, state = found
        self._check_compatible(state, path)
        if files.final.exists() and state["step"] >= self._total_steps(state["steps_per_epoch"]):
            return True, state
        self.say(f"resuming from {path} (step {state['step']})")
        return False, state

    def _total_steps(self, steps_per_epoch: int) -> int:
        cfg = self.config
        if cfg.steps is not None:
            return cfg.steps
        return max(1, int(round(cfg.epochs * steps_per_epoch)))

    def _check_compatible(self, state: dict, path: Path) -> None:
        changed = changed_fields(state["config"], self.config)
        if changed:
            detail = "; ".join(f"{k}: {old!r} in the checkpoint, {new!r} now" for k, (old, new) in changed.items())
            arch_hint = (f" The checkpoint is of architecture {state.get('arch')!r}." if "model" in changed else "")
            raise ParaclipError(
                f"{self.files.root} holds a run with different settings ({detail}).{arch_hint} "
                f"Resuming would not reproduce either run: use another out_dir, or set resume: false to start over "
                f"(the old run is moved aside, not deleted). Checkpoint: {path}.")

    def _finished_result(self, state: dict) -> TrainResult:
        self.say(f"{self.files.final} is already complete (step {state['step']}); nothing to do")
        report = {}
        if self.files.data_report.exists():
            report = json.loads(self.files.data_report.read_text())
        return TrainResult(checkpoint=self.files.final, metrics_file=self.files.metrics, steps=state["step"],
                           total_steps=state["step"], out_dir=self.files.root, completed=True,
                           last_checkpoint=self.files.step_checkpoints()[-1], data_report=report,
                           arch=state.get("arch", ""))

    def _load_model(self) -> None:
        from paraclip.models import load_encoder

        cfg = self.config
        encoder = load_encoder(cfg.model, cfg.pretrained, device="cpu")
        if not hasattr(encoder, "model") or not hasattr(encoder, "arch") or not hasattr(encoder.model, "visual"):
            raise ParaclipError(f"Training needs an open_clip model; {cfg.model!r} loaded as {type(encoder).__name__}. "
                                f"Use an open_clip architecture (ViT-B-32, paraclip-mini, …) or a checkpoint of one.")
        if not cfg.freeze_image and not self.preset.uses_image:
            raise ParaclipError(f"freeze_image is false but loss preset {self.preset.name!r} has no image term, so "
                                f"the image tower would get no gradient. Use loss_preset clip (or paraclip/laclip).")
        self.encoder = encoder
        self.clip = encoder.model.to(self.dist.device)
        encoder.device = self.dist.device
        self.arch = encoder.arch

    def _load_data(self) -> None:
        cfg = self.config
        fields = self.preset.text_fields or ["caption"]
        records, report = read_records(cfg.data, fields, cfg.max_records)
        held: list = []
        if cfg.val_data:
            held, _ = read_records(cfg.val_data, fields)
        elif cfg.val_split > 0:
            records, held = split_heldout(records, cfg.val_split, cfg.seed)
            report.held_out = len(held)
        self.records, self.heldout, self.report = records, held, report

    # -- images ------------------------------------------------------------------------------
    def _image_loader(self) -> tuple[Callable[[str], object] | None, Callable[[str], bool], str]:
        """(load(id), has(id), description) from the in-memory source or ``config.images``."""
        src = self.image_source
        if src is not None:
            if isinstance(src, Mapping):
                return src.__getitem__, src.__contains__, "images given in memory"
            return src, (lambda _id: True), "image loader given in memory"
        if self.config.images:
            index = ImageIndex.from_spec(self.config.images)
            return index.load, index.__contains__, index.source
        return None, (lambda _id: False), "no image source"

    def _prepare_images(self) -> None:
        """Image features from the cache (frozen tower) or decoded pixels (training the tower)."""
        self.features = self.pixels = self.step_pixels = None
        needs_images = self.preset.uses_image or (bool(self.heldout) and "heldout" in self._validation_names())
        if not needs_images:
            self.image_ids, self.image_rows, self.val_image_rows = [], None, None
            return
        load, has, source = self._image_loader()
        cfg = self.config
        if cfg.freeze_image:
            cache = FeatureCache.for_encoder(self.encoder, cfg.features_from or default_cache_root())
            cached = set(cache.ids())
            available = lambda i: i in cached or has(i)  # noqa: E731
            where = f"{source} or the feature cache {cache.dir}"
        else:
            cache, available, where = None, has, source
        self.records = check_image_ids(self.records, available, cfg.data, where, cfg.skip_missing_images, self.report)
        if self.heldout:
            self.heldout = check_image_ids(self.heldout, available, cfg.val_data or cfg.data, where,
                                           cfg.skip_missing_images, DataReport(str(cfg.val_data or cfg.data)))
        ids = list(dict.fromkeys([r.image_id for r in self.records] + [r.image_id for r in self.heldout]))
        if cfg.freeze_image:
            bad = self._fill_feature_cache(cache, ids, load) if self.dist.is_main else []
            bad = D.broadcast_object(bad, self.dist)
        else:
            bad = self._load_pixels(ids, load)
        if bad:
            ids = self._drop_bad_images(ids, bad, load)
        self.image_ids = ids
        row_of = {image_id: i for i, image_id in enumerate(ids)}
        self.image_rows = np.array([row_of[r.image_id] for r in self.records], dtype=np.int64)
        self.val_image_rows = np.array([row_of[r.image_id] for r in self.heldout], dtype=np.int64)
        if cfg.freeze_image:
            # re-open: other processes' views of the cache predate the shards the main process wrote
            feats = FeatureCache(cache.dir.parent, cache.dir.name).get(ids)
            self.features = feats.to(self.dist.device, torch.float16)  # rows re-normalised per batch

    def _fill_feature_cache(self, cache: FeatureCache, ids: list[str], load) -> list[tuple[str, str]]:
        """Encode images not yet cached with the frozen tower; returns unreadable (id, reason) pairs."""
        todo = cache.missing(ids)
        if not todo:
            self.say(f"image features: all {len(ids)} cached in {cache.dir}")
            return []
        if load is None:
            raise DataError(f"{len(todo)} images have no cached features in {cache.dir} (e.g. {todo[:3]}) and no "
                            f"`images` source is set. Set `images` to the image folder / CSV / JSONL.")
        self.say(f"image features: encoding {len(todo)} images with the frozen image tower into {cache.dir}")
        bad: list[tuple[str, str]] = []
        bar = _bar(len(todo), "image features", "img") if self.verbose else None
        bs = self.config.feature_batch_size
        for start in range(0, len(todo), bs):
            chunk, images = [], []
            for image_id in todo[start:start + bs]:
                try:
                    images.append(load(image_id))
                    chunk.append(image_id)
                except (OSError, ValueError, KeyError, SyntaxError) as exc:
                    bad.append((image_id, f"{type(exc).__name__}: {exc}"))
            if chunk:
                cache.put(chunk, self.encoder.encode_image(images, progress=False))
            if bar is not None:
                bar.update(len(todo[start:start + bs]))
        if bar is not None:
            bar.close()
        return bad

    def _load_pixels(self, ids: list[str], load) -> list[tuple[str, str]]:
        if load is None:
            raise DataError("Training the image tower (freeze_image: false) needs the images: set `images`.")
        size = getattr(self.clip.visual, "image_size", 224)
        need = estimate_pixel_bytes(len(ids), size)
        if need <= self.config.image_memory_gb * 2 ** 30:
            self.say(f"decoding {len(ids)} images into memory ({need / 2 ** 20:.0f} MB)")
            bad: list[tuple[str, str]] = []
            self.pixels, failed = PixelStore.build(ids, load, self.encoder.preprocess, threads=4,
                                                   on_error=lambda i, e: bad.append((i, f"{type(e).__name__}: {e}")))
            return bad
        self.say(f"{len(ids)} images need {need / 2 ** 30:.1f} GB > image_memory_gb; decoding per step "
                 f"with {self.config.workers} workers")
        self.lazy_load = load
        return []

    def _drop_bad_images(self, ids: list[str], bad: list[tuple[str, str]], load) -> list[str]:
        examples = "; ".join(f"{i!r}: {why}" for i, why in bad[:3])
        if not self.config.skip_missing_images:
            raise DataError(f"{len(bad)} images could not be read (e.g. {examples}). Replace or remove them, or set "
                            f"`skip_missing_images: true` to skip their records (counted in the data report). "
                            f"Features of the readable images are cached, so a rerun does not redo them.")
        bad_ids = {i for i, _ in bad}
        for r in self.records:
            if r.image_id in bad_ids:
                self.report.skip("image unreadable", r.line)
        self.records = [r for r in self.records if r.image_id not in bad_ids]
        self.heldout = [r for r in self.heldout if r.image_id not in bad_ids]
        keep = [i for i in ids if i not in bad_ids]
        if self.pixels is not None:
            rows = [k for k, i in enumerate(ids) if i not in bad_ids]
            self.pixels.pixels = self.pixels.pixels[rows]
        if not self.records:
            raise DataError(f"No training records are left after skipping {len(bad)} unreadable images.")
        return keep

    # -- model state ---------------------------------------------------------------------------
    def _build_training_state(self) -> None:
        cfg, dist = self.config, self.dist
        self.report.kept = len(self.records)
        if cfg.batch_size % dist.world_size:
            raise ParaclipError(f"batch_size {cfg.batch_size} must be divisible by the number of processes "
                                f"({dist.world_size}).")
        self.local_batch = cfg.batch_size // dist.world_size
        self.local = slice(dist.rank * self.local_batch, (dist.rank + 1) * self.local_batch)
        self.schedule = BatchSchedule(len(self.records), cfg.batch_size, cfg.seed)
        self.total_steps = self._total_steps(self.schedule.steps_per_epoch)
        self.warmup = warmup_steps(cfg.warmup, self.total_steps)
        self.fingerprint = records_fingerprint(self.records)
        fields = self.preset.text_fields
        texts = {f: [getattr(r, f) for r in self.records] for f in fields}
        width_tokens = {f: tokenize(t, self.encoder.tokenizer) for f, t in texts.items()}
        width = max((t.shape[1] for t in width_tokens.values()), default=1)
        self.tokens = {f: torch.nn.functional.pad(t, (0, width - t.shape[1])) for f, t in width_tokens.items()}
        self.module = ContrastiveModule(self.clip, cfg.freeze_image, cfg.logit_scale == "learnable")
        if cfg.grad_checkpointing:
            self.clip.set_grad_checkpointing(True)
        self.module.train()
        self.ddp = self.module
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [dist.device.index] if dist.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.module, device_ids=ids, broadcast_buffers=False)
        self.optimizer = build_optimizer(self.clip, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), cfg.eps)
        self.trainable = [p for p in self.clip.parameters() if p.requires_grad]
        self.validators = self._build_validators()
        self.loader_iter = None

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
        self.say(self.report.summary())
        self._status("running")

    def _status(self, state: str, checkpoint: Path | None = None) -> None:
        if self.dist.is_main:
            self.files.write_status(state=state, step=self.step, total_steps=self.total_steps,
                                    checkpoint=str(checkpoint) if checkpoint else None,
                                    metrics=str(self.files.metrics), arch=self.arch, loss_preset=self.preset.name)

    # -- validation ------------------------------------------------------------------------------
    def _validation_names(self) -> list[str]:
        return [n.strip().lower().replace("_", "-") for n in self.config.validation]

    def _build_validators(self) -> list[Validator]:
        out: list[Validator] = []
        for name in self._validation_names():
            if name in ("stsb-dev", "sts-b-dev", "stsb"):
                try:
                    out.append(STSBDevValidator(self.config.sts_dir))
                except ParaclipError as exc:
                    self.say(f"validation stsb-dev skipped: {exc}")
            elif name == "heldout":
                if self.heldout:
                    out.append(self._heldout_validator())
                else:
                    self.say("validation heldout skipped: no held-out records (set val_data or val_split)")
            else:
                raise ParaclipError(f"Unknown validator {name!r} in `validation`; built in: stsb-dev, heldout.")
        return out + list(self.extra_validators)

    def _heldout_validator(self) -> HeldOutValidator:
        rows = torch.as_tensor(self.val_image_rows)
        unique = torch.unique(rows)
        remap = torch.full((len(self.image_ids),), -1, dtype=torch.long)
        remap[unique] = torch.arange(len(unique))

        def image_features(encoder) -> torch.Tensor:
            if self.features is not None:
                feats = self.features[unique.to(self.features.device)].float().cpu()
                return torch.nn.functional.normalize(feats, dim=-1)
            if self.pixels is not None:
                px = self.pixels.batch(unique)
                return encoder.encode_image(list(px), progress=False)
            load, _, _ = self._image_loader()
            return encoder.encode_image([load(self.image_ids[i]) for i in unique.tolist()], progress=False)

        return HeldOutValidator(
            [r.caption for r in self.heldout], [[r.paraphrase_1, r.paraphrase_2] for r in self.heldout],
            remap[rows], image_features, self.preset, self.config.batch_size)

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
    def _loop(self) -> TrainResult:
        cfg = self.config
        if self.verbose:
            self.bar = _bar(self.total_steps, "training", "step", initial=self.step)
        last_val: dict = {}
        last_saved = None
        if cfg.validate_every > 0 and self.step == 0:
            last_val = self._validate()
        with _StopSignals() as signals:
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
                    if self.bar is not None:
                        self.bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
                    interval_start, interval_steps = time.perf_counter(), 0
                if self.bar is not None:
                    self.bar.update(1)
                paused = time.perf_counter()
                if cfg.validate_every > 0 and self.step % cfg.validate_every == 0 and self.step < self.total_steps:
                    last_val = self._validate() or last_val
                if cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0:
                    last_saved = self._save_step_checkpoint()
                stop = signals.requested or bool(self.should_stop and self.should_stop())
                if D.any_flag(stop, self.dist) and self.step < self.total_steps:
                    if last_saved is None or last_saved != self.files.step_path(self.step):
                        last_saved = self._save_step_checkpoint()
                    self._status("stopped", last_saved)
                    self.say(f"stopped at step {self.step}; rerun the same command to resume")
                    if signals.requested and threading.current_thread() is threading.main_thread():
                        raise KeyboardInterrupt
                    return self._result(completed=False, last=last_saved, final_metrics=last_val)
                interval_start += time.perf_counter() - paused  # exclude validation/checkpoint time
        last_val = self._validate() or last_val
        if last_saved is None or last_saved != self.files.step_path(self.step):
            last_saved = self._save_step_checkpoint()
        final = self._save_final(last_val)
        self._status("finished", final)
        return self._result(completed=True, last=last_saved, final_metrics=last_val, final=final)

    def _batch_inputs(self, step: int) -> tuple[torch.Tensor, list[str], torch.Tensor | None, torch.Tensor | None]:
        """(tokens of every text role stacked, role names, global image features, local pixels)."""
        idx = self.schedule.indices(step)
        local_idx = idx[self.local]
        roles = [r for r in self.preset.roles if r != IMAGE]
        parts = []
        for role in roles:
            if role == RANDOM_TEXT:
                choice = torch.as_tensor(self.schedule.choices(step, len(TEXT_ROLES))[self.local])
                stacked = torch.stack([self.tokens[f][local_idx] for f in TEXT_ROLES])
                parts.append(stacked[choice, torch.arange(len(local_idx))])
            else:
                parts.append(self.tokens[role][local_idx])
        tokens = torch.cat(parts).to(self.dist.device, torch.long) if parts else None
        features = pixels = None
        if self.preset.uses_image:
            if self.features is not None:
                rows = torch.as_tensor(self.image_rows[idx], device=self.features.device)
                features = torch.nn.functional.normalize(self.features[rows].float(), dim=-1)
            elif self.pixels is not None:
                pixels = self.pixels.batch(self.image_rows[local_idx]).to(self.dist.device)
            else:
                pixels = self._lazy_pixels(step).to(self.dist.device)
        return tokens, roles, features, pixels

    def _lazy_pixels(self, step: int) -> torch.Tensor:
        if self.loader_iter is None:
            dataset = StepPixels(self.schedule, self.image_rows, self.image_ids, self.lazy_load,
                                 self.encoder.preprocess, self.local)
            loader = torch.utils.data.DataLoader(dataset, batch_size=None, sampler=range(step, self.total_steps),
                                                 num_workers=self.config.workers,
                                                 persistent_workers=False, prefetch_factor=2 if self.config.workers else None)
            self.loader_iter = iter(loader)
        return next(self.loader_iter)

    def _autocast(self):
        dev, precision = self.dist.device, self.config.precision
        if precision == "bf16" or (precision == "auto" and dev.type == "cuda"):
            return torch.autocast(dev.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _train_step(self, step: int) -> dict[str, torch.Tensor]:
        cfg, dist = self.config, self.dist
        lr = lr_at(step, self.total_steps, cfg.lr, self.warmup, cfg.min_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        tokens, roles, global_image, pixels = self._batch_inputs(step)
        b = self.local_batch
        with self._autocast():
            text, image, scale = self.ddp(tokens, pixels)
        text, image = text.float(), image.float() if image is not None else None
        gathered_text = D.gather_with_grad(text, dist)
        k = len(roles)
        global_text = gathered_text.view(dist.world_size, k, b, -1).transpose(0, 1).reshape(k, dist.world_size * b, -1)
        local = {role: text[i * b:(i + 1) * b] for i, role in enumerate(roles)}
        gathered = {role: global_text[i] for i, role in enumerate(roles)}
        if global_image is not None:
            gathered[IMAGE] = global_image
            local[IMAGE] = global_image[self.local]
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
        row["mem_mb"] = round(_peak_memory_mb(dist.device), 1)
        row["time"] = round(self.train_seconds, 3)
        return row

    def _emit(self, row: dict) -> None:
        if not self.dist.is_main:
            return
        with open(self.files.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.on_metrics is not None:
            self.on_metrics(dict(row))

    # -- checkpoints ------------------------------------------------------------------------------
    def _save_step_checkpoint(self) -> Path:
        rngs = D.all_gather_objects(ckpt_io.rng_state(), self.dist)
        path = self.files.step_path(self.step)
        if self.dist.is_main:
            epoch, batch = self.schedule.position(self.step)
            state = {
                "format": ckpt_io.TRAIN_CHECKPOINT_FORMAT,
                "arch": self.arch,
                "state_dict": self.clip.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "step": self.step,
                "lr_schedule": {"total_steps": self.total_steps, "warmup": self.warmup, "peak": self.config.lr,
                                "floor": self.config.min_lr},
                "data_position": {"epoch": epoch, "batch_in_epoch": batch, "seed": self.config.seed},
                "steps_per_epoch": self.schedule.steps_per_epoch,
                "data_fingerprint": self.fingerprint,
                "records": len(self.records),
                "rng": rngs,
                "config": self.config.to_dict(),
                "train_seconds": self.train_seconds,
            }
            ckpt_io.save_atomic(state, path)
            ckpt_io.prune_checkpoints(self.files, self.config.keep_checkpoints, self.config.checkpoint_every)
            self._status("running", path)
        D.barrier(self.dist)
        return path

    def _save_final(self, last_val: dict) -> Path:
        if self.dist.is_main:
            meta = {
                "run_name": self.files.root.name,
                "step": self.step,
                "epoch": int(math.ceil(self.step / self.schedule.steps_per_epoch)),
                "base_model": self.config.model,
                "pretrained": self.config.pretrained,
                "loss_preset": self.preset.name,
                "loss_terms": [[t.name, t.left, t.right, t.weight] for t in self.preset.terms],
                "freeze_image": self.config.freeze_image,
                "records": len(self.records),
                "data_fingerprint": self.fingerprint,
                "config": self.config.to_dict(),
                "validation": {k: v for k, v in last_val.items() if k.startswith("val_")},
                "versions": library_versions(),
            }
            ckpt_io.save_atomic(ckpt_io.final_checkpoint(self.clip.state_dict(), self.arch, meta), self.files.final)
        D.barrier(self.dist)
        return self.files.final

    def _result(self, completed: bool, last: Path | None, final_metrics: dict, final: Path | None = None):
        return TrainResult(checkpoint=final, metrics_file=self.files.metrics, steps=self.step,
                           total_steps=self.total_steps, out_dir=self.files.root, completed=completed,
                           last_checkpoint=last, data_report=self.report.to_dict(), final_metrics=final_metrics,
                           arch=self.arch)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _bar(total: int, desc: str, unit: str, initial: int = 0):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)
