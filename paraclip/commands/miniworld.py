"""``paraclip miniworld``: reproduce the paper's effect end to end offline, on the mini-world."""

from __future__ import annotations

import argparse
import json
import sys

from paraclip.checks import Bounds, number_arg
from paraclip.settings import number_option

HELP = "mini-world: train a CLIP from scratch, ParaCLIP-fine-tune it and report, offline on CPU"


def _config_class():
    from paraclip.miniworld.config import MiniWorldConfig  # the options' ranges are its fields'

    return MiniWorldConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--reproduce", action="store_true",
                      help="run (or resume) every stage: world, baseline CLIP, paraphrases, ParaCLIP, evaluation, "
                           "report")
    what.add_argument("--defaults", action="store_true",
                      help="build (or find) the app's offline default models and gallery and print their paths")
    what.add_argument("--export-assets", nargs="?", const="assets", metavar="DIR",
                      help="write the shipped assets folder (default ./assets): the seed-0 default models as fp16 "
                           "safetensors, the gallery, pair sets, examples and manifest.json (trains first if needed)")
    what.add_argument("--sample", type=number_arg(int, Bounds(1, 10_000)), metavar="N",
                      help="print N scenes' captions with their two-step paraphrases (and save images with --out)")
    parser.add_argument("--out", metavar="DIR",
                        help="run folder (default: $PARACLIP_CACHE/miniworld/<preset>); rerun to resume")
    parser.add_argument("--preset", default="default",
                        help="default (one seed, ~25 min on 2 idle cores), full (the committed report: 3 seeds, a "
                             "learning-rate grid, the ablations; ~2 h) or smoke (seconds)")
    parser.add_argument("--seeds", help="comma-separated training seeds (default 0,1,2)")
    parser.add_argument("--threads", type=number_option(_config_class, "threads"), help="torch CPU threads (on a busy machine 1 can be much faster)")
    parser.add_argument("--llm-captions", type=number_option(_config_class, "llm_captions"), metavar="N",
                        help="also paraphrase N training captions with the offline LLM and compare (0 = off)")
    parser.add_argument("--ablations", action=argparse.BooleanOptionalAction, default=None,
                        help="also train and score the paper's loss ablation (each term dropped / alone) on its own "
                             "schedule (ablation_steps x ablation_batch_size; about 4 min per seed on 2 idle cores); "
                             "--no-ablations turns them off in a preset that has them (full)")
    parser.add_argument("--report-to", metavar="DIR", help="also copy the report files into DIR")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a MiniWorldConfig field, e.g. --set baseline_steps=800 (repeatable)")


def _config(args):
    """The preset, then ``--set`` values, then the options given (each overrides the preset both ways:
    ``--no-ablations`` turns off the full preset's ablations); every value is checked here, naming the
    option or key."""
    from paraclip.errors import ConfigError
    from paraclip.miniworld.config import MiniWorldConfig
    from paraclip.settings import check_keys, read_settings

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with KEY a MiniWorldConfig field, e.g. "
                              f"--set baseline_steps=800.")
        check_keys(MiniWorldConfig, [key], f"--set {item!r}", kind="mini-world setting")
        try:
            overrides[key] = json.loads(value)
        except (ValueError, RecursionError):  # not JSON (or absurdly nested / long): taken as text
            overrides[key] = value
    if args.seeds is not None:  # an empty list is refused by the config, not taken as the default
        try:
            overrides["seeds"] = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 0,1,2") from None
    flags = {"seeds": "--seeds"} if args.seeds is not None else {}
    for key, flag in (("threads", "--threads"), ("llm_captions", "--llm-captions"), ("ablations", "--ablations")):
        if getattr(args, key) is not None:
            overrides[key], flags[key] = getattr(args, key), flag
    sets = {key: f"--set {key}" for key in overrides if key not in flags}
    return MiniWorldConfig.preset(args.preset, **read_settings(MiniWorldConfig, overrides, flags={**sets, **flags},
                                                               kind="mini-world setting"))


def run(args) -> int:
    from paraclip.miniworld.config import default_root
    from paraclip.miniworld.pipeline import ensure_default_models, reproduce

    from paraclip.checks import check_output_dir

    config = _config(args) if args.sample is None else None  # bad settings: refused before a folder is made
    # a file where an output folder goes, or no permission: say so (exit 2) before any work, not after training
    for option, folder in (("--out", args.out), ("--export-assets", args.export_assets),
                           ("--report-to", args.report_to)):
        if folder:
            check_output_dir(folder, option)
    if args.sample is not None:
        return _sample(args)
    root = args.out or default_root() / args.preset
    if args.export_assets:
        return _export_assets(args.export_assets, config, root)
    if args.defaults:
        paths = ensure_default_models(root=root, config=config)
        for key, value in paths.items():
            print(f"{key}: {value}")
        return 0
    out = reproduce(config, root, verbose=True, report_to=args.report_to)
    print(f"\nfinished in {out.seconds / 60:.1f} min; run folder {out.root}")
    if out.report is not None:
        info = out.stages.get("report", {})
        print(f"report: {out.report}")
        brief = {("mw-paraphrase-heldout", "AO@10"), ("mw-paraphrase-canonical", "AO@10"), ("mw-retrieval", "t2i_R@1")}
        for h in info.get("headline") or []:
            if (h["task"], h["metric"]) in brief:
                print(f"ParaCLIP − {h['baseline']}: {h['task']} {h['metric']} {h['delta']:+.1f} → {h['verdict']}")
        print(f"against the vocabulary-blind baseline, target effect (judged on the item-level CI bounds): {info.get('verdict', '?')}; "
              f"on the seed-level CI bounds: {info.get('verdict_seeds', '?')}")
        for c in info.get("criteria", []):
            print(f"  {c['verdict']:<26} {c['criterion']}: {c['delta']:+.1f} item CI [{c['ci_low']:+.1f}, "
                  f"{c['ci_high']:+.1f}], seed CI [{c['seed_ci_low']:+.1f}, {c['seed_ci_high']:+.1f}]")
    return 0


def _export_assets(dest: str, config, root) -> int:
    from tqdm.auto import tqdm

    from paraclip.miniworld.assets import export_assets

    with tqdm(total=1000, desc="seed-0 defaults", unit="‰", file=sys.stderr, dynamic_ncols=True) as bar:
        def progress(done: int, total: int, message: str) -> None:
            bar.n = int(1000 * done / max(total, 1))
            bar.set_postfix_str(message[:60], refresh=True)

        manifest = export_assets(dest, config, root, progress=progress)
    size = sum(entry["size"] for entry in manifest["files"].values())
    print(f"wrote {len(manifest['files'])} files, {size / 1e6:.1f} MB, into {dest}")
    for model, sets in manifest["metrics"].items():
        print(f"  {model}: " + "; ".join(f"{name} AO@10 {m['AO@10']:.1f} JS@10 {m['JS@10']:.1f} (n={m['n']})"
                                          for name, m in sets.items()))
    return 0


def _sample(args) -> int:
    from pathlib import Path

    from paraclip.miniworld.rewriter import SceneRewriter
    from paraclip.miniworld.world import iter_scenes

    rewriter = SceneRewriter()
    folder = Path(args.out) if args.out else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    for scene in iter_scenes(0, "sample", args.sample):
        p1, p2 = rewriter.paraphrase(scene.spec, scene.image_id)
        print(f"{scene.image_id}: {scene.caption}\n    1: {p1}\n    2: {p2}")
        if folder:
            scene.image().save(folder / f"{scene.image_id}.png")
    if folder:
        print(f"images in {folder}", file=sys.stderr)
    return 0
