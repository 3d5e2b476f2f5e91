"""Start-to-serving time of the Workbench: `python app.py` until the page answers HTTP 200.

    .venv/bin/python bench/app_start.py [--runs 3]

Each run is a fresh process (imports included) on a fresh app folder, so the defaults are built
in the background as on a first start. Prints every run and the median. Goal (issue 7): <= 15 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import free_port, machine_load

ROOT = Path(__file__).resolve().parents[1]


def one_run() -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "PARACLIP_CACHE": d, "HF_HUB_OFFLINE": "1",
               "GRADIO_ANALYTICS_ENABLED": "False"}
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                        if r.status == 200:
                            return time.perf_counter() - start
                except OSError:
                    if proc.poll() is not None:
                        raise RuntimeError("the app exited before serving")
                    time.sleep(0.1)
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times = []
    for i in range(args.runs):
        times.append(one_run())
        print(f"run {i + 1}: {times[-1]:.2f} s to serving")
    print(f"median start-to-serving: {statistics.median(times):.2f} s (goal <= 15 s; {machine_load()})")


if __name__ == "__main__":
    main()
