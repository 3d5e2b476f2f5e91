"""``paraclip paraphrase``: two-step paraphrasing of a caption file into resumable JSONL.

    paraclip paraphrase captions.txt --image-ids img_ids.txt --out para.jsonl              # local, offline
    paraclip paraphrase data.csv --out para.jsonl --backend openai --model gpt-4o-mini --concurrency 32
    paraclip paraphrase --setup-llm-pack                                                   # offline model pack

Rerunning the same command resumes: finished records are kept and only missing ones are done.
Prompts and sampling beyond the presets are set in a YAML file (``--config``) with
:class:`ParaphraseConfig` fields.
"""

from __future__ import annotations

import argparse
import warnings

from paraclip.errors import DataError

HELP = "Paraphrase captions twice with an LLM (the ParaCLIP method); resumable JSONL output."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="?", help="captions: .txt (one per line), .csv/.tsv/.jsonl/.json/.parquet, "
                                                 "or hf://DATASET[:SPLIT]")
    parser.add_argument("--out", help="output JSONL (appended to and resumed)")
    parser.add_argument("--limit", type=int, help="paraphrase only the first N kept captions")
    parser.add_argument("--preset", help="prompt preset: paper | small-model (default: paper for API models, "
                                         "small-model for local models under 3B)")
    parser.add_argument("--config", help="YAML file with ParaphraseConfig fields (prompts, sampling, filters, ...)")

    model = parser.add_argument_group("backend")
    model.add_argument("--backend", default="local", help="openai (any OpenAI-compatible server) | local "
                                                          "(default; offline)")
    model.add_argument("--model", help="API model name, or a local directory / .gguf file / HF model id "
                                       "(local default: the offline pack, else SmolLM2)")
    model.add_argument("--base-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    model.add_argument("--api-key-env", default="OPENAI_API_KEY",
                       help="name of the environment variable holding the API key (the key is never printed)")
    model.add_argument("--concurrency", type=int, help="requests in flight (API) / batch size (local)")
    model.add_argument("--timeout", type=float, help="per-request timeout in seconds (API)")
    model.add_argument("--max-retries", type=int, help="retries per request on 429/5xx/timeouts (API)")
    model.add_argument("--device", help="local: cpu, cuda, ...")
    model.add_argument("--dtype", help="local: auto (bf16), fp32, fp16")
    model.add_argument("--threads", type=int, help="local: CPU threads for torch")

    data = parser.add_argument_group("input")
    data.add_argument("--caption-column", help="caption column / field (default: caption)")
    data.add_argument("--image-id-column", help="image-id column / field (default: image_id)")
    data.add_argument("--image-ids", help="text input: parallel file with one image id per line (as in the paper)")
    data.add_argument("--skip-bad-lines", action="store_true", help="report and skip malformed input lines")

    run = parser.add_argument_group("run")
    run.add_argument("--no-cache", action="store_true", help="do not read or write the request cache")
    run.add_argument("--retry-failed", action="store_true", help="redo records that failed in an earlier run")
    run.add_argument("--similarity", action="store_true",
                     help="add cosine similarity under all-MiniLM-L6-v2 to the quality signals")
    run.add_argument("--min-similarity", type=float,
                     help="mark records below this similarity as filtered (a filter, not a correctness check)")
    run.add_argument("--drop-changed", action="store_true",
                     help="mark records whose paraphrase changed the caption's meaning (quality.meaning_changed) as "
                          "filtered, so training skips them; on a finished output, re-marks its records")
    run.add_argument("--setup-llm-pack", action="store_true",
                     help="download, join and verify the offline LLM pack (Qwen2.5-Coder-1.5B, 1.1 GB) and exit")


def _config(args):
    from paraclip.paraphrase import ParaphraseConfig

    config = ParaphraseConfig.from_yaml(args.config) if args.config else ParaphraseConfig()
    overrides = {
        "preset": args.preset, "limit": args.limit, "caption_column": args.caption_column,
        "image_id_column": args.image_id_column, "image_ids_path": args.image_ids,
        "min_similarity": args.min_similarity,
    }
    for key, value in overrides.items():
        if value is not None:
            setattr(config, key, value)
    config.skip_bad_lines = config.skip_bad_lines or args.skip_bad_lines
    config.retry_failed = config.retry_failed or args.retry_failed
    config.similarity = config.similarity or args.similarity
    config.drop_changed = config.drop_changed or args.drop_changed
    config.use_cache = config.use_cache and not args.no_cache
    return config


def _backend(args):
    from paraclip.paraphrase import make_backend

    if args.backend.lower() in ("openai", "api"):
        return make_backend(args.backend, model=args.model, base_url=args.base_url, api_key_env=args.api_key_env,
                            concurrency=args.concurrency, timeout=args.timeout, max_retries=args.max_retries)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend = make_backend(args.backend, model=args.model, batch_size=args.concurrency, device=args.device,
                               dtype=args.dtype, threads=args.threads)
    for w in caught:
        print(f"WARNING: {w.message}")
    return backend


def run(args) -> int:
    from tqdm import tqdm

    from paraclip.paraphrase import run_paraphrasing, setup_llm_pack

    if args.setup_llm_pack:
        setup_llm_pack()
        if not args.input:
            return 0
    if not args.input or not args.out:
        raise DataError("give an INPUT file and --out OUT.jsonl (or only --setup-llm-pack).")
    config = _config(args)
    backend = _backend(args)
    bar = None

    def progress(stats):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=stats["total"], initial=stats["done"] - 1, unit="caption", dynamic_ncols=True)
        bar.update(1)
        bar.set_postfix(ok=stats["ok"], failed=stats["failed"], cached=stats["cached_requests"],
                        tokens=stats["tokens"], refresh=False)

    try:
        summary = run_paraphrasing(args.input, args.out, backend, config, progress=progress)
    finally:
        if bar is not None:
            bar.close()
        backend.close()
    print(format_summary(summary))
    return 0 if summary["complete"] else 1


def format_summary(s: dict) -> str:
    lines = [
        f"input: {s['input']} ({s['input_captions']} captions; {s['filtered_by_length']} filtered by length "
        f"(paper: 1 < words <= 15); {s['skipped_bad_lines']} bad lines skipped)",
        f"output: {s['out']}: {s['done']}/{s['total']} records ({s['resumed']} from before, {s['written']} new): "
        f"{s['ok']} ok, {s['failed']} failed, {s['filtered']} filtered",
        f"requests: {s['requests']} sent, {s['cached_requests']} from cache; tokens: {s['tokens']}; "
        f"{s['records_per_s']:.2f} records/s",
    ]
    for reason, n in sorted(s["failure_reasons"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n} x {reason}")
    for msg in s["skipped_messages"]:
        lines.append(f"  skipped: {msg}")
    if s["failed"]:
        lines.append("rerun with --retry-failed to try the failed records again.")
    if not s["complete"]:
        lines.append("not complete: rerun the same command to resume.")
    return "\n".join(lines)
