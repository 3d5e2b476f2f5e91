"""API backend vs the paper's sequential client, side by side against one local fault-injecting server.

The server (127.0.0.1, started here) speaks the chat-completions protocol, adds 200 ms latency
per request and answers 429 (Retry-After: 1 s) on 5 % and 500 on 2 % of requests (issue 3).

* paper: a faithful re-implementation of ParaCLIP's ``paraphrasing/call_openai.py`` request
  loop: one request at a time, step 1 then step 2 per caption, on any error sleep
  10 s + U(0, 1) s, at most 10 tries, a failed request gives ``None``.
* ours: ``run_paraphrasing`` with the OpenAI-compatible backend at several concurrencies.

Prints records/s for each, the ratio to the paper's client, and lost / duplicated records.

    .venv/bin/python bench/paraphrase_api.py [--paper-captions 40] [--captions 640] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paraclip.paraphrase import ParaphraseConfig, make_backend, run_paraphrasing  # noqa: E402
from paraclip.testing.mock_server import Faults, MockChatServer  # noqa: E402
from paraclip.paraphrase.prompts import PAPER_STEP1, PAPER_STEP2  # noqa: E402


def paper_client(captions: list[str], url: str) -> tuple[list[dict], float]:
    """The official loop, re-implemented over plain HTTP (the original used openai<1.0)."""
    client = httpx.Client(timeout=600)

    def request(query: str) -> str | None:
        for _ in range(10):
            try:
                r = client.post(url + "/chat/completions", json={
                    "model": "gpt-3.5-turbo-0301", "max_tokens": 512, "temperature": 1.0, "top_p": 0.1,
                    "messages": [{"role": "user", "content": query}]})
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code}")
                return r.json()["choices"][0]["message"]["content"]
            except Exception:  # openai.error.OpenAIError in the original: any API error
                time.sleep(10.0 + random.randint(0, 1000) / 1000.0)
        return None

    start = time.monotonic()
    data = []
    for idx, caption in enumerate(captions):
        p1 = request(PAPER_STEP1.format(caption))
        p2 = request(PAPER_STEP2.format(p1))
        data.append({"index": idx, "caption": caption, "paraphrase_1": p1, "paraphrase_2": p2})
    return data, time.monotonic() - start


def ours(captions: list[str], url: str, concurrency: int) -> tuple[list[dict], float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        backend = make_backend("openai", model="gpt-3.5-turbo-0301", base_url=url, concurrency=concurrency)
        start = time.monotonic()
        run_paraphrasing(captions, out, backend, ParaphraseConfig(use_cache=False, max_resamples=0))
        seconds = time.monotonic() - start
        backend.close()
        return [json.loads(line) for line in out.read_text().splitlines()], seconds


def check(records: list[dict], n: int) -> tuple[int, int]:
    """(lost, duplicated): missing indices or missing paraphrases; indices seen more than once."""
    indices = [r["index"] for r in records]
    lost = len(set(range(n)) - set(indices)) + sum(1 for r in records if not (r["paraphrase_1"] and r["paraphrase_2"]))
    return lost, len(indices) - len(set(indices))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paper-captions", type=int, default=40)
    parser.add_argument("--captions", type=int, default=640)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours per concurrency (median reported)")
    args = parser.parse_args()
    faults = Faults(latency=0.2, p429=0.05, retry_after=1.0, p500=0.02, seed=0)
    captions = [f"photo number {i} of a dog running on a beach" for i in range(max(args.captions, args.paper_captions))]
    rows = []
    with MockChatServer(faults, record_bodies=False) as server:
        recs, secs = paper_client(captions[: args.paper_captions], server.base_url)
        paper_rate = len(recs) / secs
        rows.append(("paper sequential client", 1, len(recs), [secs], paper_rate, *check(recs, args.paper_captions)))
        for conc in [int(c) for c in args.concurrency.split(",")]:
            n = args.captions if conc > 1 else args.paper_captions
            runs = [ours(captions[:n], server.base_url, conc) for _ in range(args.repeats if conc > 1 else 1)]
            times = [s for _, s in runs]
            lost_dup = [check(r, n) for r, _ in runs]
            rate = n / statistics.median(times)
            rows.append(("ours (API backend)", conc, n, times, rate, max(l for l, _ in lost_dup),
                         max(d for _, d in lost_dup)))
        counts = dict(server.counts)
    # the paper client's expected rate from the fault rates: each error costs a 10.5 s sleep (+ the request)
    p_err = faults.p429 + faults.p500
    expected_paper = 1 / (2 * (faults.latency + p_err / (1 - p_err) * (10.5 + faults.latency)))
    print(f"paper client expected from the fault rates: {expected_paper:.2f} records/s "
          f"(measured {paper_rate:.2f} on {args.paper_captions} captions)")
    print(f"server: 200 ms latency, 5 % 429 (Retry-After 1 s), 2 % 500; requests served: {counts}")
    print(f"{'client':26s} {'conc':>4s} {'records':>7s} {'median s':>9s} {'records/s':>9s} {'vs paper':>8s} "
          f"{'lost':>4s} {'dup':>4s}")
    for name, conc, n, times, rate, lost, dup in rows:
        print(f"{name:26s} {conc:4d} {n:7d} {statistics.median(times):9.2f} {rate:9.2f} {rate / paper_rate:7.1f}x "
              f"{lost:4d} {dup:4d}")


if __name__ == "__main__":
    main()
