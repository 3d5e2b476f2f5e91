"""``python app.py`` / ``paraclip app``: a bad setting stops it with exit 2 and a message (no traceback),
and Ctrl-C or SIGTERM stops it within 2 s, its training jobs interrupted (SIGTERM, marked
``interrupted``) unless PARACLIP_APP_KEEP_JOBS=1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.local_http import free_port

REPO = Path(__file__).resolve().parents[2]


def app_env(tmp_path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARACLIP_APP_", "GRADIO_"))}
    env.update(PARACLIP_CACHE=str(tmp_path / "cache"), PARACLIP_APP_DIR=str(tmp_path / "app"),
               GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
               PYTHONPATH=str(REPO), **extra)
    return env


@pytest.mark.parametrize("setting,value", [("GRADIO_SERVER_PORT", "abc"), ("GRADIO_SERVER_PORT", "99999"),
                                           ("PARACLIP_APP_MAX_UPLOAD_MB", "-1"), ("PARACLIP_APP_MAX_JOBS", "abc"),
                                           ("PARACLIP_APP_AUTH", "admin-without-password")])
def test_a_bad_setting_stops_the_app_with_a_message(tmp_path, setting, value):
    out = subprocess.run([sys.executable, "app.py"], cwd=REPO, env=app_env(tmp_path, **{setting: value}),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert setting in out.stderr and "Traceback" not in out.stderr + out.stdout
    assert not (tmp_path / "app").exists(), "nothing may be built before the settings are checked"


@pytest.mark.parametrize("port", ["99999", "abc"])
def test_a_bad_port_option_is_a_usage_error(tmp_path, port):
    out = subprocess.run([sys.executable, "-m", "paraclip.cli", "app", "--port", port], cwd=REPO,
                         env=app_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "port" in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]


# A stand-in training job: on SIGTERM it "checkpoints" (writes a file) and exits, as the trainer does.
JOB = ("import signal, sys, time, pathlib\n"
       "out = pathlib.Path(sys.argv[1])\n"
       "def stop(*_):\n    out.write_text('checkpointed')\n    sys.exit(0)\n"
       "signal.signal(signal.SIGTERM, stop)\n"
       "out.with_suffix('.started').write_text('1')\n"
       "while True:\n    time.sleep(0.05)\n")


def wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("keep", [False, True])
def test_sigterm_stops_the_app_in_2_s_and_interrupts_its_jobs(tmp_path, keep):
    from paraclip.jobs import JobRunner

    port = free_port()
    env = app_env(tmp_path, GRADIO_SERVER_PORT=str(port), PARACLIP_APP_BUILD_DEFAULTS="0",
                  **({"PARACLIP_APP_KEEP_JOBS": "1"} if keep else {}))
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    runner = JobRunner(tmp_path / "app")
    marker = tmp_path / "job.out"
    job = runner.start("train", "stand-in", [sys.executable, "-c", JOB, str(marker)], owner="visitor")
    try:
        assert wait_for(lambda: marker.with_suffix(".started").exists(), 60)

        def served():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return proc.poll() is not None
        assert wait_for(served, 120) and proc.poll() is None, proc.stdout.read() if proc.poll() is not None else ""
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        took = time.monotonic() - start
        output = proc.stdout.read()
        assert took <= 2.0, f"stopped after {took:.1f} s"
        assert proc.returncode == 0 and "Traceback" not in output, output[-2000:]
        if keep:
            assert "keep running" in output
            assert runner.get(job.id).status == "running" and not marker.exists()
        else:
            assert wait_for(marker.exists, 10), "the job got no SIGTERM"
            assert runner.store.get(job.id).status == "interrupted"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        runner.cancel_all()


def test_paraclip_app_runs_the_workbench_and_its_setting_checks(tmp_path):
    """``paraclip app`` hands over to ``python -m workbench`` (the library never imports the app); the app's
    own setting check answers, from any working folder."""
    out = subprocess.run([sys.executable, "-m", "paraclip.cli", "app", "--port", "7999"], cwd=tmp_path,
                         env=app_env(tmp_path, PARACLIP_APP_MAX_JOBS="abc"), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "PARACLIP_APP_MAX_JOBS" in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and not (tmp_path / "app").exists()


def test_gradios_per_event_monitoring_summary_is_refreshed_rarely_unless_the_owner_says(monkeypatch):
    """Issue 22 §9: Gradio rebuilt a pandas summary of up to 10,000 past events after every event."""
    import gradio as gr

    from workbench.serving import apply_gradio_defaults

    environ = {"GRADIO_ANALYTICS_CACHE_FREQUENCY": "7"}
    apply_gradio_defaults(environ)
    assert environ["GRADIO_ANALYTICS_CACHE_FREQUENCY"] == "7"  # the owner's value wins
    monkeypatch.setenv("GRADIO_ANALYTICS_CACHE_FREQUENCY", "")  # so that teardown restores what was there
    monkeypatch.delenv("GRADIO_ANALYTICS_CACHE_FREQUENCY")
    apply_gradio_defaults()
    with gr.Blocks() as demo:
        gr.Button().click(lambda: None)
    demo.queue()
    queue = demo._queue
    assert queue.ANAYLTICS_CACHE_FREQUENCY >= 1000  # Gradio's own attribute (sic): what its queue obeys
