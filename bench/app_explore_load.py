"""Explore latency on the offline gallery, and 20 concurrent gradio_client clients on Explore + Compare.

    .venv/bin/python bench/app_explore_load.py [--queries 100] [--clients 20]

1. Handler latency: ``workbench.explore.explore`` called directly on the mini-world gallery with
   the two default models (gallery embeddings warm), p50/p95 over --queries queries.
2. The same over HTTP, queue + serialisation included, p50/p95: with plain HTTP requests (the
   queue protocol a browser uses: POST /gradio_api/call/explore, then read the event stream) and
   with gradio_client, which adds its own ~140 ms per call on this machine (measured here on a
   no-op endpoint, so the two can be told apart).
3. --clients concurrent gradio_client clients, each 3 Explore queries and 1 Compare run
   (retrieval on 64 gallery images): errors counted, p50/p95 per call. Goal (issue 7): Explore
   p95 <= 200 ms; 20 clients without errors.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import free_port  # noqa: E402


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def summary(name, values):
    ms = [1000 * v for v in values]
    return f"{name}: n={len(ms)} p50 {statistics.median(ms):.1f} ms, p95 {pct(ms, 95):.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("PARACLIP_CACHE", tempfile.mkdtemp(prefix="paraclip-bench-"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gradio_client import Client

    from workbench import explore
    from workbench.app import build_demo, launch_kwargs
    from workbench.services import AppConfig, Services

    # the untrained fallback has the mini-world models' architecture, so latency is the same; building the
    # trained ones takes ~30 min (issue 6) and is not what is measured here
    services = Services(AppConfig(build_defaults=False))
    services.defaults.wait(600)
    models = services.model_labels()[:2]
    gallery = next(iter(services.defaults.gallery_choices()))
    words = ["red", "blue", "green", "small", "large", "striped", "circle", "square", "star", "left of", "above"]
    queries = [(f"a {words[i % 11]} {words[(i * 3) % 11]} shape", f"one {words[(i * 5) % 11]} thing") for i in
               range(args.queries)]
    explore.explore(services, *models, gallery, "warm up", "warm up too", 8)  # gallery embeddings
    direct = []
    for q, p in queries:
        t = time.perf_counter()
        explore.explore(services, *models, gallery, q, p, 8)
        direct.append(time.perf_counter() - t)
    print(f"gallery {gallery}: {len(services.gallery(gallery))} images; models {models}")
    print(summary("Explore handler (direct)", direct))

    demo = build_demo(services)
    with demo:  # a no-op endpoint: the fixed cost of a call through the queue and the client
        import gradio as gr

        gr.Button(visible=False).click(lambda: None, None, None, api_name="bench_noop")
    demo.queue(default_concurrency_limit=4, max_size=256)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_kwargs(services))
    url = f"http://127.0.0.1:{port}/"
    import httpx

    def raw_call(http, api: str, data: list) -> None:
        event = http.post(f"{url}gradio_api/call/{api}", json={"data": data}).json()["event_id"]
        with http.stream("GET", f"{url}gradio_api/call/{api}/{event}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: error"):
                    raise RuntimeError(f"{api} failed")
                if line.startswith("event: complete"):
                    return

    raw, client_times, noop = [], [], []
    client = Client(url, verbose=False)
    with httpx.Client(timeout=60) as http:
        for q, p in queries[:50]:
            t = time.perf_counter()
            raw_call(http, "explore", [*models, gallery, q, p, 8])
            raw.append(time.perf_counter() - t)
            t = time.perf_counter()
            client.predict(*models, gallery, q, p, 8, api_name="/explore")
            client_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            client.predict(api_name="/bench_noop")
            noop.append(time.perf_counter() - t)
    print(summary("Explore over HTTP, plain requests (what a browser does)", raw))
    print(summary("Explore over HTTP, gradio_client", client_times))
    print(summary("a no-op endpoint over gradio_client (the client's own cost)", noop))

    errors, ex_times, cmp_times = [], [], []

    def user(i):
        try:
            c = Client(url, verbose=False)
        except Exception as exc:  # noqa: BLE001 - counted (the server did not answer its config in time)
            errors.append(f"connect: {type(exc).__name__}: {exc}")
            return
        for j in range(3):
            t = time.perf_counter()
            try:
                out = c.predict(*models, gallery, f"query {i} {j}", f"paraphrase {i} {j}", 8, api_name="/explore")
                assert 'class="pc-panel"' in out[0], out[0][:200]
                ex_times.append(time.perf_counter() - t)
            except Exception as exc:  # noqa: BLE001 - counted
                errors.append(f"explore: {exc}")
        t = time.perf_counter()
        try:
            out = c.predict(models[0], [models[1]], ["zero-shot retrieval (gallery)"], gallery, "", "1,5", 64,
                            api_name="/compare")
            assert out[0].startswith("✅"), out[0]
            cmp_times.append(time.perf_counter() - t)
        except Exception as exc:  # noqa: BLE001 - counted
            errors.append(f"compare: {exc}")

    t = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(user, range(args.clients)))
    wall = time.perf_counter() - t
    print(f"{args.clients} concurrent clients: {len(errors)} errors in {wall:.1f} s")
    print(summary("  Explore under load", ex_times))
    print(summary("  Compare under load", cmp_times))
    for e in errors[:5]:
        print("  error:", e)
    demo.close()


if __name__ == "__main__":
    main()
