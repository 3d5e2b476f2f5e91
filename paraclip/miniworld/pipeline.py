"""``paraclip miniworld --reproduce``: the whole ParaCLIP pipeline on the mini-world, offline on CPU.

Stages (each cached in the run folder; a rerun skips finished stages and an interrupted
training resumes from its last checkpoint)::

    world        render held-out test scenes, validation scenes (their own stream), then training
                 scenes (test and validation meanings excluded)
    paraphrases  two-step paraphrases of the training captions (the scene-aware rewriter)
    evalsets     in-vocabulary, held-out-rewriter and out-of-vocabulary paraphrase pairs and
                 relation/attribute swaps, for the test and the validation world
    baseline-sN  a CLIP trained from scratch (both towers) on canonical captions, seed N
    paraclip-sN  ParaCLIP fine-tuning of baseline-sN's text encoder (image tower frozen), seed N,
                 keeping the candidate stopping checkpoints
    llm          (optional) the offline LLM as a second paraphrase source, checked against the specs
    abl-ARM-sN   (optional, ``ablations``) the paper's ablation and fair controls (ablations.py)
    select, evaluate-sN, abl-evaluate-sN, report
                 the scoring stages (scoring.py): the stopping step chosen on the validation
                 world, the test world scored once, the report

A stage's fingerprint covers its settings and its inputs' fingerprints; a stage whose
fingerprint changed is redone (its old outputs are removed), so stale results never mix.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from paraclip.errors import ParaclipError
from paraclip.files import atomic_write_text, cache_root

# Bump when a stage's output would change for the same settings.
WORLD_VERSION = 4
REWRITER_VERSION = 2
EVALSETS_VERSION = 2

ProgressFn = Callable[[int, int, str], None]  # (done, total, message), as the app's builders take


@dataclass
class MiniWorldConfig:
    """Everything that defines a mini-world reproduction (the defaults fit ~30 min on 2 CPU cores)."""

    world_seed: int = 0
    n_train: int = 24000
    n_eval: int = 1000
    n_val: int = 1000  # the validation world: settings are chosen there, the test world is scored once
    image_size: int = 64
    arch: str = "paraclip-mini"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    # baseline: CLIP from scratch on canonical captions (both towers, image-caption InfoNCE)
    baseline_steps: int = 600
    baseline_batch_size: int = 128
    baseline_lr: float = 2e-3
    baseline_weight_decay: float = 0.1
    # ParaCLIP: text encoder only, L1 + L2 + L3 (the paper's objective)
    paraclip_steps: int = 1200  # R@1 drop shrinks with fine-tuning samples (TUNING.md)
    paraclip_batch_size: int = 256
    paraclip_lr: float = 1e-3
    paraclip_weight_decay: float = 0.1
    paraclip_loss: str = "paraclip"
    # the stopping step is chosen on the validation world among this many evenly spaced checkpoints
    # of each ParaCLIP run (early stopping; the cosine schedule always spans paraclip_steps)
    stop_candidates: int = 4
    rewriter_seed: int = 0
    # optional second paraphrase source: the offline LLM through the paraphrasing engine
    llm_captions: int = 0
    llm_backend: str = "local"  # local (offline LLM pack, else SmolLM2) or openai (any compatible endpoint)
    llm_model: str | None = None
    llm_base_url: str | None = None
    # the LLM comparison trains on a few hundred captions, so it has its own (smaller) schedule
    llm_paraclip_steps: int = 300
    llm_paraclip_batch_size: int = 64
    # the paper's ablation and fair controls (ablations.py): its own, fixed schedule for every arm
    ablations: bool = False
    ablation_steps: int = 300
    ablation_batch_size: int = 128
    ablation_seeds: list[int] = field(default_factory=list)  # empty: the training seeds
    # evaluation
    sts: bool = True
    sts_dir: str | None = None
    n_boot: int = 1000
    threads: int | None = None

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "MiniWorldConfig":
        """``default`` (the reproduction) or ``smoke`` (tiny: CI exercises every stage in seconds)."""
        if name not in PRESETS:
            from paraclip.registry import suggest

            close = suggest(name, list(PRESETS))
            raise ParaclipError(f"Unknown mini-world preset {name!r}."
                                + (f" Did you mean {close[0]!r}?" if close else "")
                                + f" Presets: {', '.join(PRESETS)}.")
        return dataclasses.replace(cls(**PRESETS[name]), **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "smoke": dict(n_train=96, n_eval=40, n_val=40, image_size=32, arch="paraclip-tiny", seeds=[0], baseline_steps=4,
                  baseline_batch_size=16, paraclip_steps=3, paraclip_batch_size=16, llm_paraclip_steps=3,
                  llm_paraclip_batch_size=16, ablation_steps=3, ablation_batch_size=16, n_boot=50, sts=False),
}


def default_root() -> Path:
    return cache_root() / "miniworld"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# -- progress ------------------------------------------------------------------------------------

class Progress:
    """Stage-level progress: a line per stage on stderr (CLI) and/or ``callback(done, total, message)``.

    Work is counted in stage weights; within a stage ``update(fraction)`` moves the total.
    """

    def __init__(self, callback: ProgressFn | None = None, verbose: bool = False):
        self.callback, self.verbose = callback, verbose
        self.total = 1.0
        self.done = 0.0
        self.current: tuple[str, float] | None = None

    def plan(self, weights: list[tuple[str, float]]) -> None:
        self.total = sum(w for _, w in weights) or 1.0
        self.done = 0.0

    def start(self, name: str, weight: float, message: str, index: int, count: int) -> None:
        self.current = (name, weight)
        if self.verbose:
            print(f"[{index}/{count}] {message}", file=sys.stderr, flush=True)
        self._emit(0.0, message)

    def update(self, fraction: float, message: str) -> None:
        self._emit(fraction, message)

    def finish(self, message: str) -> None:
        if self.current is not None:
            self.done += self.current[1]
        self.current = None
        self._emit(0.0, message)

    def _emit(self, fraction: float, message: str) -> None:
        if self.callback is None:
            return
        weight = self.current[1] if self.current else 0.0
        done = self.done + weight * max(0.0, min(1.0, fraction))
        self.callback(min(1000, int(1000 * done / self.total + 1e-6)), 1000, message)  # float sums: 0.9999…


# -- the run folder ----------------------------------------------------------------------------

class Run:
    """A reproduction's folder: stage markers, paths, and the stage runner."""

    def __init__(self, config: MiniWorldConfig, root: str | os.PathLike | None = None,
                 progress: Progress | None = None):
        self.config = config
        self.root = Path(root).expanduser() if root else default_root() / "default"
        self.progress = progress or Progress()
        self.fingerprints: dict[str, str] = {}

    # paths
    @property
    def world(self) -> Path:
        return self.root / "world"

    @property
    def gallery_dir(self) -> Path:
        return self.world / "eval-images"

    @property
    def val_gallery_dir(self) -> Path:
        return self.world / "val-images"

    @property
    def train_images(self) -> Path:
        return self.world / "train-images"

    @property
    def paraphrases(self) -> Path:
        return self.root / "data" / "paraphrases.jsonl"

    @property
    def evalsets(self) -> Path:
        return self.root / "evalsets"

    def run_dir(self, kind: str, seed: int) -> Path:
        return self.root / "runs" / f"{kind}-s{seed}"

    def results_dir(self, seed: int) -> Path:
        return self.root / "results" / f"seed{seed}"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    def marker(self, stage: str) -> Path:
        return self.root / "stages" / f"{stage}.json"

    def read_marker(self, stage: str) -> dict | None:
        path = self.marker(stage)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None

    def stage(self, name: str, fingerprint_parts: dict, outputs: list[Path], work: Callable[[], dict],
              index: int, count: int, weight: float, message: str) -> dict:
        """Run ``work`` unless a marker with the same fingerprint says it is done; returns its info."""
        fingerprint = _digest(fingerprint_parts)
        self.fingerprints[name] = fingerprint
        marker = self.read_marker(name)
        self.progress.start(name, weight, message, index, count)
        if marker is not None and marker.get("fingerprint") == fingerprint and all(p.exists() for p in outputs):
            self.progress.finish(f"{name}: done earlier (cached)")
            if self.progress.verbose:
                print(f"      cached ({marker.get('seconds', 0):.0f} s when it ran)", file=sys.stderr)
            return marker
        if marker is not None and marker.get("fingerprint") != fingerprint:
            for path in outputs:  # outputs of other settings: never mix them with this run's
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            self.marker(name).unlink(missing_ok=True)
        start, cpu_start, load_start = time.perf_counter(), _cpu_seconds(), _load()
        info = work() or {}
        # CPU time next to wall time: on a shared machine the wall time says little on its own
        info = {"stage": name, "fingerprint": fingerprint, "seconds": round(time.perf_counter() - start, 2),
                "cpu_seconds": round(_cpu_seconds() - cpu_start, 2), "load_before": load_start, "load_after": _load(),
                "threads": _threads(), "finished": time.time(), **info}
        atomic_write_text(self.marker(name), json.dumps(info, indent=1, default=str))
        self.progress.finish(f"{name}: done in {info['seconds']:.0f} s")
        return info


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (user + system)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _threads() -> int:
    import torch

    return torch.get_num_threads()


# -- stage: world --------------------------------------------------------------------------------

PARALLEL_RENDER_MIN = 2000  # below this many scenes, starting worker processes costs more than it saves
RENDER_CHUNK = 500


def _render_chunk(jobs: list) -> int:
    """Worker: render scenes and save each PNG (``jobs`` = [(scene, path)])."""
    for scene, path in jobs:
        scene.image().save(path)
    return len(jobs)


def build_world(run: Run) -> dict:
    """Render test (``eval``) scenes, then validation scenes, then training scenes; every split
    avoids the meanings of the splits drawn before it.

    Specs and layouts are drawn in order in this process (train scenes must avoid eval meanings);
    drawing the pixels, the slow part, is spread over the CPU cores for large worlds.
    """
    from paraclip.miniworld.world import iter_scenes

    cfg = run.config
    tmp = run.world.with_name("world.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    for folder in ("eval-images", "val-images", "train-images"):
        (tmp / folder).mkdir(parents=True)
    total = cfg.n_eval + cfg.n_val + cfg.n_train
    jobs: list = []

    def describe(scenes, folder: Path, jsonl: Path) -> set[str]:
        keys = set()
        with open(jsonl, "w", encoding="utf-8") as f:
            for scene in scenes:
                f.write(json.dumps(scene.record()) + "\n")
                keys.add(scene.spec.meaning_key())
                jobs.append((scene, folder / f"{scene.image_id}.png"))
        return keys

    eval_keys = describe(iter_scenes(cfg.world_seed, "eval", cfg.n_eval, cfg.image_size),
                         tmp / "eval-images", tmp / "eval.jsonl")
    val_keys = describe(iter_scenes(cfg.world_seed, "val", cfg.n_val, cfg.image_size, exclude=eval_keys),
                        tmp / "val-images", tmp / "val.jsonl")
    describe(iter_scenes(cfg.world_seed, "train", cfg.n_train, cfg.image_size, exclude=eval_keys | val_keys),
             tmp / "train-images", tmp / "train.jsonl")
    chunks = [jobs[i:i + RENDER_CHUNK] for i in range(0, len(jobs), RENDER_CHUNK)]
    workers = min(2, os.cpu_count() or 1) if total >= PARALLEL_RENDER_MIN else 1
    bar = None
    if run.progress.verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="rendering", unit="img", file=sys.stderr, dynamic_ncols=True)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        run.progress.update(done / total, f"rendering scenes {done}/{total}")
        if bar is not None:
            bar.update(n)

    try:
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: the parent may hold torch's thread pools, which do not survive a fork
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for n in pool.map(_render_chunk, chunks):
                    advance(n)
        else:
            for chunk in chunks:
                advance(_render_chunk(chunk))
    finally:
        if bar is not None:
            bar.close()
    for split in ("eval", "val"):
        with open(tmp / f"{split}-images" / "captions.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "caption", "image_id"])
            for rec in read_jsonl(tmp / f"{split}.jsonl"):
                writer.writerow([f"{rec['image_id']}.png", rec["caption"], rec["image_id"]])
    if run.world.exists():
        shutil.rmtree(run.world)
    tmp.rename(run.world)
    return {"n_train": cfg.n_train, "n_eval": cfg.n_eval, "n_val": cfg.n_val, "render_workers": workers}


def world_fingerprint(cfg: MiniWorldConfig) -> dict:
    return {"v": WORLD_VERSION, "seed": cfg.world_seed, "n_train": cfg.n_train, "n_eval": cfg.n_eval,
            "n_val": cfg.n_val, "size": cfg.image_size}


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def load_scenes(run: Run, split: str):
    """The split's scenes re-made from their specs (layouts come from the same per-scene streams)."""
    from paraclip.miniworld.world import SceneSpec

    return [(rec["image_id"], rec["caption"], SceneSpec.from_dict(rec["spec"]))
            for rec in read_jsonl(run.world / f"{split}.jsonl")]


# -- stage: paraphrases ----------------------------------------------------------------------------

def make_paraphrases(run: Run) -> dict:
    """The training JSONL in the paraphrasing engine's format, from the scene-aware rewriter."""
    from paraclip.miniworld.checker import check
    from paraclip.miniworld.rewriter import SceneRewriter

    rewriter = SceneRewriter(seed=run.config.rewriter_seed)
    records, rejected = [], 0
    scenes = load_scenes(run, "train")
    for index, (image_id, caption, spec) in enumerate(scenes):
        p1, p2 = rewriter.paraphrase(spec, image_id)
        ok = check(p1, spec).ok and check(p2, spec).ok
        rejected += not ok
        records.append({"index": index, "image_id": image_id, "caption": caption, "paraphrase_1": p1,
                        "paraphrase_2": p2, "status": "ok" if ok else "rejected",
                        "error": None if ok else "scene-spec check failed", "backend": rewriter.name,
                        "model": f"{rewriter.name}(seed={rewriter.seed})"})
    write_jsonl(run.paraphrases, records)
    return {"records": len(records), "rejected_by_checker": rejected}


# -- stage: evaluation sets ------------------------------------------------------------------------

def make_evalsets(run: Run) -> dict:
    from paraclip.miniworld.evalsets import write_evalsets

    return write_evalsets(run)


# -- stages: training --------------------------------------------------------------------------------

def _train(run: Run, config, label: str) -> dict:
    from paraclip.training import train

    def on_metrics(row: dict) -> None:
        if "loss" in row and config.steps:
            run.progress.update(row["step"] / config.steps, f"{label}: step {row['step']}/{config.steps} "
                                                            f"loss {row['loss']:.3f}")

    result = train(config, on_metrics=on_metrics, progress=run.progress.verbose)
    if not result.completed or result.checkpoint is None:
        raise ParaclipError(f"{label} stopped at step {result.steps} of {result.total_steps}; rerun to resume "
                            f"(checkpoints in {result.out_dir}).")
    return {"checkpoint": str(result.checkpoint), "steps": result.steps, "data_report": result.data_report}


def train_baseline(run: Run, seed: int) -> dict:
    from paraclip.training import TrainConfig

    cfg = run.config
    config = TrainConfig(
        model=cfg.arch, pretrained=None, data=str(run.world / "train.jsonl"), images=str(run.train_images),
        out_dir=str(run.run_dir("baseline", seed)), steps=cfg.baseline_steps, batch_size=cfg.baseline_batch_size,
        lr=cfg.baseline_lr, weight_decay=cfg.baseline_weight_decay, loss_preset="clip", freeze_image=False,
        seed=seed, validation=[], checkpoint_every=max(50, cfg.baseline_steps // 4), threads=cfg.threads,
        device="cpu")
    return _train(run, config, f"baseline seed {seed}")


def candidate_steps(steps: int, candidates: int) -> list[int]:
    """The evenly spaced steps whose checkpoints the validation world chooses among (the last is ``steps``)."""
    every = max(1, steps // max(1, candidates))
    return sorted({every * i for i in range(1, candidates) if every * i < steps} | {steps})


def train_paraclip(run: Run, seed: int, baseline_checkpoint: str, data: Path | None = None,
                   kind: str = "paraclip", steps: int | None = None, batch_size: int | None = None,
                   loss: str | None = None, keep_candidates: bool = False) -> dict:
    """Fine-tune the text encoder of ``baseline_checkpoint``; ``keep_candidates`` keeps the step
    checkpoints the validation world chooses among (``candidate_steps``)."""
    from paraclip.training import TrainConfig

    cfg = run.config
    steps = steps or cfg.paraclip_steps
    every, keep = max(50, steps // 3), 2
    if keep_candidates:
        grid = candidate_steps(steps, cfg.stop_candidates)
        every, keep = grid[0], len(grid) + 1
    config = TrainConfig(
        model=baseline_checkpoint, pretrained=None, data=str(data or run.paraphrases), images=str(run.train_images),
        out_dir=str(run.run_dir(kind, seed)), steps=steps, batch_size=batch_size or cfg.paraclip_batch_size,
        lr=cfg.paraclip_lr, weight_decay=cfg.paraclip_weight_decay, loss_preset=loss or cfg.paraclip_loss,
        freeze_image=True, seed=seed, validation=[], checkpoint_every=every, keep_checkpoints=keep,
        threads=cfg.threads, device="cpu", features_from=str(run.root / "image-features"))
    return _train(run, config, f"{kind} seed {seed}")


# -- the whole thing -------------------------------------------------------------------------------

@dataclass
class Reproduction:
    root: Path
    report: Path | None
    checkpoints: dict[str, dict[int, str]]
    gallery: Path
    seconds: float
    stages: dict[str, dict]


def reproduce(config: MiniWorldConfig | None = None, root: str | os.PathLike | None = None,
              progress: ProgressFn | None = None, verbose: bool = False, evaluate: bool = True,
              report_to: str | os.PathLike | None = None) -> Reproduction:
    """Run (or resume) every stage; returns where everything is. ``evaluate=False`` stops after training."""
    cfg = config or MiniWorldConfig()
    extra = sorted(set(cfg.ablation_seeds) - set(cfg.seeds))
    if cfg.ablations and extra:
        raise ParaclipError(f"ablation_seeds {extra} are not training seeds {cfg.seeds}: every ablation arm "
                            "fine-tunes that seed's baseline. Add them to --seeds or drop them.")
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    prog = Progress(progress, verbose)
    run = Run(cfg, root, prog)
    run.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run.root / "config.json", json.dumps(cfg.to_dict(), indent=1))
    start = time.perf_counter()
    plan = _plan(cfg, evaluate)
    prog.plan([(name, weight) for name, weight, _ in plan])
    count = len(plan)
    step = iter(range(1, count + 1))
    stages: dict[str, dict] = {}
    fp = run.fingerprints

    def do(name, parts, outputs, work, message):
        weight = next(w for n, w, _ in plan if n == name)
        stages[name] = run.stage(name, parts, outputs, work, next(step), count, weight, message)
        return stages[name]

    def skip(name, message):
        weight = next(w for n, w, _ in plan if n == name)
        prog.start(name, weight, f"{name}: skipped ({message})", next(step), count)
        prog.finish(f"{name}: skipped")

    do("world", world_fingerprint(cfg), [run.world], lambda: build_world(run),
       f"rendering {cfg.n_eval} test, {cfg.n_val} validation and {cfg.n_train} training scenes")
    do("paraphrases", {"v": REWRITER_VERSION, "world": fp["world"], "seed": cfg.rewriter_seed},
       [run.paraphrases], lambda: make_paraphrases(run), "two-step paraphrases of the training captions (rewriter)")
    do("evalsets", {"v": EVALSETS_VERSION, "world": fp["world"], "paraphrases": fp["paraphrases"]},
       [run.evalsets], lambda: make_evalsets(run), "held-out paraphrase pairs and swap pairs")
    checkpoints: dict[str, dict[int, str]] = {"baseline": {}, "paraclip": {}}
    for seed in cfg.seeds:
        info = do(f"baseline-s{seed}", {"world": fp["world"], "arch": cfg.arch, "steps": cfg.baseline_steps,
                                        "batch": cfg.baseline_batch_size, "lr": cfg.baseline_lr,
                                        "wd": cfg.baseline_weight_decay, "seed": seed},
                  [run.run_dir("baseline", seed)], lambda s=seed: train_baseline(run, s),
                  f"baseline CLIP from scratch, seed {seed} ({cfg.baseline_steps} steps)")
        checkpoints["baseline"][seed] = info["checkpoint"]
        info = do(f"paraclip-s{seed}", {"baseline": fp[f"baseline-s{seed}"], "paraphrases": fp["paraphrases"],
                                        "steps": cfg.paraclip_steps, "batch": cfg.paraclip_batch_size,
                                        "lr": cfg.paraclip_lr, "wd": cfg.paraclip_weight_decay,
                                        "loss": cfg.paraclip_loss, "seed": seed,
                                        "candidates": candidate_steps(cfg.paraclip_steps, cfg.stop_candidates)},
                  [run.run_dir("paraclip", seed)],
                  lambda s=seed, b=info["checkpoint"]: train_paraclip(run, s, b, keep_candidates=True),
                  f"ParaCLIP fine-tuning of the text encoder, seed {seed} ({cfg.paraclip_steps} steps)")
        checkpoints["paraclip"][seed] = info["checkpoint"]
    if cfg.llm_captions > 0:
        from paraclip.miniworld.llm_source import run_llm_stages

        run_llm_stages(run, do, skip, checkpoints)
    if cfg.ablations:
        from paraclip.miniworld.ablations import run_ablation_training

        arms = run_ablation_training(run, do, checkpoints)
    report = None
    if evaluate:
        from paraclip.miniworld.scoring import run_scoring_stages

        report = run_scoring_stages(run, do, checkpoints, arms if cfg.ablations else None, stages)
        if report_to:  # everything but the 5 MB figures.html with plotly inlined (figures-cdn.html is the same)
            dest = Path(report_to)
            dest.mkdir(parents=True, exist_ok=True)
            for item in run.report_dir.iterdir():
                if item.is_file() and item.name != "figures.html":
                    shutil.copy2(item, dest / item.name)
    return Reproduction(run.root, report, checkpoints, run.gallery_dir, time.perf_counter() - start, stages)


def paraclip_minutes(steps: int, batch_size: int) -> float:
    """Expected minutes of a ParaCLIP fine-tuning stage on 2 cores (600 x 256 took ~3.2 min): a progress weight."""
    return 3.2 * steps * batch_size / (600 * 256)


def _plan(cfg: MiniWorldConfig, evaluate: bool) -> list[tuple[str, float, str]]:
    """(stage, weight ~ expected minutes, description) in order."""
    plan = [("world", 1.5 * cfg.n_train / 24000, ""), ("paraphrases", 0.2, ""), ("evalsets", 0.1, "")]
    for seed in cfg.seeds:
        plan += [(f"baseline-s{seed}", 3.0 * cfg.baseline_steps * cfg.baseline_batch_size / (600 * 128), ""),
                 (f"paraclip-s{seed}", paraclip_minutes(cfg.paraclip_steps, cfg.paraclip_batch_size), "")]
    if cfg.llm_captions > 0:
        from paraclip.miniworld.llm_source import plan_llm_stages

        plan += plan_llm_stages(cfg)
    if cfg.ablations:
        from paraclip.miniworld.ablations import plan_ablation_stages

        plan += plan_ablation_stages(cfg)
    if evaluate:
        plan += [("select", 0.4 * len(cfg.seeds) * cfg.n_val / 1000, "")]
        plan += [(f"evaluate-s{seed}", 0.8, "") for seed in cfg.seeds]
        if cfg.ablations:
            from paraclip.miniworld.ablations import ARMS, ablation_seeds

            plan += [(f"abl-evaluate-s{seed}", 0.3 * (len(ARMS) + 1), "") for seed in ablation_seeds(cfg)]
        plan += [("report", 0.5 + 1.5 * cfg.ablations, "")]
    return plan


# -- the app's offline defaults ------------------------------------------------------------------------

def ensure_default_models(progress: ProgressFn | None = None, root: str | os.PathLike | None = None,
                          config: MiniWorldConfig | None = None) -> dict[str, str]:
    """The app's offline default models and gallery, built on first use and cached.

    Returns ``{"baseline": checkpoint, "paraclip": checkpoint, "gallery": folder}``: the seed-0
    baseline CLIP trained from scratch on the mini-world, its ParaCLIP fine-tuned version, and the
    held-out scenes as a gallery folder (``captions.csv`` inside; ``load_gallery`` reads it). They
    live in the same cached run as ``paraclip miniworld --reproduce`` (``$PARACLIP_CACHE/miniworld``),
    so whichever runs first builds them for the other.
    """
    cfg = config or MiniWorldConfig()
    cfg = dataclasses.replace(cfg, seeds=[cfg.seeds[0]])
    out = reproduce(cfg, root, progress=progress, evaluate=False)
    seed = cfg.seeds[0]
    return {"baseline": out.checkpoints["baseline"][seed], "paraclip": out.checkpoints["paraclip"][seed],
            "gallery": str(out.gallery)}


def default_gallery(root: str | os.PathLike | None = None, config: MiniWorldConfig | None = None):
    """The mini-world's held-out scenes as a :class:`~paraclip.data.galleries.Gallery`.

    Read from the run folder (the one ``ensure_default_models`` uses by default); rendered first
    if that folder has no world yet.
    """
    from paraclip.data.galleries import folder_gallery

    run = Run(config or MiniWorldConfig(), root)
    if not (run.gallery_dir / "captions.csv").is_file():
        run.stage("world", world_fingerprint(run.config), [run.world], lambda: build_world(run), 1, 1, 1.0,
                  "rendering the mini-world")
    return folder_gallery(run.gallery_dir, name="mini-world")
