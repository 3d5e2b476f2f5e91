"""``python app.py`` as a Hugging Face Space runs it: a fresh empty cache and app folder, ``SPACE_ID``
set (public mode), a free port. It must serve within 15 s on the shipped trained models with all
five tabs, Compare's run with the shipped pairs must include AO/JS, and nothing may train."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.local_http import call_api, free_port

REPO = Path(__file__).resolve().parents[1]
START_LIMIT_S = 15.0  # the acceptance figure, for an idle 2-core machine
TABS = ["Paraphrase", "Train", "Compare", "Explore", "About"]

# every test here shares the Space started by the module fixture (~35 s), and two take ~50 s more
pytestmark = pytest.mark.slow


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux ``/proc``): unlike wall time, it does not
    grow when other jobs share the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    if not (REPO / "assets" / "manifest.json").is_file():
        pytest.fail("assets/ is missing: the Space would start on untrained models")
    root = tmp_path_factory.mktemp("space")
    cache, app_dir = root / "cache", root / "app"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARACLIP_APP_", "GRADIO_"))}
    env.update(SPACE_ID="paraclip/workbench-test", PARACLIP_CACHE=str(cache), PARACLIP_APP_DIR=str(app_dir),
               GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False",
               HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    served = cpu = None
    load = os.getloadavg()[0]
    while time.perf_counter() - start < 120 and proc.poll() is None:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                served, cpu = time.perf_counter() - start, cpu_seconds(proc.pid)
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    try:
        yield {"url": url, "served_s": served, "cpu_s": cpu, "load": max(load, os.getloadavg()[0]), "cache": cache,
               "app_dir": app_dir, "proc": proc}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_space_serves_quickly(space):
    """Within 15 s: as CPU time always (what an idle machine's wall time would be), and as wall time
    stretched by how many jobs shared the cores while it started."""
    assert space["served_s"] is not None, space["proc"].stdout.read() if space["proc"].poll() is not None else "no 200"
    share = max(1.0, space["load"] / (os.cpu_count() or 1))
    print(f"served HTTP 200 after {space['served_s']:.1f} s wall, {space['cpu_s']:.1f} s CPU "
          f"(load {space['load']:.1f} on {os.cpu_count()} cores)")
    assert space["cpu_s"] <= START_LIMIT_S
    assert space["served_s"] <= START_LIMIT_S * share


def test_space_has_five_tabs_and_the_shipped_trained_models(space):
    config = httpx.get(f"{space['url']}config", timeout=30).json()
    labels = [c["props"].get("label") for c in config["components"] if c.get("type") in ("tab", "tabitem")]
    assert [t for t in TABS if t in labels] == TABS, labels
    banner = next(c["props"]["value"] for c in config["components"] if c["props"].get("elem_id") == "pc-banner")
    assert "shipped in `assets/`" in banner and "untrained" not in banner.lower(), banner
    event, stream = call_api(space["url"], "explore", ["mini-world CLIP baseline", "mini-world ParaCLIP", "mini-world",
                                                       "two small red circles", "a pair of little red rings", 5],
                             timeout=300)
    assert event == "complete" and stream.count("pc-panel") >= 2, stream[-1500:]


def test_space_compare_default_run_has_ao_js_and_nothing_trains(space):
    from workbench.compare import DEFAULT_TASKS

    # the default run itself must include AO/JS (adding it here when missing would hide a default that dropped it)
    assert "paraphrased retrieval AO@k / JS@k (gallery + pairs)" in DEFAULT_TASKS
    pairs = str(REPO / "assets" / "pairs" / "in-vocab.jsonl")
    event, stream = call_api(space["url"], "compare", ["mini-world CLIP baseline", ["mini-world ParaCLIP"],
                                                       DEFAULT_TASKS, "mini-world", pairs, "1,5,10,20", 0,
                                                       "miniworld-shape", ""],
                             timeout=300)
    data = json.loads([line[5:] for line in stream.splitlines() if line.startswith("data:")][-1])
    assert event == "complete" and data[0].startswith("✅"), stream[-2000:]
    assert "AO@10" in json.dumps(data[1]) or "AO@10" in json.dumps(data[2]), data[1]
    # nothing trained or queued: no mini-world run, no untrained fallback, no job
    assert not (space["cache"] / "miniworld").exists()
    assert not list((space["app_dir"] / "defaults").glob("untrained-*"))
    jobs_db = space["app_dir"] / "jobs.sqlite"
    if jobs_db.exists():
        import sqlite3

        with sqlite3.connect(jobs_db) as db:
            assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
