"""``paraclip paraphrase``: two-step paraphrasing of a caption file into resumable JSONL.

    paraclip paraphrase captions.txt --image-ids img_ids.txt --out para.jsonl              # local, offline
    paraclip paraphrase data.csv --out para.jsonl --backend openai --model gpt-4o-mini --concurrency 32
    paraclip paraphrase data.csv --out para.jsonl --backend openai-batch --model gpt-4o-mini  # Batch API, 50 %
    paraclip paraphrase --setup-llm-pack                                                   # offline model pack

Rerunning the same command resumes: finished records are kept and only missing ones are done
(with the batch backend: batches already submitted are picked up, never submitted twice).
Prompts and sampling beyond the presets are set in a YAML file (``--config``) with
:class:`ParaphraseConfig` fields. Every numeric option is checked at parse time; the input,
the config and the output path are checked before a model is loaded or a request is sent.
``--dry-run`` plans with any backend: nothing is sent, no model is loaded, no record is written.
Exit status: 0 when the output is complete and holds at least one paraphrase (or after a dry
run), 1 when nothing was paraphrased or the run stopped early, 2 for bad input (or no caption to
paraphrase in it), 130 after Ctrl-C, 143 after SIGTERM (both print the summary first).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from paraclip.checks import AT_LEAST_0, AT_LEAST_1, POSITIVE, Bounds, number_arg
from paraclip.errors import DataError
from paraclip.settings import number_option

HELP = "Paraphrase captions twice with an LLM (the ParaCLIP method); resumable JSONL output."


def _config_class():
    from paraclip.paraphrase.config import ParaphraseConfig  # the options' ranges are its fields'

    return ParaphraseConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="?", help="captions: .txt (one per line), .csv/.tsv/.jsonl/.json/.parquet, "
                                                 "or hf://DATASET[:SPLIT]")
    parser.add_argument("--out", help="output JSONL (appended to and resumed)")
    parser.add_argument("--limit", type=number_option(_config_class, "limit"), help="paraphrase only the first N kept captions")
    parser.add_argument("--preset", help="prompt preset: paper | small-model (default: paper for API models, "
                                         "small-model for local models under 3B)")
    parser.add_argument("--config", help="YAML file with ParaphraseConfig fields (prompts, sampling, filters, ...); "
                                         "the options given here override it, --x and --no-x both ways")

    model = parser.add_argument_group("backend")
    model.add_argument("--backend", default="local", type=_backend_name,
                       help="openai (any OpenAI-compatible server) | openai-batch (the OpenAI Batch API: files of "
                            "requests, 50 %% of the price, results within 24 h) | local (default; offline: "
                            "llama.cpp for .gguf files, else transformers) | llama.cpp | transformers")
    model.add_argument("--model", help="API model name, or a local directory / .gguf file / HF model id "
                                       "(local default: the offline pack, else SmolLM2)")
    model.add_argument("--base-url", type=_base_url, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    model.add_argument("--api-key-env", default=None,
                       help="name of the environment variable holding the API key (default OPENAI_API_KEY; the "
                            "key is never printed)")
    model.add_argument("--concurrency", type=number_option(_config_class, "concurrency"), help="requests in flight (API) / parallel "
                       "sequences (llama.cpp) / batch size (transformers)")
    model.add_argument("--timeout", type=number_arg(float, POSITIVE), help="per-request timeout in seconds (API)")
    model.add_argument("--max-retries", type=number_arg(int, AT_LEAST_0),
                       help="retries per request on 429/5xx/timeouts (API); follow-up batches per failed request "
                            "(openai-batch, default 2)")
    model.add_argument("--device", help="local: cpu, cuda, ...")
    model.add_argument("--dtype", type=_dtype_name, help="local: auto (bf16), fp32, fp16")
    model.add_argument("--threads", type=number_arg(int, AT_LEAST_1), help="local: CPU threads (default: all cores)")

    batch = parser.add_argument_group("openai-batch")
    batch.add_argument("--yes", action="store_true", help="submit without asking (the cost estimate is still printed)")
    batch.add_argument("--poll-interval", type=number_arg(float, POSITIVE),
                       help="seconds between status checks at first (then backing off; default 10)")
    batch.add_argument("--batch-max-requests", type=number_arg(int, Bounds(1, 50_000)),
                       help="requests per batch file (OpenAI's limit and the default: 50000)")
    batch.add_argument("--price-input", type=number_arg(float, AT_LEAST_0),
                       help="USD per 1M input tokens at realtime rates, for the estimate (default: built-in table)")
    batch.add_argument("--price-output", type=number_arg(float, AT_LEAST_0),
                       help="USD per 1M output tokens at realtime rates")

    data = parser.add_argument_group("input")
    data.add_argument("--caption-column", help="caption column / field (default: caption)")
    data.add_argument("--image-id-column", help="image-id column / field (default: image_id)")
    data.add_argument("--image-ids", help="text input: parallel file with one image id per line (as in the paper)")
    data.add_argument("--skip-bad-lines", action=argparse.BooleanOptionalAction, default=None,
                      help="report and skip malformed input lines (--no-skip-bad-lines: stop at one)")

    run = parser.add_argument_group("run")
    run.add_argument("--dry-run", action="store_true",
                     help="plan only, with any backend: print the captions to do, the requests and (for API models "
                          "with a known price) the cost estimate; send nothing, load no model, write nothing")
    run.add_argument("--cache", dest="use_cache", action=argparse.BooleanOptionalAction, default=None,
                     help="read and write the request cache (default); --no-cache: do not")
    run.add_argument("--retry-failed", action=argparse.BooleanOptionalAction, default=None,
                     help="redo records that failed in an earlier run")
    run.add_argument("--similarity", action=argparse.BooleanOptionalAction, default=None,
                     help="add cosine similarity under all-MiniLM-L6-v2 to the quality signals")
    run.add_argument("--min-similarity", type=number_option(_config_class, "min_similarity", float),
                     help="mark records below this similarity as filtered (a filter, not a correctness check)")
    run.add_argument("--drop-changed", action=argparse.BooleanOptionalAction, default=None,
                     help="mark records whose paraphrase changed the caption's meaning (quality.meaning_changed) as "
                          "filtered, so training skips them; on a finished output, re-marks its records")
    run.add_argument("--meaning-judge", action=argparse.BooleanOptionalAction, default=None,
                     help="ask the run's LLM whether each paraphrase keeps the caption's meaning (one short extra "
                          "request per paraphrase) and let its verdict set the meaning flags; for capable API "
                          "models (measured in the README); on a finished output, judges the records not judged yet")
    run.add_argument("--setup-llm-pack", action="store_true",
                     help="download, join and verify the offline LLM pack (Qwen2.5-Coder-1.5B, 1.1 GB) and exit")


# the names paraclip.paraphrase.local.transformers_runtime.resolve_dtype knows; checked at parse time so that a
# --dry-run (which loads no model) catches a typo too
_DTYPES = ("auto", "bf16", "bfloat16", "fp16", "float16", "fp32", "float32")


def _dtype_name(text: str) -> str:
    if text.strip().lower() not in _DTYPES:
        raise argparse.ArgumentTypeError(f"unknown dtype {text!r}; use auto, bf16, fp16 or fp32")
    return text.strip().lower()


def _base_url(text: str) -> str:
    """An http(s) URL with a host; anything else would only fail after every retry (``ftp://``, a typo)."""
    from urllib.parse import urlparse

    try:
        url = urlparse(text.strip())
        host = url.hostname
    except ValueError:  # e.g. an unclosed [ in an IPv6 host
        url, host = None, None
    if url is None or url.scheme.lower() not in ("http", "https") or not host:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL with a host, e.g. "
                                          f"http://127.0.0.1:8000/v1 or https://api.openai.com/v1")
    return text.strip()


def _backend_name(text: str) -> str:
    from paraclip.paraphrase import BACKENDS

    try:
        BACKENDS.get(text)
    except KeyError as exc:  # UnknownNameError: the message lists close matches
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip().lower()


# the options that are ParaphraseConfig settings: setting -> (option, its attribute in args)
CONFIG_OPTIONS = {
    "preset": ("--preset", "preset"), "limit": ("--limit", "limit"), "min_similarity": ("--min-similarity",
                                                                                         "min_similarity"),
    "caption_column": ("--caption-column", "caption_column"), "image_id_column": ("--image-id-column",
                                                                                  "image_id_column"),
    "image_ids_path": ("--image-ids", "image_ids"), "skip_bad_lines": ("--skip-bad-lines", "skip_bad_lines"),
    "retry_failed": ("--retry-failed", "retry_failed"), "similarity": ("--similarity", "similarity"),
    "drop_changed": ("--drop-changed", "drop_changed"), "use_cache": ("--cache/--no-cache", "use_cache"),
    "meaning_judge": ("--meaning-judge", "meaning_judge"),
}


def _config(args):
    """The YAML config (if any), then the options the user gave: an option given overrides the file both
    ways (``--no-similarity`` turns off ``similarity: true``, ``--limit 5`` replaces ``limit: 100``);
    an option left out leaves the file's value (or the default)."""
    ParaphraseConfig = _config_class()
    config = ParaphraseConfig.from_yaml(args.config) if args.config else ParaphraseConfig()
    given = {key: getattr(args, attr) for key, (_, attr) in CONFIG_OPTIONS.items()
             if getattr(args, attr, None) is not None}
    flags = {key: CONFIG_OPTIONS[key][0] for key in given}
    return config.updated(given, "command-line options", flags=flags)


def _api_key_env(args) -> str:
    """The variable holding the API key. One named with --api-key-env must be set: a typo there would
    otherwise send keyless requests that fail only after every retry."""
    import os

    if args.api_key_env is None:
        return "OPENAI_API_KEY"  # unset is fine here: a local server may need no key
    if not os.environ.get(args.api_key_env):
        raise DataError(f"--api-key-env {args.api_key_env}: that environment variable is not set (or empty). "
                        f"Set it (export {args.api_key_env}=...) or drop --api-key-env for a server that needs "
                        f"no key.")
    return args.api_key_env


def _backend(args):
    from paraclip.paraphrase import make_backend

    if args.backend in ("openai-batch", "batch"):
        prices = _prices(args)
        return make_backend("openai-batch", model=args.model, base_url=args.base_url, api_key_env=_api_key_env(args),
                            timeout=args.timeout, max_retries=args.max_retries, poll_interval=args.poll_interval,
                            max_requests_per_file=args.batch_max_requests, prices=prices,
                            confirm=lambda estimate: _confirm(estimate, args.yes))
    if args.backend in ("openai", "api"):
        return make_backend(args.backend, model=args.model, base_url=args.base_url, api_key_env=_api_key_env(args),
                            concurrency=args.concurrency, timeout=args.timeout, max_retries=args.max_retries)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend = make_backend(args.backend, model=args.model, batch_size=args.concurrency, device=args.device,
                               dtype=args.dtype, threads=args.threads)
    for w in caught:
        print(f"WARNING: {w.message}")
    return backend


def _prices(args) -> tuple[float, float] | None:
    if (args.price_input is None) != (args.price_output is None):
        raise DataError("give both --price-input and --price-output (USD per 1M tokens), or neither.")
    return (args.price_input, args.price_output) if args.price_input is not None else None


def _confirm(estimate, yes: bool) -> bool:
    """Show the cost estimate; ask unless --yes. Without a terminal to ask on, --yes is required."""
    print(f"cost estimate: {estimate.describe()}", flush=True)
    if yes:
        return True
    if not sys.stdin.isatty():
        raise DataError("the batch backend asks before submitting paid requests and there is no terminal to ask on: "
                        "pass --yes to submit, or --dry-run to see the plan and the estimate without sending anything.")
    return input("submit these requests to the Batch API? [y/N] ").strip().lower() in ("y", "yes")


def run(args) -> int:
    from tqdm import tqdm

    from paraclip.commands.interrupts import GracefulInterrupt
    from paraclip.paraphrase import run_paraphrasing, setup_llm_pack
    from paraclip.paraphrase.dry_run import is_batch
    from paraclip.paraphrase.io import as_captions, check_output_path
    from paraclip.paraphrase.meaning.judge import check_judge_backend

    if args.setup_llm_pack:
        setup_llm_pack()
        if not args.input:
            return 0
    if not args.input or not args.out:
        raise DataError("give an INPUT file and --out OUT.jsonl (or only --setup-llm-pack).")
    config = _config(args)
    check_output_path(args.out)
    check_judge_backend(config, is_batch(args.backend))  # before an API key or a model is looked for
    captions = as_captions(args.input, config.input)  # bad input is found before a model is loaded
    if args.dry_run:  # every backend: plan, send nothing, load nothing, write nothing
        from paraclip.paraphrase.dry_run import format_dry_run, plan_run

        print(format_dry_run(plan_run(captions, args.out, args.backend, args.model, config, _prices(args))))
        return 0
    backend = _backend(args)
    bar = None

    def progress(stats):  # one bar over every step of every caption; the plan is printed first
        nonlocal bar
        if bar is None:
            print(format_plan(stats), flush=True)
            bar = tqdm(total=stats["steps_total"], initial=stats["steps_done"], unit="step", dynamic_ncols=True)
        bar.update(stats["steps_done"] - bar.n)
        batch = stats.get("batch")
        if batch:
            done = f"{batch['completed']}/" if "completed" in batch else ""
            bar.set_description(f"{stats['phase']} {batch['batch_id'] or batch['file']} (round {batch['round']}, "
                                f"{done}{batch['requests']} requests)", refresh=False)
        bar.set_postfix(captions=f"{stats['done']}/{stats['total']}", ok=stats["ok"], failed=stats["failed"],
                        cached=stats["cached_requests"], refresh=True)

    try:
        with GracefulInterrupt(on_stop=backend.cancel) as interrupt:
            summary = run_paraphrasing(captions, args.out, backend, config, progress=progress,
                                       should_stop=interrupt.requested)
    finally:
        if bar is not None:
            bar.close()
        backend.close()
    print(format_summary(summary))
    return interrupt.exit_code or exit_status(summary)  # 130 after Ctrl-C, 143 after SIGTERM


def exit_status(summary: dict, interrupted: bool = False) -> int:
    """0: complete with at least one paraphrase (or a finished dry run); 1: nothing paraphrased or stopped
    early; 2: the input holds no caption to paraphrase (the user's to fix); 130: Ctrl-C."""
    if interrupted:
        return 130
    if (summary.get("batch") or {}).get("dry_run"):
        return 0
    if summary["total"] and summary["ok"] == 0 and summary["complete"]:
        print(f"paraclip paraphrase: error: nothing was paraphrased: {summary['failed']} of {summary['total']} "
              f"records failed, {summary['filtered']} filtered (reasons above). Fix the cause and rerun with "
              f"--retry-failed.", file=sys.stderr)
        return 1
    if not summary["total"]:
        print(f"paraclip paraphrase: error: no captions to paraphrase in {summary['input']} "
              f"({summary['input_captions']} read, {summary['filtered_by_length']} outside the length filter).",
              file=sys.stderr)
        return 2
    return 0 if summary["complete"] else 1


def format_plan(s: dict) -> str:
    """What the run is about to do, e.g. '3 captions x 2 steps, about 40 s on this machine'."""
    todo = s["total"] - s["done"]
    line = f"{todo} caption{'s' if todo != 1 else ''} x 2 steps"
    if s["done"]:
        line += f" ({s['done']} of {s['total']} already done)"
    if s.get("estimate_s") is not None:
        line += f", about {s['estimate_s']:.0f} s on this machine"
    return line


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
    lines += _batch_lines(s.get("batch"))
    if s["failed"]:
        lines.append("rerun with --retry-failed to try the failed records again.")
    if not s["complete"]:
        lines.append("not complete: rerun the same command to resume.")
    return "\n".join(lines)


def _batch_lines(info: dict | None) -> list[str]:
    if not info:
        return []
    lines = [f"batches: {len(info.get('batches', []))} submitted or prepared; state in {info.get('state')}"]
    if info.get("dry_run") and info.get("request_files"):
        lines.append(f"dry run: nothing was uploaded; {len(info['request_files'])} request file(s) written:")
        lines += [f"  {path}" for path in info["request_files"]]
    if info.get("estimate_text"):
        lines.append(f"cost estimate: {info['estimate_text']}")
    if info.get("declined"):
        lines.append("not submitted: nothing was sent.")
    if info.get("in_flight"):
        lines.append(f"still running at the server: {', '.join(info['in_flight'])}; rerun the same command to "
                     f"collect their results (they are not submitted again).")
    return lines
