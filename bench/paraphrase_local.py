"""Local backend: batched generation vs one caption at a time, side by side in one run.

Both settings paraphrase the same captions through ``run_paraphrasing`` (both steps, no
cache, no re-sampling, fixed ``max_tokens``) with the same loaded model; only the batch size
differs. Default model: the packaged SmolLM2-135M GGUF; ``--model pack`` uses the offline
Qwen2.5-Coder-1.5B pack (after ``paraclip paraphrase --setup-llm-pack``); ``--device cuda``
on a GPU.

    .venv/bin/python bench/paraphrase_local.py [--captions 16] [--batch-size 8] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paraclip.paraphrase import ParaphraseConfig, make_backend, run_paraphrasing  # noqa: E402
from paraclip.paraphrase.llm_pack import installed_pack, smollm2_path  # noqa: E402

CAPTIONS = [
    "a dog runs along the beach", "two men playing chess in a park", "a red car parked next to a building",
    "a bowl of fruit on a wooden table", "children flying kites on a windy hill", "a cat sleeping on a sofa",
    "a plate of pasta with tomato sauce", "a train crossing a bridge over a river", "a woman reading a book in bed",
    "three boats floating on a calm lake", "a boy kicking a football on grass", "a bird perched on a wire",
    "a bicycle leaning against a yellow wall", "people waiting at a bus stop", "a snowy mountain under blue sky",
    "a chef cutting vegetables in a kitchen",
]


def timed_run(backend, captions, concurrency, max_tokens, preset) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = ParaphraseConfig(use_cache=False, max_resamples=0, max_tokens=max_tokens, concurrency=concurrency,
                                  preset=preset)
        start = time.monotonic()
        run_paraphrasing(captions, Path(tmp) / "o.jsonl", backend, config)
        return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="smollm2 | pack | a path / HF id")
    parser.add_argument("--captions", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--preset", default="small-model")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = {"smollm2": smollm2_path(), "pack": installed_pack()}.get(args.model, args.model)
    if model is None:
        sys.exit(f"model {args.model!r} is not installed")
    captions = (CAPTIONS * (args.captions // len(CAPTIONS) + 1))[: args.captions]
    start = time.monotonic()
    backend = make_backend("local", model=str(model), batch_size=args.batch_size, threads=args.threads,
                           device=args.device, dtype=args.dtype)
    print(f"model {backend.model} on {backend.device} ({backend.torch_dtype}), loaded in "
          f"{time.monotonic() - start:.1f} s; {args.captions} captions x 2 steps, max_tokens {args.max_tokens}")
    timed_run(backend, captions[:2], 1, 4, args.preset)  # warm-up
    results = {}
    for label, conc in (("one at a time", 1), (f"batched ({args.batch_size})", args.batch_size)):
        times = [timed_run(backend, captions, conc, args.max_tokens, args.preset) for _ in range(args.repeats)]
        results[label] = statistics.median(times)
        print(f"{label:16s} median {results[label]:7.2f} s  ({args.captions / results[label]:.2f} captions/s)  "
              f"runs: {', '.join(f'{t:.2f}' for t in times)}")
    one, batched = results.values()
    print(f"batched / one-at-a-time throughput ratio: {one / batched:.2f}x")
    backend.close()


if __name__ == "__main__":
    main()
