"""The core actions as a visitor does them, in headless Chromium against one launched app:
Stop, review, Paraphrase → Train, a 3-model Compare without clipped labels, and a 400 px phone.

Paraphrases come from local OpenAI-compatible servers started by the tests (one answers slowly,
so that Stop lands mid-run); screenshots go to $PARACLIP_TEST_SHOTS (default: a temporary folder).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid

import pytest

from .browser import choose, needs_chromium, open_tab, shot, table_rows
from .plot_geometry import page_label_problems

# slow as a whole: each test drives Chromium through the launched app (~20-155 s at load ~10 on 2 cores, the
# 400 px Explore check ~9 s), and leaving them all out spares a quick run the app launch and Chromium start
pytestmark = [needs_chromium, pytest.mark.slow]
CAPTIONS_BOX = "Captions (one per line, or CSV with image_id,caption)"


@pytest.fixture(scope="module")
def slow_server():
    from paraclip.testing.mock_server import Faults, MockChatServer

    with MockChatServer(Faults(latency=1.0)) as server:
        yield server


@pytest.fixture(autouse=True)
def _patient_expectations():
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # CI machines are slow and shared


def paraphrase_via_api(page, server, captions: str):
    """Fill the Paraphrase tab for the API backend at ``server`` and press Generate."""
    open_tab(page, "Paraphrase")  # the app opens on Explore
    page.get_by_label(CAPTIONS_BOX).fill(captions)
    page.get_by_label("OpenAI-compatible API").check()
    page.get_by_label("Base URL").fill(server.base_url)
    page.get_by_label("Model", exact=True).fill("mock")
    page.locator("#paraphrase-run").click()


def fresh(n: int, with_ids: bool = True) -> str:
    """``n`` captions never sent before (the app caches requests)."""
    tag = uuid.uuid4().hex[:6]
    lines = [f"a red circle {tag} left of a blue square number {i}" for i in range(n)]
    if with_ids:
        return "image_id,caption\n" + "\n".join(f"cap-{i:03d},{line}" for i, line in enumerate(lines))
    return "\n".join(lines)


def test_stop_shows_the_finished_rows_and_the_server_goes_quiet(launched, browser, slow_server):
    from playwright.sync_api import expect

    _, url = launched
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    paraphrase_via_api(page, slow_server, fresh(120))
    expect(page.locator("#paraphrase-table")).to_contain_text("A photo depicting")  # rows appear while it runs
    page.locator("#paraphrase-stop").click()
    pressed = time.monotonic()
    expect(page.locator("#paraphrase-status")).to_contain_text("⏹ stopped:", timeout=15_000)
    stopped_after = time.monotonic() - pressed
    rows = table_rows(page, "#paraphrase-table")
    assert 0 < rows < 120, rows
    expect(page.locator("#paraphrase-files")).to_contain_text(".jsonl")
    status = page.locator("#paraphrase-status").inner_text()
    assert re.search(rf"\b{rows} of 120 captions done", status), status
    sent = slow_server.counts["requests"]
    # the run's worker and its request pool (the app runs in this process): once they have ended, nothing
    # is left that could send a request, so an unchanged count is proof, with no waiting window
    for thread in threading.enumerate():
        if thread.name.startswith(("paraclip-wb-paraphrase", "paraclip-paraphrase")):
            thread.join(timeout=10)
            assert not thread.is_alive(), f"{thread.name} still working 10 s after Stop"
    assert slow_server.counts["requests"] == sent, "requests went on after Stop"
    assert stopped_after < 10, stopped_after
    shot(page, "stop-1400")
    page.close()


def test_review_stores_what_was_chosen_and_a_new_run_clears_the_boxes(launched, browser, chat_server, services):
    from playwright.sync_api import expect

    _, url = launched
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    paraphrase_via_api(page, chat_server, fresh(4))
    expect(page.locator("#paraphrase-status")).to_contain_text("✅")
    table = page.locator("#paraphrase-table")
    table.get_by_test_id("cell-0-2").click()
    expect(page.locator("#review-index input")).to_have_value("0")
    expect(page.locator("#review-p1 textarea")).to_have_value(re.compile("An image showing"))
    choose(page, "#review-choice", "rejected")
    page.locator("#review-apply").click()
    expect(page.locator("#paraphrase-status")).to_contain_text("row 0 → rejected")
    table.get_by_test_id("cell-1-2").click()
    expect(page.locator("#review-index input")).to_have_value("1")
    choose(page, "#review-choice", "accepted")
    page.locator("#review-apply").click()
    expect(page.locator("#paraphrase-status")).to_contain_text("row 1 → accepted")
    table.get_by_test_id("cell-2-2").click()
    expect(page.locator("#review-index input")).to_have_value("2")
    page.locator("#review-p1 textarea").fill("a scarlet disc left of a blue square")
    page.locator("#review-apply").click()
    expect(page.locator("#paraphrase-status")).to_contain_text("row 2 → edited (corrected paraphrase_1)")
    shot(page, "review-1400")
    hrefs = [a.get_attribute("href") or "" for a in page.locator("#paraphrase-files a").all()]
    name = next(re.search(r"(paraphrases-\w+\.jsonl)", h).group(1) for h in hrefs if re.search(r"\.jsonl", h))
    jsonl = next(services.config.work_root.rglob(name))  # the file the page offers for download
    reviews = {r["index"]: r for r in map(json.loads, jsonl.read_text(encoding="utf-8").splitlines())}
    assert [reviews[i]["review"] for i in range(4)] == ["rejected", "accepted", "edited", "unreviewed"]
    assert reviews[0]["paraphrase_1"].startswith("An image showing") and "original" not in reviews[0]
    assert reviews[2]["paraphrase_1"] == "a scarlet disc left of a blue square"
    # a new run empties the review boxes: the old row can never be written into the new file
    paraphrase_via_api(page, chat_server, fresh(2))
    expect(page.locator("#review-p1 textarea")).to_have_value("")
    expect(page.locator("#review-index input")).to_have_value("")
    expect(page.locator("#paraphrase-status")).to_contain_text("✅")
    page.close()


def test_paraphrase_to_train_says_why_up_front_and_the_example_data_starts(launched, browser, chat_server, services):
    from playwright.sync_api import expect

    _, url = launched
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    paraphrase_via_api(page, chat_server, fresh(3, with_ids=False))
    expect(page.locator("#paraphrase-status")).to_contain_text("✅")
    page.get_by_role("button", name="Send to Train →").click()
    expect(page.get_by_label("Paraphrase JSONL (filled by “Send to Train”)")).to_have_value(re.compile(r"\.jsonl$"))
    jobs_before = len(services.runner.list())
    pressed = time.monotonic()
    page.locator("#train-start").click()
    message = page.locator("#train-message")
    expect(message).to_contain_text("no image id", timeout=15_000)
    assert time.monotonic() - pressed < 10
    expect(message).to_contain_text("Use text-only losses")
    expect(message).to_contain_text("Use the example data")
    assert len(services.runner.list()) == jobs_before
    shot(page, "train-refused-1400")
    page.locator("#train-example").click()
    expect(message).to_contain_text("Example data:")
    page.get_by_label("steps").fill("3")
    page.get_by_label("batch size (global)").fill("8")
    page.get_by_label("Job name (optional)").fill("example-job")
    page.locator("#train-start").click()
    expect(message).to_contain_text("started job")
    expect(page.locator("#train-job-status")).to_contain_text("example-job")
    shot(page, "train-example-1400")
    services.runner.cancel_all()  # started is what this test is about; the CPU is wanted elsewhere
    page.close()


def test_compare_with_three_models_has_no_clipped_labels_at_1400_and_400_px(launched, browser, services, tmp_path):
    from playwright.sync_api import expect

    from paraclip.models.loading import save_random_init
    from workbench.defaults import FALLBACK_ARCH

    third = tmp_path / "third-mini.pt"
    save_random_init(FALLBACK_ARCH, 2, third)
    models = services.model_labels()[:2]
    _, url = launched
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    open_tab(page, "Compare")
    choose(page, "#compare-baseline", models[0])
    others = page.locator("#compare-others input[role=combobox]")
    others.fill(f"{FALLBACK_ARCH}@{third}")
    others.press("Enter")
    expect(page.locator("#compare-others")).to_contain_text("third-mini.pt")
    page.locator("#compare-run").click()
    expect(page.locator("#compare-status")).to_contain_text("✅", timeout=300_000)
    for slot in ("retrieval", "paraphrased", "sts", "forest", "scatter"):
        expect(page.locator(f"#compare-plot-{slot} .js-plotly-plot")).to_be_attached()
    expect(page.locator("#compare-results")).to_contain_text("AO@10")
    expect(page.locator("#compare-summary")).to_contain_text("(n = ")
    # the shipped defaults are trained mini-world models: STS-B lies outside their vocabulary
    expect(page.locator("#compare-notes")).to_contain_text("outside its training vocabulary")
    expect(page.locator("#compare-results")).to_contain_text("third-mini.pt")
    page.wait_for_timeout(1000)
    checked, problems = page_label_problems(page, "body")
    assert checked >= 5 and not problems, problems
    shot(page, "compare-3-models-1400")
    page.set_viewport_size({"width": 400, "height": 900})
    page.wait_for_timeout(1500)  # plotly re-lays out on resize
    checked, problems = page_label_problems(page, "body")
    assert checked >= 5 and not problems, problems
    summary = page.locator("#compare-summary").bounding_box()
    assert summary["x"] >= 0 and summary["x"] + summary["width"] <= 400 + 1
    assert "significant" in page.locator("#compare-summary").inner_text()
    shot(page, "compare-3-models-400")
    page.close()


def test_explore_is_usable_on_a_400_px_phone(launched, browser):
    from playwright.sync_api import expect

    _, url = launched
    page = browser.new_page(viewport={"width": 400, "height": 900})
    page.goto(url)
    open_tab(page, "Explore")
    page.locator("#explore-query textarea").fill("two red circles left of a blue square")
    page.locator("#explore-paraphrase textarea").fill("a pair of red circles to the left of a blue square")
    page.locator("#explore-search").click()
    expect(page.locator("#explore-results .pc-panel")).to_have_count(2)
    for panel in page.locator("#explore-results .pc-panel").all():
        box = panel.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 400 + 1, box
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 401, f"the page scrolls sideways at 400 px ({width} px wide)"
    shot(page, "explore-400")
    page.close()
