"""``paraclip sts``: Spearman on the paper's seven STS tasks for one model."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "Evaluate a model's text encoder on STS12-16, STS-B and SICK-R (Spearman x100)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="open_clip architecture (ViT-B-32), hf-hub:…, HF id, local folder, checkpoint file, "
                             "or all-MiniLM-L6-v2")
    parser.add_argument("--pretrained", default=None, help="open_clip pretrained tag (openai, …) or checkpoint path")
    parser.add_argument("--tasks", default=None,
                        help="comma-separated task names (default: the paper's seven); a path to a "
                             "CSV/TSV/JSONL of pairs is a custom task")
    parser.add_argument("--data-dir", default=None, help="folder laid out like the SemEval/SICK/STS-B releases")
    parser.add_argument("--out", default=None, help="write the results JSON here")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda if available)")
    parser.add_argument("--batch-size", type=int, default=None, help="text batch size")


def run(args: argparse.Namespace) -> int:
    from paraclip.data.sts import PAPER_STS_TASKS, STS_TASKS
    from paraclip.evaluation.sts import sts_evaluator
    from paraclip.models import load_encoder
    from paraclip.results import save_results

    tasks = _parse_tasks(args.tasks, STS_TASKS, PAPER_STS_TASKS)
    evaluators = [sts_evaluator(t, args.data_dir) for t in tasks]  # fail on missing data before loading a model
    start = time.perf_counter()
    encoder = load_encoder(args.model, args.pretrained, device=args.device)
    if args.batch_size:
        encoder.text_batch_size = args.batch_size
    print(f"loaded {encoder!r} in {time.perf_counter() - start:.1f}s")
    results = []
    for ev in evaluators:
        res = ev.evaluate(encoder, model=args.model, pretrained=args.pretrained)
        results.append(res)
        print(f"  {res.task:<8} spearman {res.metrics['spearman']:6.2f}  n={res.n}")
    print(format_table(results))
    if args.out:
        save_results(results, Path(args.out))
        print(f"wrote {args.out}")
    return 0


def _parse_tasks(spec, registry, default):
    if not spec:
        return list(default)
    names = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        names.append(part if Path(part).is_file() else registry.parse_list(part)[0])
    return names


def format_table(results) -> str:
    """Plain-text table: task, Spearman, Pearson, n, source; then the mean Spearman."""
    import math

    rows = [("task", "spearman", "pearson", "n", "source")]
    rows += [(r.task, f"{r.metrics['spearman']:.2f}", f"{r.metrics['pearson']:.2f}", str(r.n), r.source)
             for r in results]
    spearmans = [r.metrics["spearman"] for r in results if not math.isnan(r.metrics["spearman"])]
    if spearmans:
        rows.append(("mean", f"{sum(spearmans) / len(spearmans):.2f}", "", "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
