"""Explore latency under load, measured from outside the server (issue 22 §9).

    .venv/bin/python bench/app_explore_load.py [--clients 20] [--cores 0,1] [--solo 30]

The app runs as its own process (``python app.py``, as on a Space, optionally pinned with
``taskset`` to ``--cores``), and the load is plain HTTP from this process — ``POST
/gradio_api/call/<api>``, then the event stream, as a browser does — so the load generator never
shares the server's interpreter, GIL or threads.

1. Explore alone: ``--solo`` sequential queries, p50/p95.
2. ``--clients`` concurrent visitors, each 3 Explore queries then 1 Compare run (zero-shot retrieval
   on 64 gallery images), all started together: errors counted, p50/p95 per call, wall time.
   Goal (issue 22): Explore p95 <= 1 s on 2 cores under this load.

The visitors have the page open when the burst starts: each one's Gradio session exists (built by one
cheap call before the burst, as a browser tab's page-load event builds it), because building a session
costs the server ≈ 35 ms of CPU (every component's config) and happens when the page opens, not when
Search is pressed. ``--cold-sessions`` builds them inside the burst instead (the worst case: 20 people
opening the page and searching in the same second).

``--repo PATH`` serves ``app.py`` from another checkout (e.g. a ``git worktree`` of an older commit),
so two versions can be measured side by side in one sitting with the same load generator.

Every figure is printed with the machine's load average (other jobs share the cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, machine_load  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SERVED = REPO  # the checkout whose app.py is served (``--repo``)


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def summary(name, values):
    if not values:
        return f"{name}: no calls completed"
    ms = [1000 * v for v in values]
    return f"{name}: n={len(ms)} p50 {statistics.median(ms):.0f} ms, p95 {pct(ms, 95):.0f} ms, max {max(ms):.0f} ms"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children (Linux /proc): unlike wall time, it
    does not grow when other jobs share the cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def call(http: httpx.Client, url: str, api: str, data: list, session: str | None = None) -> list:
    """One call over the queue protocol; the outputs of its ``complete`` event. ``session``: the caller's
    session hash — a browser tab sends the same one with every event, so Gradio builds the session's state
    once per visitor; without it every call is a new session (about 40 ms of server CPU to build)."""
    import json

    body = {"data": data} if session is None else {"data": data, "session_hash": session}
    event = http.post(f"{url}gradio_api/call/{api}", json=body)
    event.raise_for_status()
    last = ""
    with http.stream("GET", f"{url}gradio_api/call/{api}/{event.json()['event_id']}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                last = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and last in ("complete", "error"):
                if last == "error":
                    raise RuntimeError(f"{api}: {line[5:200]}")
                return json.loads(line[5:])
    raise RuntimeError(f"{api}: the stream ended without a result")


def start_server(cores: str | None, root: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARACLIP_APP_", "GRADIO_"))}
    env.update(PARACLIP_CACHE=os.environ.get("PARACLIP_CACHE", str(root / "cache")),
               PARACLIP_APP_DIR=str(root / "app"), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    env.update(item.split("=", 1) for item in extra)
    env["PYTHONPATH"] = str(SERVED)
    command = [sys.executable, "app.py"]
    if cores:
        command = ["taskset", "-c", cores, *command]
    proc = subprocess.Popen(command, cwd=SERVED, env=env, stdout=open(root / "server.log", "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}/"


def default_labels(root: Path) -> tuple[list[str], str]:
    """The two default models' labels and the first gallery, as the server names them (same code and
    settings; computed here, before the load, so the server's process is not touched)."""
    sys.path.insert(0, str(REPO))
    from workbench.services import AppConfig, Services

    services = Services(AppConfig(app_dir=root / "labels", build_defaults=False))
    services.defaults.start()
    services.defaults.wait(900)
    return services.model_labels()[:2], next(iter(services.defaults.gallery_choices()))


def wait_ready(url: str, proc: subprocess.Popen, models: list[str], gallery: str, timeout: float = 900) -> None:
    """Until Explore answers on the default models (the server built or adopted them)."""
    end = time.monotonic() + timeout
    with httpx.Client(timeout=120) as http:
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with status {proc.returncode}")
            try:
                out = call(http, url, "explore", [*models, gallery, "warm up", "warm up too", 8])
                if 'class="pc-panel"' in str(out[0]):
                    return
            except (httpx.HTTPError, RuntimeError):
                pass
            time.sleep(1)
    raise SystemExit("the server did not answer Explore in time")


def settle(pid: int, quiet_cpu_s: float = 0.1, timeout: float = 120) -> float:
    """Until the server's process tree (the app and its worker processes) uses less than ``quiet_cpu_s`` of
    CPU in a second: the app finishes its start-up work (the comparisons' worker imports its libraries,
    the defaults builder renders thumbnails) before anything is measured. Returns the seconds waited."""
    import psutil

    def tree_cpu() -> float:
        total = 0.0
        try:
            procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    start = time.monotonic()
    before = tree_cpu()
    while time.monotonic() - start < timeout:
        time.sleep(1.0)
        now = tree_cpu()
        if now - before < quiet_cpu_s:
            break
        before = now
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--solo", type=int, default=30)
    parser.add_argument("--cores", default="0,1", help="CPUs the server may use (taskset -c; '' = all)")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server (repeatable)")
    parser.add_argument("--no-compare", action="store_true",
                        help="visitors only run Explore (separates Explore's own cost from Compare's)")
    parser.add_argument("--cold-sessions", action="store_true",
                        help="build each visitor's Gradio session inside the burst (default: before it)")
    parser.add_argument("--repo", type=Path, default=REPO, help="serve app.py from this checkout")
    args = parser.parse_args()
    global SERVED
    SERVED = args.repo.resolve()
    if not (SERVED / "app.py").is_file():
        raise SystemExit(f"--repo {args.repo}: no app.py there")
    root = Path(tempfile.mkdtemp(prefix="paraclip-bench-load-"))
    models, gallery = default_labels(root)
    proc, url = start_server(args.cores or None, root, args.env)
    try:
        wait_ready(url, proc, models, gallery)
        waited = settle(proc.pid)
        print(f"serving {SERVED}; server pid {proc.pid} on cores {args.cores or 'all'} {' '.join(args.env)}; models {models}; gallery {gallery}; "
              f"{machine_load()}; start-up work settled after {waited:.0f} s")
        words = ["red", "blue", "green", "small", "large", "striped", "circle", "square", "star", "left of", "above"]
        solo = []
        solo_session = uuid.uuid4().hex
        with httpx.Client(timeout=300) as http:
            for i in range(args.solo):
                t = time.perf_counter()
                call(http, url, "explore", [*models, gallery, f"a {words[i % 11]} {words[(i * 3) % 11]} shape",
                                            f"one {words[(i * 5) % 11]} thing", 8], solo_session)
                solo.append(time.perf_counter() - t)
        print(summary("Explore alone (sequential)", solo) + f"  [{machine_load()}]")

        errors, ex_times, cmp_times = [], [], []
        go = threading.Event()

        def visitor(i: int) -> None:
            """What a visitor does: three Explore queries, then one Compare run (the old in-process bench's
            pattern, so the figures compare)."""
            session = uuid.uuid4().hex  # one browser tab: one session for all its calls
            with httpx.Client(timeout=600) as http:
                if not args.cold_sessions:  # the page is open: its session exists before the burst
                    try:
                        call(http, url, "explore", [*models, gallery, "", "", 8], session)
                    except Exception as exc:  # noqa: BLE001 - counted
                        errors.append(f"opening the page: {exc}")
                    finally:
                        opened.release()
                go.wait()
                for j in range(3):
                    t = time.perf_counter()
                    try:
                        out = call(http, url, "explore", [*models, gallery, f"query {i} {j}", f"paraphrase {i} {j}", 8], session)
                        assert 'class="pc-panel"' in str(out[0]), str(out[0])[:200]
                        ex_times.append(time.perf_counter() - t)
                    except Exception as exc:  # noqa: BLE001 - counted
                        errors.append(f"explore: {exc}")
                if args.no_compare:
                    return
                t = time.perf_counter()
                try:
                    out = call(http, url, "compare", [models[0], [models[1]], ["zero-shot retrieval (gallery)"],
                                                      gallery, "", "1,5", 64, "miniworld-shape", ""], session)
                    assert str(out[0]).startswith("✅"), str(out[0])[:200]
                    cmp_times.append(time.perf_counter() - t)
                except Exception as exc:  # noqa: BLE001 - counted
                    errors.append(f"compare: {exc}")

        opened = threading.Semaphore(0)
        threads = [threading.Thread(target=visitor, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        if not args.cold_sessions:
            for _ in threads:
                opened.acquire()
        load_before = os.getloadavg()[0]
        server = proc.pid  # taskset execs the server: the same pid
        cpu_before = cpu_seconds(server)
        start = time.perf_counter()
        go.set()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        cpu = cpu_seconds(server) - cpu_before
        pattern = "3 Explore each" if args.no_compare else "3 Explore + 1 Compare each"
        pattern += ", sessions built in the burst" if args.cold_sessions else ", pages already open"
        print(f"{args.clients} visitors ({pattern}, at once): {len(errors)} errors in {wall:.1f} s "
              f"[load before {load_before:.1f}, after {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs]")
        print(f"  server CPU during the load: {cpu:.1f} s (= {cpu / 2:.1f} s of wall on 2 idle cores)")
        print(summary("  Explore under load", ex_times))
        print(summary("  Compare under load", cmp_times))
        for e in errors[:5]:
            print("  error:", e)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
