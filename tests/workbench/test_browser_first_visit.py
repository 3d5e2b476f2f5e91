"""What a first-time visitor meets, in headless Chromium at 1400 px and on a 400 px phone: Explore
opens with a searched example and says what ParaCLIP and the demo models are; out-of-vocabulary
queries are flagged; Paraphrase says which local model runs and its table reads on a phone; Compare
runs the tasks it can; training curves are two readable plots.

Screenshots go to $PARACLIP_TEST_SHOTS (default: a temporary folder).
"""

from __future__ import annotations

import json
import sys

import pytest

from .browser import needs_chromium, open_tab, shot
from .plot_geometry import page_label_problems

pytestmark = [needs_chromium, pytest.mark.slow]
WIDTHS = [1400, 400]


@pytest.fixture(autouse=True)
def _patient_expectations():
    from playwright.sync_api import expect

    expect.set_options(timeout=90_000)  # CI machines are slow and shared


def open_page(browser, url, width):
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.set_default_timeout(90_000)
    page.goto(url)
    return page


def no_sideways_scroll(page, width):
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width + 1, f"the page scrolls sideways at {width} px ({scroll} px wide)"


def label_badge_over_title(page, selector) -> bool:
    """Whether Gradio's label badge of the plot ``selector`` is drawn over the figure's title."""
    title = page.locator(f"{selector} .gtitle").first.bounding_box()
    for badge in page.locator(f"{selector} [data-testid=block-label]").all():
        box = badge.bounding_box() if badge.is_visible() else None
        if box and title and min(box["x"] + box["width"], title["x"] + title["width"]) > max(box["x"], title["x"]) \
                and min(box["y"] + box["height"], title["y"] + title["height"]) > max(box["y"], title["y"]):
            return True
    return False


def readable_plots(page, selector):
    count, problems = page_label_problems(page, selector)
    assert count >= 1 and not problems, problems


@pytest.mark.parametrize("width", WIDTHS)
def test_explore_opens_with_a_searched_example_and_flags_unknown_words(launched, browser, width):
    from playwright.sync_api import expect

    _, url = launched
    page = open_page(browser, url, width)
    expect(page.get_by_role("tab", name="Explore")).to_have_attribute("aria-selected", "true")
    intro = page.locator("#explore-intro")
    expect(intro).to_contain_text("fine-tunes CLIP's text encoder")
    expect(intro).to_contain_text("toy world of coloured shapes")
    expect(intro).to_contain_text("ViT-B-32@openai")
    # searched on load, without a click: both models' top-k lists and the rank metrics
    expect(page.locator("#explore-query textarea")).to_have_value("three large red striped squares")
    expect(page.locator("#explore-results .pc-panel")).to_have_count(2)
    expect(page.locator("#explore-results")).to_contain_text("AO@8")
    expect(page.locator("#explore-heatmap .js-plotly-plot .hm").first).to_be_attached()
    expect(page.locator("#explore-results .pc-warn")).to_have_count(0)  # the example is in vocabulary
    readable_plots(page, "#explore-heatmap")
    assert not label_badge_over_title(page, "#explore-heatmap")
    no_sideways_scroll(page, width)
    shot(page, f"first-visit-explore-{width}")

    page.locator("#explore-query textarea").fill("a fire hydrant on a city sidewalk")
    page.locator("#explore-paraphrase textarea").fill("a red hydrant next to the street")
    page.locator("#explore-search").click()
    warning = page.locator("#explore-results .pc-warn")
    expect(warning).to_have_count(1)
    expect(warning).to_contain_text("Out of vocabulary")
    expect(warning).to_contain_text("“hydrant”")
    expect(page.locator("#explore-results .pc-panel")).to_have_count(2)
    no_sideways_scroll(page, width)
    shot(page, f"first-visit-explore-oov-{width}")
    page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_paraphrase_says_which_model_runs_and_the_table_reads_at_each_width(launched, browser, chat_server, width):
    from playwright.sync_api import expect

    _, url = launched
    page = open_page(browser, url, width)
    open_tab(page, "Paraphrase")
    expect(page.locator("#paraphrase-model")).to_contain_text("Local model")
    captions = "image_id,caption\n" + "\n".join(
        f"img-{width}-{i},a large red striped square next to {i} small blue circles" for i in range(3))
    page.get_by_label("Captions (one per line, or CSV with image_id,caption)").fill(captions)
    page.get_by_label("OpenAI-compatible API").check()
    page.get_by_label("Base URL").fill(chat_server.base_url)
    page.get_by_label("Model", exact=True).fill("mock")
    page.locator("#paraphrase-run").click()
    expect(page.locator("#paraphrase-status")).to_contain_text("✅")
    wide, narrow = page.locator("#paraphrase-table"), page.locator("#paraphrase-table-narrow")
    if width >= 1400:
        expect(wide).to_be_visible()
        expect(narrow).to_be_hidden()
        expect(wide).to_contain_text("image_id")
    else:
        expect(wide).to_be_hidden()
        expect(narrow).to_be_visible()
        expect(narrow).to_contain_text("An image showing a large red striped square")
        headers = [h.strip() for h in narrow.locator("[role=columnheader]").all_inner_texts()]
        assert headers[:3] == ["caption", "paraphrases", "check"], headers
        # readable: the texts wrap at 15+ characters a line, not 4
        cell = narrow.locator("[role=gridcell]").nth(1).bounding_box()
        assert cell["width"] >= 120, cell
        narrow.locator("[role=gridcell]").nth(1).click()
        expect(page.locator("#review-p1 textarea")).to_have_value("An image showing a large red striped square "
                                                                   "next to 0 small blue circles.")
    no_sideways_scroll(page, width)
    shot(page, f"first-visit-paraphrase-{width}")
    page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_runs_the_tasks_it_can_and_says_what_the_others_need(launched, browser, monkeypatch, width):
    from playwright.sync_api import expect

    monkeypatch.delenv("PARACLIP_ARO_DIR", raising=False)
    _, url = launched
    page = open_page(browser, url, width)
    open_tab(page, "Compare")
    page.get_by_label("zero-shot retrieval (gallery)").uncheck()
    page.get_by_label("paraphrased retrieval AO@k / JS@k (gallery + pairs)").uncheck()
    page.get_by_label("VG-Relation (ARO data)").check()
    page.locator("#compare-run").click()
    expect(page.locator("#compare-status")).to_contain_text("✅", timeout=300_000)
    expect(page.locator("#compare-status")).to_contain_text("1 skipped")
    notes = page.locator("#compare-notes")
    expect(notes).to_contain_text("vg-relation skipped")
    expect(notes).to_contain_text("visual_genome_relation.json")
    expect(page.locator("#compare-results")).to_contain_text("STSB")
    page.get_by_text("Data for VG-Relation / VG-Attribution (ARO)").click()
    expect(page.locator("#compare-aro-upload")).to_be_visible()
    readable_plots(page, "#compare-plot-sts")
    no_sideways_scroll(page, width)
    shot(page, f"first-visit-compare-{width}")
    page.close()


@pytest.fixture(scope="module")
def curves_job(services, tmp_path_factory):
    """A finished job whose metrics look like ``paraclip train``'s: batch losses and held-out validation."""
    out = tmp_path_factory.mktemp("curves-job")
    rows = []
    for step in range(0, 41, 2):
        rows.append({"step": step, "loss": 3 - step / 20, "loss_l1": 1 - step / 60, "loss_l2": 1 - step / 80,
                     "loss_l3": 1 - step / 90, "lr": 1e-4, "seconds": 0.1})
        if step % 10 == 0 and step:
            rows.append({"step": step, "val_seconds": 1.0, "val_heldout_loss": 2.9 - step / 25,
                         "val_heldout_loss_l1": 0.95, "val_heldout_loss_l2": 0.9, "val_heldout_loss_l3": 0.85,
                         "val_heldout_r1_paraphrase_1": 20 + step, "val_heldout_r1_paraphrase_2": 15 + step,
                         "val_heldout_ao10": 40 + step / 2, "val_heldout_js10": 30 + step / 2})
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    job = services.runner.start("train", "curves-job", [sys.executable, "-c", "pass"], out_dir=out,
                                config={"steps": 40})
    return job


@pytest.mark.parametrize("width", WIDTHS)
def test_training_curves_are_two_readable_plots(launched, browser, services, curves_job, width):
    from playwright.sync_api import expect

    _, url = launched
    page = open_page(browser, url, width)
    open_tab(page, "Train")
    page.locator("#train-job input[role=combobox]").click()
    page.get_by_role("option", name="curves-job · ", exact=False).first.click()
    loss, validation = page.locator("#train-curve"), page.locator("#train-validation")
    expect(loss.locator(".js-plotly-plot .scatterlayer .trace")).to_have_count(8)
    expect(validation.locator(".js-plotly-plot .scatterlayer .trace")).to_have_count(4)
    expect(loss.locator(".gtitle")).to_contain_text("Loss: curves-job")
    expect(validation.locator(".gtitle")).to_contain_text("Validation: curves-job")
    for plot in ("#train-curve", "#train-validation"):
        readable_plots(page, plot)
        assert not label_badge_over_title(page, plot)
        # the data area keeps most of the figure's height (not an 80 px strip under a legend)
        area = page.locator(f"{plot} .nsewdrag").first.bounding_box()
        assert area["height"] >= 200, (plot, area)
    no_sideways_scroll(page, width)
    shot(page, f"first-visit-train-{width}")
    page.close()
