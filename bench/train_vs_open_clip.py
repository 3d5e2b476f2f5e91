"""Training throughput: `paraclip train` vs `open_clip_train`, side by side in one run.

Same model (a saved random-init checkpoint of the chosen architecture, loaded by both), same
synthetic data (PNG images + captions), same global batch, optimiser (AdamW, same lr / wd /
warmup / cosine), grad clipping and precision. Two modes:

* ``locked`` (the paper's setting): image tower frozen, one image–text loss for parity —
  ours with ``loss_preset: l1-only`` (image vs paraphrase_2) on cached image features,
  open_clip with ``--lock-image`` and the same text as the CSV caption.
* ``scratch`` (the mini-world's baseline pretraining): both towers train on image–caption
  pairs; ours decodes the images once into memory, open_clip decodes them every step.

Each tool runs as its own subprocess, alternating, ``--repeats`` times. Reported: median
samples/s over the steps after ``--skip`` warm-up steps (ours from metrics.jsonl, open_clip
from its per-step log line), wall time of the process, and peak RSS (largest process; for
open_clip the data-loading workers are separate processes, not added). Our one-time cost of
building the feature cache is reported separately.

    .venv/bin/python bench/train_vs_open_clip.py --model paraclip-mini --records 1024 --batch-size 64

Needs PyPI ``open_clip_torch[training]`` (for ``open_clip_train``: webdataset, braceexpand).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OPEN_CLIP_LAUNCH = ("import sys; from paraclip.models import register_project_configs; register_project_configs(); "
                    "from open_clip_train.main import main; main(sys.argv[1:])")
COLOURS = [(220, 30, 30), (30, 200, 40), (30, 60, 220), (230, 220, 30), (150, 40, 160), (240, 140, 20)]
NAMES = ["red", "green", "blue", "yellow", "purple", "orange"]
SHAPES = ["square", "circle", "bar", "cross"]


def make_data(root: Path, n: int, size: int) -> dict[str, Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    img_dir = root / "images"
    img_dir.mkdir(parents=True)
    rows = []
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        c, s = i % len(COLOURS), (i // len(COLOURS)) % len(SHAPES)
        img = rng.integers(200, 255, (size, size, 3), dtype=np.uint8)
        cy, cx, r = rng.integers(size // 4, 3 * size // 4, 2).tolist() + [size // 5]
        mask = [(abs(yy - cy) < r) & (abs(xx - cx) < r), (yy - cy) ** 2 + (xx - cx) ** 2 < r * r,
                abs(yy - cy) < r // 2, (abs(yy - cy) < r // 3) | (abs(xx - cx) < r // 3)][s]
        img[mask] = COLOURS[c]
        path = img_dir / f"{i:06d}.png"
        Image.fromarray(img).save(path)
        caption = f"a {NAMES[c]} {SHAPES[s]} at {cx} {cy} in picture {i}"
        para1 = f"picture {i} shows a {NAMES[c]} {SHAPES[s]} near {cx} {cy}"
        para2 = f"image number {i}: one {SHAPES[s]} coloured {NAMES[c]}, position {cx} {cy}"
        rows.append({"image_id": f"{i:06d}", "caption": caption, "paraphrase_1": para1, "paraphrase_2": para2,
                     "status": "ok"})
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name, key in (("para2.csv", "paraphrase_2"), ("captions.csv", "caption")):
        with open(root / name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["filepath", "title"])
            writer.writerows([str(img_dir / f"{r['image_id']}.png"), r[key]] for r in rows)
    return {"data": root / "data.jsonl", "images": img_dir, "para2_csv": root / "para2.csv",
            "caption_csv": root / "captions.csv"}


def save_base_checkpoint(model_name: str, path: Path) -> None:
    import torch

    from paraclip.models import load_encoder
    from paraclip.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    enc = load_encoder(model_name, device="cpu")
    save_checkpoint(path, enc.model.state_dict(), enc.arch)


def run_measured(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB of the process and its reaped children, stderr+stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    out = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"command failed: {' '.join(cmd)}\n{out[-3000:]}")
    return wall, usage.ru_maxrss / 1024, out


def ours(args, data, base: Path, out_dir: Path, cache: Path, mode: str, env) -> dict:
    import yaml

    cfg = {
        "model": args.model, "pretrained": str(base), "data": str(data["data"]), "images": str(data["images"]),
        "features_from": str(cache), "out_dir": str(out_dir), "epochs": 1, "batch_size": args.batch_size,
        "lr": args.lr, "warmup": args.warmup, "weight_decay": 0.2, "grad_clip": 1.0, "checkpoint_every": 0,
        "validation": [], "device": "cpu", "precision": "fp32", "seed": 0,
        "loss_preset": "l1-only" if mode == "locked" else "clip", "freeze_image": mode == "locked",
    }
    cfg_path = out_dir.with_suffix(".yaml")
    cfg_path.write_text(yaml.safe_dump(cfg))
    wall, rss, _ = run_measured([sys.executable, "-m", "paraclip.cli", "train", "--config", str(cfg_path)], env)
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["samples_per_s"] for r in rows if "loss" in r][args.skip:]
    return {"samples_per_s": statistics.median(speeds), "wall_s": wall, "peak_rss_mb": rss, "steps": len(rows)}


def theirs(args, data, base: Path, logs: Path, mode: str, env) -> dict:
    cmd = [sys.executable, "-c", OPEN_CLIP_LAUNCH,
           "--train-data", str(data["para2_csv"] if mode == "locked" else data["caption_csv"]),
           "--dataset-type", "csv", "--csv-separator", ",", "--csv-img-key", "filepath", "--csv-caption-key", "title",
           "--model", args.model, "--pretrained", str(base), "--batch-size", str(args.batch_size),
           "--epochs", "1", "--lr", str(args.lr), "--wd", "0.2", "--warmup", str(args.warmup),
           "--grad-clip-norm", "1.0", "--precision", "fp32", "--device", "cpu", "--workers", str(args.workers),
           "--logs", str(logs), "--name", "bench", "--log-every-n-steps", "1", "--save-frequency", "0",
           "--report-to", "", "--seed", "0"]
    if mode == "locked":
        cmd.append("--lock-image")
    wall, rss, out = run_measured(cmd, env)
    speeds = [float(m) for m in re.findall(r"Batch \(t\): [0-9.]+, ([0-9.]+)/s,", out)][args.skip:]
    if not speeds:
        raise RuntimeError(f"no throughput lines in open_clip_train's log:\n{out[-3000:]}")
    return {"samples_per_s": statistics.median(speeds), "wall_s": wall, "peak_rss_mb": rss, "steps": len(speeds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="paraclip-mini")
    parser.add_argument("--records", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip", type=int, default=3, help="warm-up steps left out of the median")
    parser.add_argument("--workers", type=int, default=1, help="open_clip_train data-loading workers")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for both (OMP_NUM_THREADS)")
    parser.add_argument("--modes", default="locked,scratch")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    from paraclip.models.loading import register_project_configs

    register_project_configs()
    import open_clip

    image_size = open_clip.get_model_config(args.model)["vision_cfg"]["image_size"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(REPO),
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    results: dict = {"config": vars(args), "image_size": image_size}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        tmp = Path(tmp)
        data = make_data(tmp / "data", args.records, image_size)
        base = tmp / "base.pt"
        save_base_checkpoint(args.model, base)
        cache = tmp / "features"
        for mode in args.modes.split(","):
            if mode == "locked":
                first = ours(args, data, base, tmp / "ours-cache-build", cache, mode, env)
                results["ours_first_run_wall_s_with_cache_build"] = first["wall_s"]
            runs = {"ours": [], "open_clip": []}
            for r in range(args.repeats):
                runs["ours"].append(ours(args, data, base, tmp / f"ours-{mode}-{r}", cache, mode, env))
                runs["open_clip"].append(theirs(args, data, base, tmp / f"oc-{mode}-{r}", mode, env))
                print(f"[{mode} {r + 1}/{args.repeats}] ours {runs['ours'][-1]['samples_per_s']:.1f}/s, "
                      f"open_clip {runs['open_clip'][-1]['samples_per_s']:.1f}/s", flush=True)
            summary = {tool: {k: statistics.median(run[k] for run in rs) for k in ("samples_per_s", "wall_s",
                                                                                   "peak_rss_mb")}
                       for tool, rs in runs.items()}
            summary["ratio_samples_per_s"] = summary["ours"]["samples_per_s"] / summary["open_clip"]["samples_per_s"]
            summary["ratio_wall"] = summary["open_clip"]["wall_s"] / summary["ours"]["wall_s"]
            summary["runs"] = runs
            results[mode] = summary
    print()
    print(f"model {args.model} ({image_size}px), {args.records} records, global batch {args.batch_size}, "
          f"{args.threads} threads, open_clip workers {args.workers}, {args.repeats} repeats (medians)")
    print(f"{'mode':8} {'tool':10} {'samples/s':>10} {'wall s':>8} {'peak RSS MB':>12}")
    for mode in args.modes.split(","):
        s = results[mode]
        for tool in ("ours", "open_clip"):
            print(f"{mode:8} {tool:10} {s[tool]['samples_per_s']:10.1f} {s[tool]['wall_s']:8.1f} "
                  f"{s[tool]['peak_rss_mb']:12.0f}")
        print(f"{mode:8} ratio      {s['ratio_samples_per_s']:9.2f}x  (wall {s['ratio_wall']:.2f}x)")
    if "ours_first_run_wall_s_with_cache_build" in results:
        print(f"ours, first locked run incl. building the feature cache: "
              f"{results['ours_first_run_wall_s_with_cache_build']:.1f} s wall")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
