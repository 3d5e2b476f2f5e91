"""The app in headless Chromium: every tab clicked through, screenshots in $PARACLIP_TEST_SHOTS
(default: a temporary folder).

Paraphrases come from a local OpenAI-compatible server started by the test; training is a real
subprocess on the untrained mini model; the job must still be listed after an app restart.
"""

from __future__ import annotations

import re

import pytest

from .browser import needs_chromium, shot

# slow as a whole: both tests drive Chromium through a real app (~30-280 s at load ~10 on 2 cores)
pytestmark = [needs_chromium, pytest.mark.slow]


def test_click_through_every_tab(launched, browser, chat_server, services):
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # assertions wait like actions do; CI machines are slow and shared

    demo, url = launched
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(url)
    expect(page.locator("#pc-banner")).to_contain_text("Default models")
    page.get_by_role("tab", name="Paraphrase").click()  # the app opens on Explore

    # -- Paraphrase: a gallery's captions through the two steps, via the local API server
    # galleries appear once the offline defaults are prepared: retry the button until it fills the box
    captions_box = page.get_by_label("Captions (one per line, or CSV with image_id,caption)")
    for _ in range(60):
        page.get_by_role("button", name="Load gallery captions").click()
        try:
            expect(captions_box).to_have_value(re.compile(r"^image_id,caption\n"), timeout=3_000)
            break
        except AssertionError:
            continue
    expect(captions_box).to_have_value(re.compile(r"^image_id,caption\n"))
    page.get_by_label("OpenAI-compatible API").check()
    page.get_by_label("Base URL").fill(chat_server.base_url)
    page.get_by_label("Model", exact=True).fill("mock")
    page.get_by_label("Paraphrase at most N captions (0 = all)").fill("16")
    page.locator("#paraphrase-run").click()
    expect(page.locator("#paraphrase-status")).to_contain_text("✅", timeout=120_000)
    expect(page.locator("#paraphrase-table")).to_contain_text("A photo depicting")
    shot(page, "1-paraphrase")

    # -- Train: send the paraphrases over, start a job, see its curve, cancel it
    page.get_by_role("button", name="Send to Train →").click()
    expect(page.get_by_label("Paraphrase JSONL (filled by “Send to Train”)")).to_have_value(
        re.compile(r".*paraphrases-.*\.jsonl"))
    page.get_by_label("steps").fill("5000")
    page.get_by_label("batch size (global)").fill("8")
    page.get_by_label("Job name (optional)").fill("browser-job")
    page.locator("#train-start").click()
    expect(page.locator("#train-message")).to_contain_text("started job", timeout=60_000)
    expect(page.locator("#train-job-status")).to_contain_text("running")
    expect(page.locator("#train-curve .js-plotly-plot .scatterlayer .trace").first).to_be_attached(timeout=240_000)
    expect(page.locator("#train-job-status")).to_contain_text("step")
    shot(page, "2-train-running")
    page.locator("#train-cancel").click()
    expect(page.locator("#train-message")).to_contain_text("cancelling")
    expect(page.locator("#train-job-status")).to_contain_text("cancelled", timeout=90_000)
    expect(page.locator("#train-history")).to_contain_text("browser-job")
    shot(page, "3-train-cancelled")
    job = next(j for j in services.runner.list() if j.name == "browser-job")
    assert job.status == "cancelled"

    # -- Compare: the two default models on retrieval + STS-B, with plots
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-run").click()
    expect(page.locator("#compare-status")).to_contain_text("✅", timeout=180_000)
    expect(page.locator("#compare-plot-retrieval .js-plotly-plot .barlayer .trace").first).to_be_attached()
    expect(page.locator("#compare-results")).to_contain_text("retrieval")
    shot(page, "4-compare")

    # -- Explore: a query and its paraphrase, side by side
    page.get_by_role("tab", name="Explore").click()
    page.locator("#explore-query textarea").fill("two red circles left of a blue square")
    page.locator("#explore-paraphrase textarea").fill("a pair of red circles to the left of a blue square")
    page.locator("#explore-search").click()
    expect(page.locator("#explore-results .pc-panel")).to_have_count(2)
    expect(page.locator("#explore-results")).to_contain_text("AO@8")
    expect(page.locator("#explore-heatmap .js-plotly-plot")).to_be_attached()
    shot(page, "5-explore")

    page.get_by_role("tab", name="About").click()
    expect(page.get_by_text("Fine-tuning CLIP Text Encoders with Two-step Paraphrasing").first).to_be_visible()
    shot(page, "6-about")
    page.close()


def test_a_restarted_app_lists_the_job_history(services, browser):
    """A second app process (new Services and JobRunner over the same folder) shows earlier jobs."""
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # assertions wait like actions do; CI machines are slow and shared

    from workbench.app import build_demo, launch_kwargs
    from workbench.services import AppConfig, Services

    from tests.local_http import free_port

    if not services.runner.list():
        services.runner.start("demo", "before-restart", ["/bin/true"])
    names = [j.name for j in services.runner.list()]
    fresh = Services(AppConfig(app_dir=services.config.app_dir, gallery_size=24, build_defaults=False))
    demo = build_demo(fresh)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **launch_kwargs(fresh))
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_role("tab", name="Train").click()
        expect(page.locator("#train-history")).to_contain_text(names[0], timeout=30_000)
        shot(page, "7-restarted-history")
        page.close()
    finally:
        demo.close()
