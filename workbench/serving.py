"""Serving the app (``python app.py``, ``paraclip app``): settings checked first, and a prompt stop.

Every environment setting is checked before anything is built (:mod:`workbench.settings`): a bad
one prints its message and exits with status 2. On Ctrl-C or SIGTERM the app stops within
``STOP_S``: its training jobs get SIGTERM (they checkpoint at their next step) and are marked
``interrupted`` so the history can resume them — unless the owner set ``PARACLIP_APP_KEEP_JOBS=1``,
which the start message says — then the server closes, and the process exits even if a worker
thread is still busy (a request stuck in a model call must not keep a stopped app alive).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from typing import Any

from workbench import settings

STOP_S = 2.0  # from the signal to the process gone


def checked_settings(host: str | None, port: int | None) -> dict[str, Any]:
    """The settings, or exit 2 with the message (``host``/``port`` given on the command line win)."""
    try:
        values = settings.check_all()
        if port is not None:
            values["GRADIO_SERVER_PORT"] = settings.parse_port(str(port))
    except settings.SettingsError as exc:
        print(f"paraclip app: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except ValueError as exc:
        print(f"paraclip app: --port {port}: {exc}.", file=sys.stderr)
        raise SystemExit(2) from None
    if host:
        values["GRADIO_SERVER_NAME"] = host
    return values


def stop(demo, keep_jobs: bool) -> None:
    """Interrupt the jobs (unless kept), then close the server within what is left of ``STOP_S``."""
    runner = demo.services.runner
    if keep_jobs:
        print("paraclip app: stopping; training jobs keep running (PARACLIP_APP_KEEP_JOBS=1)", flush=True)
    else:
        jobs = runner.interrupt_all()
        print(f"paraclip app: stopping; {len(jobs)} training job(s) interrupted (resume them from the history)",
              flush=True)
    demo.services.close()  # comparisons' worker processes end with the app
    closer = threading.Thread(target=demo.close, daemon=True, name="paraclip-app-close")
    closer.start()
    closer.join(STOP_S / 2)


def apply_torch_threads(values: dict[str, Any]) -> None:
    """Set the app's torch threads (``PARACLIP_APP_TORCH_THREADS``; 0 keeps torch's one per core) before any
    model loads: concurrent visitors are the parallelism, not torch's per-op threads."""
    if values["PARACLIP_APP_TORCH_THREADS"]:
        import torch

        torch.set_num_threads(values["PARACLIP_APP_TORCH_THREADS"])


#: Gradio's queue re-computes its monitoring summary (a pandas frame of up to 10,000 past events, grouped)
#: after every event unless told otherwise: 6.7 ms per event after 300 events, 17 ms after 10,000, which was
#: 15 % of the server's busy time in the Explore load bench (issue 22 §9). This app does not enable Gradio's
#: monitoring page, so the summary is refreshed every 1000 events; an owner's own value wins.
GRADIO_QUEUE_DEFAULTS = {"GRADIO_ANALYTICS_CACHE_FREQUENCY": "1000"}


def apply_gradio_defaults(environ=os.environ) -> None:
    """Set :data:`GRADIO_QUEUE_DEFAULTS` where the owner has not (before the queue is built)."""
    for name, value in GRADIO_QUEUE_DEFAULTS.items():
        environ.setdefault(name, value)


def serve(host: str | None = None, port: int | None = None, share: bool = False, **kwargs: Any):
    """Build and launch the app; returns (exit status 0) after a stop signal."""
    values = checked_settings(host, port)
    apply_torch_threads(values)
    apply_gradio_defaults()
    from workbench.app import build_demo, launch_kwargs

    demo = build_demo()
    demo.services.warm_worker_processes()
    # The built app is ≈ 360,000 long-lived objects (gradio, torch, plotly, the page): a full garbage
    # collection walked them all, 357 ms holding the GIL, stalling every request in flight. Frozen,
    # collections walk only what requests allocate (issue 22 §9).
    gc.freeze()
    demo.queue(default_concurrency_limit=4, max_size=64)
    keep = values["PARACLIP_APP_KEEP_JOBS"]
    stopping = threading.Event()
    if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
    demo.launch(server_name=values["GRADIO_SERVER_NAME"], server_port=values["GRADIO_SERVER_PORT"], share=share,
                prevent_thread_lock=True, **{**launch_kwargs(demo.services), **kwargs})
    print("paraclip app: on Ctrl-C or SIGTERM, training jobs " +
          ("keep running (PARACLIP_APP_KEEP_JOBS=1)." if keep else "checkpoint and are marked interrupted "
                                                                  "(PARACLIP_APP_KEEP_JOBS=1 keeps them running)."),
          flush=True)
    while not stopping.wait(0.5):  # a timed wait, so the signal handler runs promptly
        pass
    stop(demo, keep)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # worker threads (a request in a model call, the defaults builder) must not hold the exit
