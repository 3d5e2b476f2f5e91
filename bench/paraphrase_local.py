"""Local paraphrasing runtimes side by side: llama.cpp (the GGUF as is) vs transformers (de-quantised).

Every setting runs in its own cold process (as a user's first ``paraclip paraphrase``
would) over the same captions, both steps, the engine's default prompts and sampling for
the model, no request cache. Printed per setting: wall time of the whole process, model
load time, run time, records/s, peak RSS of the process, and how many records came out ok.
Transformers runs twice: the first use de-quantises the GGUF into a cached bf16 copy (a
fresh cache), the second reads that copy. llama.cpp runs once per ``--parallel`` value
(parallel sequences in one batch). Medians over ``--repeats``; ratios against transformers'
later-use run.

    .venv/bin/python bench/paraphrase_local.py --model pack --captions 3     # the offline pack (1.5B)
    .venv/bin/python bench/paraphrase_local.py --model smollm2 --captions 16 --parallel 1,2,4
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CAPTIONS = [
    "a dog runs along the beach", "two men playing chess in a park", "a red car parked next to a building",
    "a bowl of fruit on a wooden table", "children flying kites on a windy hill", "a cat sleeping on a sofa",
    "a plate of pasta with tomato sauce", "a train crossing a bridge over a river", "a woman reading a book in bed",
    "three boats floating on a calm lake", "a boy kicking a football on grass", "a bird perched on a wire",
    "a bicycle leaning against a yellow wall", "people waiting at a bus stop", "a snowy mountain under blue sky",
    "a chef cutting vegetables in a kitchen",
]


def child(args) -> None:
    """One cold run: load the model, paraphrase, print a JSON line of timings."""
    from paraclip.paraphrase import ParaphraseConfig, make_backend, run_paraphrasing

    captions = (CAPTIONS * (args.captions // len(CAPTIONS) + 1))[: args.captions]
    t0 = time.monotonic()
    options = {"threads": args.threads}
    if args.child == "llama.cpp":
        options["parallel"] = args.parallel
    else:
        options["batch_size"] = args.parallel
    backend = make_backend(args.child, model=args.model, **options)
    load_s = time.monotonic() - t0
    first = []
    config = ParaphraseConfig(use_cache=False, concurrency=args.parallel)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        summary = run_paraphrasing(captions, Path(tmp) / "o.jsonl", backend, config,
                                   progress=lambda s: first.append(time.monotonic()) if s["event"] == "record"
                                   and not first else None)
        run_s = time.monotonic() - start
    backend.close()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # this process's own peak (KiB on Linux)
    print("RESULT " + json.dumps({
        "peak_rss_gb": peak_kb * 1024 / 1e9, "load_s": load_s, "run_s": run_s,
        "first_record_s": first[0] - t0 if first else None,
        "ok": summary["ok"], "records": summary["done"], "tokens": summary["tokens"]}))


def cold_run(args, runtime: str, parallel: int, cache: str) -> dict:
    cmd = [sys.executable, __file__, "--child", runtime, "--model", args.model_path, "--captions", str(args.captions),
           "--threads", str(args.threads), "--parallel", str(parallel)]
    env = dict(os.environ, PARACLIP_CACHE=cache, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.monotonic() - start
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{runtime} run failed (exit {proc.returncode}):\n{err[-2000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result.update(wall_s=wall)
    return result


def median_of(runs: list[dict]) -> dict:
    keys = ("wall_s", "load_s", "run_s", "first_record_s", "peak_rss_gb", "ok", "records", "tokens")
    return {k: statistics.median(r[k] for r in runs) if all(r[k] is not None for r in runs) else None for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="smollm2 | pack | a .gguf path")
    parser.add_argument("--captions", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--parallel", default="1,4", help="llama.cpp parallel sequences to try (comma list)")
    parser.add_argument("--transformers-batch", type=int, default=8, help="transformers batch size")
    parser.add_argument("--runtimes", default="llama.cpp,transformers")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.parallel = int(args.parallel)
        return child(args)

    from paraclip.paraphrase.local.pack import installed_pack, smollm2_path

    path = {"smollm2": smollm2_path(), "pack": installed_pack()}.get(args.model, args.model)
    if path is None:
        sys.exit(f"model {args.model!r} is not installed (pack: `paraclip paraphrase --setup-llm-pack`)")
    args.model_path = str(path)
    load = os.getloadavg()
    print(f"model {Path(path).name}; {args.captions} captions x 2 steps; {args.threads} threads; "
          f"load average {load[0]:.1f} at start")
    rows = []
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        if "transformers" in runtimes:
            first = [cold_run(args, "transformers", args.transformers_batch, f"{tmp}/fresh{i}")
                     for i in range(args.repeats)]
            rows.append(("transformers, first use (de-quantise)", median_of(first)))
            later = [cold_run(args, "transformers", args.transformers_batch, f"{tmp}/fresh0")
                     for _ in range(args.repeats)]
            rows.append(("transformers, later use", median_of(later)))
        if "llama.cpp" in runtimes:
            for parallel in [int(p) for p in args.parallel.split(",")]:
                runs = [cold_run(args, "llama.cpp", parallel, f"{tmp}/llama") for _ in range(args.repeats)]
                rows.append((f"llama.cpp, {parallel} parallel", median_of(runs)))
    print(f"{'setting':40s} {'wall s':>7s} {'load s':>7s} {'run s':>7s} {'rec/s':>6s} {'peak GB':>8s} {'ok':>5s}")
    for label, r in rows:
        rate = r["records"] / r["run_s"] if r["run_s"] else 0.0
        peak = f"{r['peak_rss_gb']:.2f}" if r["peak_rss_gb"] else "?"
        print(f"{label:40s} {r['wall_s']:7.1f} {r['load_s']:7.1f} {r['run_s']:7.1f} {rate:6.3f} {peak:>8s} "
              f"{r['ok']:.0f}/{r['records']:.0f}")
    base = dict(rows).get("transformers, later use")
    if base:
        for label, r in rows:
            if label.startswith("llama.cpp"):
                print(f"{label}: {base['wall_s'] / r['wall_s']:.2f}x faster cold process, "
                      f"{base['run_s'] / r['run_s']:.2f}x records/s vs transformers (later use)")
    print(f"load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
