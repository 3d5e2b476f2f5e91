"""Explore's robustness sweep handler, called directly with the app's default models and gallery."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from workbench import robustness

from .browser import needs_chromium, open_tab, shot


def test_sweep_over_both_explore_models(services):
    models = services.model_labels()[:2]
    gallery = next(iter(services.defaults.gallery_choices()))
    paraphrases = "a pair of red circles to the left of a blue square\n\ntwo crimson discs beside a navy box\n" \
                  "red circles, two of them, left of one blue square"
    fig, summary, note = robustness.sweep(services, models[0], models[1], gallery,
                                          "two red circles left of a blue square", paraphrases, 5)
    assert isinstance(fig, go.Figure) and [t.name for t in fig.data].count("worst") == 2
    assert set(summary["model"]) == set(models) and set(summary["metric"]) == {"AO@5", "JS@5"}
    assert (summary["worst"] <= summary["mean"]).all() and (summary["n"] == 3).all()
    assert note.count("images in every top-5 list") == 2

    fig, summary, note = robustness.sweep(services, models[0], None, gallery, "a query", "", 5)
    assert summary.empty and "one per line" in fig.layout.annotations[0].text
    _, _, note = robustness.sweep(services, "no-such-model-xyz", None, gallery, "a", "b", 5)
    assert note.startswith("❌")
    _, _, note = robustness.sweep(services, models[0], None, gallery, "a", "\n".join(map(str, range(60))), 5)
    assert "at most 50" in note


@needs_chromium
@pytest.mark.slow
@pytest.mark.browser
def test_sweep_in_the_browser(launched, browser):
    from playwright.sync_api import expect

    _, url = launched
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto(url)
    open_tab(page, "Explore")
    page.locator("#explore-query textarea").fill("two red circles left of a blue square")
    page.get_by_text("Robustness sweep: many paraphrases of the query").click()
    page.locator("#explore-sweep-paraphrases textarea").fill(
        "a pair of red circles to the left of a blue square\ntwo crimson discs beside a navy box")
    page.locator("#explore-sweep").click()
    # the first sweep may embed the gallery under both models
    expect(page.get_by_text("images in every top-8 list").first).to_be_visible(timeout=120_000)
    expect(page.locator("#explore-sweep-plot .js-plotly-plot")).to_be_attached(timeout=30_000)
    shot(page, "explore-sweep")
    page.close()
