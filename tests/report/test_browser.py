"""The report in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

Without Chromium or Playwright the test skips, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lbt_agents.report import write_report

CHROMIUM = os.environ.get("LBT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium's path; a skip (a failure under CI=true) without it or Playwright."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright (pip install playwright)")
    if not Path(CHROMIUM).is_file():
        missing.append("Chromium (apt-get install -y chromium)")
    if missing:
        reason = f"needs {' and '.join(missing)}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the browser test: it {reason}")
        pytest.skip(reason)
    return CHROMIUM


@pytest.mark.timeout(300)
def test_report_opens_in_chromium_with_plots_and_a_drilldown(
    chromium: str, runs: dict[str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    report = write_report([runs["m1"], runs["m3"]], tmp_path / "out")
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            page.goto(report.path.resolve().as_uri(), wait_until="load")

            assert page.locator("#summary tbody tr").count() == 2
            assert page.locator("#summary").inner_text().count("finished") == 2
            images = page.locator("img.plot")
            assert sorted(images.evaluate_all("els => els.map(e => e.dataset.file)")) == pngs and len(pngs) >= 8
            widths = images.evaluate_all("els => els.map(e => e.complete ? e.naturalWidth : 0)")
            assert all(w > 0 for w in widths), widths

            tp = page.locator("details.tp").first
            assert tp.get_attribute("open") is None and not tp.locator("table").first.is_visible()
            tp.locator("summary").first.click()
            assert tp.get_attribute("open") is not None
            assert tp.locator("table").first.is_visible() and "why it won" in tp.inner_text()
        finally:
            browser.close()
    assert errors == []
