"""Print every stage of a mini-world reproduction with its fingerprint and the parts it is made of,
without running anything; with ``--compare RUN_DIR``, say for each stage whether that run folder's
marker (``RUN_DIR/stages/NAME.json``, only read) holds the same fingerprint, i.e. whether
``paraclip miniworld --reproduce`` would reuse it.

    python scripts/miniworld_fingerprints.py --preset default --set ablations=true --set ablation_seeds=[0] \\
        --compare ~/.cache/paraclip/miniworld/default
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override a MiniWorldConfig field, e.g. --set seeds=[0,1] (repeatable)")
    parser.add_argument("--no-evaluate", action="store_true", help="the stages of evaluate=False (the app's defaults)")
    parser.add_argument("--compare", metavar="RUN_DIR", help="a run folder whose stage markers to compare with")
    args = parser.parse_args()

    from paraclip.miniworld.config import MiniWorldConfig
    from paraclip.miniworld.pipeline import planned_fingerprints
    from paraclip.miniworld.runner import Run

    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    config = MiniWorldConfig.preset(args.preset, **overrides)
    run_dir = Path(args.compare).expanduser() if args.compare else None
    planned = planned_fingerprints(Run(config, run_dir or "."), evaluate=not args.no_evaluate)
    for name, (fingerprint, parts) in planned.items():
        verdict = ""
        if run_dir is not None:
            marker = run_dir / "stages" / f"{name}.json"
            found = json.loads(marker.read_text()).get("fingerprint") if marker.is_file() else None
            verdict = "no marker  " if found is None else ("same       " if found == fingerprint else "DIFFERS    ")
        print(f"{verdict}{name:<22} {fingerprint} {json.dumps(parts, sort_keys=True, default=str)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
