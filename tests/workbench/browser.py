"""Helpers for the browser tests: headless Debian Chromium, screenshots, Gradio widgets."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
# screenshots go to a temporary folder unless a developer asks for them somewhere (tests write nowhere else)
SHOTS = Path(os.environ.get("PARACLIP_TEST_SHOTS") or Path(tempfile.gettempdir()) / "paraclip-test-shots")

needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                    reason=f"Debian chromium not installed at {CHROMIUM} (apt-get install chromium; "
                                           f"scripts/setup.sh --dev does it)")


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"workbench-{name}.png"), full_page=True)


def table_rows(page, selector: str) -> int:
    """Data rows of a gr.Dataframe (its grid's aria-rowcount counts the header row too)."""
    count = page.locator(f"{selector} [role=grid]").first.get_attribute("aria-rowcount")
    return int(count or 1) - 1


def choose(page, selector: str, option: str):
    """Pick ``option`` in the gr.Dropdown ``selector``."""
    page.locator(f"{selector} input[role=combobox]").click()
    page.get_by_role("option", name=option, exact=True).click()


def open_tab(page, name: str):
    """Click a tab; on a narrow screen Gradio folds some tabs into a ⋯ menu first."""
    page.get_by_role("tab").first.wait_for()
    tab = page.get_by_role("tab", name=name)
    if tab.is_visible():
        tab.click()
        return
    page.get_by_role("button", name="More tabs").click()
    page.get_by_role("button", name=name, exact=True).click()
