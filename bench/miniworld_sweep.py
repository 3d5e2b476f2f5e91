"""Sweep ParaCLIP fine-tuning settings on a finished mini-world run (what was tried for issue 6).

Reuses the run's world, evaluation sets and seed-0 baseline; trains one ParaCLIP text encoder per
setting (into ``<run>/sweep/``, cached) and prints the target metrics side by side:

    .venv/bin/python bench/miniworld_sweep.py --run ~/.cache/paraclip/miniworld/default \\
        --variant lr=5e-4,steps=300 --variant lr=2e-4,steps=300 --variant lr=1e-4,steps=300

Each variant is ``key=value`` pairs of MiniWorldConfig fields (paraclip_ prefix optional).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ALIASES = {"lr": "lr_grid", "steps": "paraclip_steps", "batch": "paraclip_batch_size", "loss": "paraclip_loss",
           "wd": "paraclip_weight_decay"}


def parse_variant(text: str) -> dict:
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        key = ALIASES.get(key.strip(), key.strip())
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
        if key == "lr_grid" and not isinstance(out[key], list):  # one rate: the run's first (and only) one
            out[key] = [out[key]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a run folder of `paraclip miniworld --reproduce`")
    parser.add_argument("--variant", action="append", required=True, help="e.g. lr=2e-4,steps=300")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import torch

    from paraclip.miniworld.config import MiniWorldConfig
    from paraclip.miniworld.runner import Run
    from paraclip.miniworld.stages import train_paraclip
    from paraclip.miniworld.tasks import build_tasks
    from paraclip.models import load_encoder

    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(args.run).expanduser()
    base_cfg = MiniWorldConfig(**json.loads((root / "config.json").read_text()))
    baseline = root / "runs" / f"baseline-s{args.seed}" / "final.pt"
    rows = []
    for text in ["baseline"] + args.variant:
        if text == "baseline":
            checkpoint, seconds = baseline, 0.0
        else:
            cfg = dataclasses.replace(base_cfg, **parse_variant(text), threads=args.threads)
            run = Run(cfg, root)
            kind = "sweep/" + text.replace("=", "").replace(",", "_")
            start = time.perf_counter()
            checkpoint = Path(train_paraclip(run, args.seed, str(baseline), kind=kind)["checkpoint"])
            seconds = time.perf_counter() - start
        evaluators, _ = build_tasks(Run(base_cfg, root))
        encoder = load_encoder(str(checkpoint), device="cpu")
        metrics = {}
        for ev in evaluators:
            if ev.name.startswith("mw-"):
                metrics[ev.name] = ev(encoder)
        rows.append((text, seconds, metrics))
        print(f"{text:<40} {seconds:7.0f}s  " + _line(metrics), flush=True)
    print("\nsetting                                   train s  " + _header())
    for text, seconds, metrics in rows:
        print(f"{text:<40} {seconds:7.0f}s  " + _line(metrics))


COLUMNS = [("mw-paraphrase-in-vocab", "AO@10"), ("mw-paraphrase-in-vocab", "JS@10"), ("mw-paraphrase-oov", "AO@10"),
           ("mw-retrieval", "t2i_R@1"), ("mw-relation-swap", "macro_accuracy"),
           ("mw-attribute-swap", "macro_accuracy")]


def _header() -> str:
    return "  ".join(f"{t.replace('mw-', '')[:12]}:{m[:8]}" for t, m in COLUMNS)


def _line(metrics: dict) -> str:
    return "  ".join(f"{metrics.get(t, {}).get(m, float('nan')):>21.1f}" for t, m in COLUMNS)


if __name__ == "__main__":
    main()
