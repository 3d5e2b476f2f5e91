"""Realtime API client at high concurrency vs the Batch API path's own overhead per record, side by side.

Both run against local servers on 127.0.0.1 started here:

* realtime: ``--backend openai`` at concurrency 32 and 64 against the mock chat server with
  200 ms latency per request (issue 3's setting, no faults): records/s.
* batch: ``--backend openai-batch`` against the files + batches fake, whose batches complete
  at the first status check, polled every 10 ms: everything the client does (request files,
  upload, create, poll, download, parse, SQLite state, records) plus the fake's own work.
  That is the batch path's overhead; at OpenAI a batch also waits in a queue (minutes to 24 h).

Prints medians over ``--repeats`` runs, ms per record and ratios; lost / duplicated records.

    .venv/bin/python bench/paraphrase_batch.py [--captions 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paraclip.paraphrase import ParaphraseConfig, make_backend, run_paraphrasing  # noqa: E402
from paraclip.testing.mock_server import Faults, MockChatServer  # noqa: E402
from tests.paraphrase.fakes import FakeOpenAI  # noqa: E402


def timed_run(captions: list[str], backend) -> tuple[float, int, int]:
    """Seconds, lost and duplicated records of one run into a fresh output."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        start = time.monotonic()
        run_paraphrasing(captions, out, backend, ParaphraseConfig(use_cache=False, max_resamples=0))
        seconds = time.monotonic() - start
        indices = [json.loads(line)["index"] for line in out.read_text().splitlines()]
    return seconds, len(set(range(len(captions))) - set(indices)), len(indices) - len(set(indices))


def measure(captions, make, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        with make() as backend:
            runs.append(timed_run(captions, backend))
    median = statistics.median(s for s, _, _ in runs)
    return {"median_s": median, "ms_per_record": 1000 * median / len(captions), "records_per_s": len(captions) / median,
            "lost": max(r[1] for r in runs), "dup": max(r[2] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", default="32,64")
    args = parser.parse_args()
    captions = [f"photo number {i} of a dog running on a beach" for i in range(args.captions)]
    rows = []
    with MockChatServer(Faults(latency=0.2), record_bodies=False) as chat:
        for conc in [int(c) for c in args.concurrency.split(",")]:
            result = measure(captions, lambda: make_backend("openai", model="m", base_url=chat.base_url,
                                                            concurrency=conc), args.repeats)
            rows.append((f"realtime, concurrency {conc} (200 ms/request)", result))
    with FakeOpenAI(polls_to_complete=1) as api:
        result = measure(captions, lambda: make_backend("openai-batch", model="m", base_url=api.base_url,
                                                        poll_interval=0.01, poll_max=0.01), args.repeats)
        rows.append(("batch path overhead (fake completes at once)", result))
    load = os.getloadavg()
    print(f"{args.captions} captions x 2 steps; medians of {args.repeats} runs; load average {load[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    print(f"{'client':48s} {'median s':>9s} {'ms/record':>10s} {'records/s':>10s} {'lost':>5s} {'dup':>4s}")
    for name, r in rows:
        print(f"{name:48s} {r['median_s']:9.2f} {r['ms_per_record']:10.3f} {r['records_per_s']:10.1f} "
              f"{r['lost']:5d} {r['dup']:4d}")
    batch = rows[-1][1]
    for name, r in rows[:-1]:
        print(f"batch overhead per record / {name}: {batch['ms_per_record'] / r['ms_per_record']:.3f}x")


if __name__ == "__main__":
    main()
