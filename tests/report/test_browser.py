"""The report in a real browser: headless Chromium loads it from disk with no console errors,
every figure decodes, the sections are there, and hostile data renders as text.

Needs Chromium (Debian's ``chromium``; ``.ci/run`` installs it) and Playwright's Python driver.
``CAM_HARNESS_REPORT`` names an extra report to check, e.g. the smoke report in CI.
"""
import copy
import json
import os
import shutil
from pathlib import Path

import pytest

from harness.report import render_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="Chromium is not installed")]
FIXTURE = json.loads((Path(__file__).parent.parent / "gate" / "fixtures" / "results_small.json").read_text())
EVIL = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM, "CI must install Chromium (apt-get install chromium)"
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def open_report(browser, path: Path):
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, errors, requests


def check_report(browser, path: Path):
    page, errors, requests = open_report(browser, path)
    assert errors == []
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    for section in ("summary", "environment", "model", "agreement", "latency", "localization", "gallery"):
        assert page.locator(f"section#{section}").count() == 1
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.alt])")
    assert images, "the report has figures"
    assert all(done and width > 0 for done, width, _ in images), images
    page.close()
    return images


def test_fixture_report_loads_cleanly(browser, tmp_path):
    check_report(browser, render_report(FIXTURE, tmp_path))


def test_hostile_dataset_name_renders_as_text(browser, tmp_path):
    doc = copy.deepcopy(FIXTURE)
    doc["localization"]["dataset"] = EVIL
    page, errors, _ = open_report(browser, render_report(doc, tmp_path))
    assert page.evaluate("window.__pwned === undefined")
    assert EVIL in page.inner_text("section#localization")
    assert page.locator("section#localization img[src=x]").count() == 0
    page.close()


@pytest.mark.skipif(not os.environ.get("CAM_HARNESS_REPORT"), reason="CAM_HARNESS_REPORT names no report")
def test_named_report_loads_cleanly(browser):
    images = check_report(browser, Path(os.environ["CAM_HARNESS_REPORT"]))
    assert any(alt.startswith("gallery") for _, _, alt in images)
