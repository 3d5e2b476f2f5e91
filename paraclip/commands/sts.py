"""``paraclip sts``: Spearman on the paper's seven STS tasks for one model."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from paraclip.checks import AT_LEAST_1, check_output_file, device_arg, number_arg, score_range_arg

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
    parser.add_argument("--score-range", type=score_range_arg, default=None, metavar="LOW,HIGH",
                        help="gold-score scale of custom task files (default 0,5, the SemEval scale)")
    parser.add_argument("--out", default=None, help="write the results JSON here")
    parser.add_argument("--device", type=device_arg, default=None,
                        help="cpu, cuda, cuda:1 … (default: cuda if available)")
    parser.add_argument("--batch-size", type=number_arg(int, AT_LEAST_1), default=None, help="text batch size")


def run(args: argparse.Namespace) -> int:
    from paraclip.data.sts import PAPER_STS_TASKS, STS_TASKS
    from paraclip.evaluation.sts import sts_evaluator
    from paraclip.models import load_encoder

    out = check_output_file(args.out, "--out") if args.out else None  # before any work
    tasks = _parse_tasks(args.tasks, STS_TASKS, PAPER_STS_TASKS)
    # fail on missing or malformed data before loading a model
    evaluators = [sts_evaluator(t, args.data_dir, args.score_range) for t in tasks]
    for ev in evaluators:
        for note in ev.data_notes:
            print(f"note: {note}")
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
        for metric, why in res.notes.items():
            print(f"           {metric} undefined: {why}")
    print(format_table(results))
    if out is not None:
        save_or_rescue(results, out)
        print(f"wrote {out}")
    return 0


def save_or_rescue(results, path: Path) -> None:
    """Write the results JSON; if that fails (disk full, …) keep them elsewhere and say where."""
    from paraclip.errors import WriteError
    from paraclip.files import atomic_write_text
    from paraclip.results import results_json

    text = results_json(results)
    try:
        atomic_write_text(path, text)
        return
    except OSError as exc:
        problem = f"could not write {path} ({exc.strerror or exc})"
    rescue = Path(tempfile.gettempdir()) / f"paraclip-sts-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json"
    try:
        atomic_write_text(rescue, text)
        kept = f"they were written to {rescue} instead; move that file where you want it"
    except OSError:
        print(text)
        kept = "they are printed above as JSON (no file could be written); save that output"
    raise WriteError(f"{problem}. The results were computed and are not lost: {kept}.")


def _parse_tasks(spec, registry, default):
    from paraclip.data.sts import custom_task_file

    if not spec:
        return list(default)
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:  # ",," would otherwise evaluate nothing and exit 0
        from paraclip.errors import ParaclipError

        raise ParaclipError(f"--tasks {spec!r} names no task; give task names ({', '.join(default)}) or a pairs file.")
    return [part if custom_task_file(part) else registry.parse_list(part)[0] for part in parts]


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
