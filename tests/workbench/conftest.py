"""Shared fixtures for the app tests: one Services per session (the shipped trained models and gallery
from assets/; the untrained fallback and a small rendered gallery only if assets/ is missing), a local
OpenAI-compatible server, and a launched app."""

from __future__ import annotations

import pytest

from tests.local_http import free_port


@pytest.fixture(scope="session")
def app_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("workbench-app")


@pytest.fixture(scope="session")
def services(app_dir):
    from workbench.services import AppConfig, Services

    services = Services(AppConfig(app_dir=app_dir, gallery_size=24, build_defaults=False, max_jobs=2, poll_s=1.0))
    services.defaults.start()
    assert services.defaults.wait(300), "default models were not ready in time"
    assert services.defaults.model_choices(), services.defaults.message
    yield services
    services.runner.cancel_all()
    services.close()  # its comparisons' worker process ends with it


@pytest.fixture(scope="session")
def chat_server():
    from paraclip.testing.mock_server import MockChatServer

    with MockChatServer() as server:
        yield server


@pytest.fixture(scope="session")
def launched(services):
    """The app served on 127.0.0.1 (a real HTTP server), shared by the client and browser tests."""
    from workbench.app import build_demo, launch_kwargs

    demo = build_demo(services)
    demo.queue(default_concurrency_limit=4)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_kwargs(services))
    yield demo, f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for every browser test (each opens its own pages)."""
    from playwright.sync_api import sync_playwright

    from .browser import ARGS, CHROMIUM

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()
