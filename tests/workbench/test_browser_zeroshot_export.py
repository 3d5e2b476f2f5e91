"""Compare's zero-shot classification and the Train tab's Export in headless Chromium at 1400 and 400 px:
the three CLIP_benchmark metrics show with CIs in a readable plot, and a finished job's zip is offered."""

from __future__ import annotations

import io
import re
import time
import uuid
import zipfile

import pytest

from .browser import choose, needs_chromium, open_tab, shot
from .plot_geometry import page_label_problems

pytestmark = [needs_chromium, pytest.mark.slow]


@pytest.fixture(scope="module")
def finished_job(services):
    """A succeeded training job in the app's real job table, with a tiny final checkpoint."""
    import open_clip

    from paraclip.jobs import Job
    from paraclip.models.checkpoint import save_checkpoint
    from paraclip.models.loading import register_project_configs

    register_project_configs()
    job_id = uuid.uuid4().hex[:8]
    job_dir = services.runner.root / job_id
    (job_dir / "run").mkdir(parents=True)
    save_checkpoint(job_dir / "run" / "final.pt", open_clip.create_model("paraclip-tiny").state_dict(), "paraclip-tiny",
                    name="browser-export", epoch=1, paraclip={"run_name": "browser-export", "step": 2})
    job = Job(id=job_id, kind="train", name="browser export", status="succeeded", created=time.time(),
              command=["true"], job_dir=str(job_dir), finished=time.time(), out_dir=str(job_dir / "run"))
    services.runner.store.add(job)
    return job


@pytest.mark.parametrize("width", [1400, 400])
def test_zero_shot_results_and_the_export_zip_read_at_each_width(launched, browser, services, finished_job, width):
    from playwright.sync_api import expect

    _, url = launched
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.set_default_timeout(90_000)
    page.goto(url)
    open_tab(page, "Compare")
    for label in ("zero-shot retrieval (gallery)", "paraphrased retrieval AO@k / JS@k (gallery + pairs)",
                  "STS-B (offline)"):
        page.get_by_label(label).uncheck()
    page.get_by_label("zero-shot classification (labelled images)").check()
    page.get_by_text("Data for zero-shot classification").click()
    choose(page, "#compare-dataset", "miniworld-count")
    page.locator("#compare-run").click()
    expect(page.locator("#compare-status")).to_contain_text("✅", timeout=300_000)
    expect(page.locator("#compare-results")).to_contain_text("mean_per_class_recall")
    expect(page.locator("#compare-summary")).to_contain_text("zero-shot acc1")
    expect(page.locator("#compare-notes")).to_contain_text("acc5 needs at least five classes")
    expect(page.locator("#compare-plot-classification .js-plotly-plot")).to_be_attached()
    page.wait_for_timeout(1000)  # plotly lays out after it is attached
    checked, problems = page_label_problems(page, "#compare-plot-classification")
    assert checked and not problems, problems
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
    shot(page, f"compare-zeroshot-{width}")

    open_tab(page, "Train")
    choose(page, "#train-job", f"browser export · succeeded · {finished_job.id}")
    page.locator("#train-export").click()
    expect(page.locator("#train-export-message")).to_contain_text("✅", timeout=120_000)
    link = page.locator("#train-export-file a").first
    expect(link).to_have_attribute("href", re.compile(r"open_clip\.zip$"))
    download = page.request.get(link.get_attribute("href"))  # what the visitor's browser fetches
    assert download.ok
    names = zipfile.ZipFile(io.BytesIO(download.body())).namelist()
    assert sorted(names) == ["README.md", "open_clip_config.json", "open_clip_model.safetensors"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
    shot(page, f"train-export-{width}")
    page.close()
