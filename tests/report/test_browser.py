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


def open_report(browser, path: Path, width: int = 1400):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, errors, requests


def layout(browser, path: Path) -> dict:
    """Page height at 1400 px with every fold closed, page width at 390 px, and the table of
    contents' links that lead nowhere."""
    out = {}
    for width in (1400, 390):
        page, errors, requests = open_report(browser, path, width)
        assert errors == [] and all(u.startswith(("file:", "data:")) for u in requests)
        assert page.evaluate("[...document.querySelectorAll('details')].every(d => !d.open)")
        out[width] = page.evaluate("[document.documentElement.scrollHeight, document.documentElement.scrollWidth]")
        out["dead_links"] = page.evaluate(
            "[...document.querySelectorAll('nav.toc a')].map(a => a.getAttribute('href'))"
            ".filter(h => !document.getElementById(h.slice(1)))")
        out["toc"] = page.locator("nav.toc a").count()
        page.close()
    return out


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


def test_a_phone_gets_no_page_scroll_and_the_contents_lead_somewhere(browser, tmp_path):
    doc = copy.deepcopy(FIXTURE)
    doc["agreement"]["pairs"][0]["a"] = "an_implementation_with_a_very_long_name_" * 3
    got = layout(browser, render_report(doc, tmp_path))
    assert got[390][1] <= 390, got
    assert got["toc"] >= 12 and got["dead_links"] == []


def test_the_gate_block_says_latency_was_not_gated_and_why(browser, tmp_path):
    doc = copy.deepcopy(FIXTURE)
    doc["gate"] = {"baseline": "baselines/smoke.json", "passed": True, "compared": 485, "failures": [], "notes": [],
                   "latency_gated": False, "machine_differences": ["cpu", "simd"]}
    page, _, _ = open_report(browser, render_report(doc, tmp_path))
    text = page.inner_text("section#gate")
    assert "Latency not gated" in text and "cpu, simd" in text
    assert "latency not gated" in page.inner_text("section#summary")
    page.close()


def test_an_ab_json_beside_the_results_lists_every_configuration(browser, tmp_path):
    rows = [{"impl": f"impl_{i}", "device": "cpu", "geometry": "seed", "batch": 1, "ratio": 1.0, "ci_low": 0.9,
             "ci_high": 1.1, "verdict": "same"} for i in range(7)]
    rows[3].update(verdict="same", first={"ratio": 1.4, "verdict": "slower"}, confirmed=False)
    (tmp_path / "ab.json").write_text(json.dumps({
        "kind": "ab", "schema_version": 1, "passed": True, "rows": rows, "skipped": [], "errors": [],
        "ratio_range": [1.0, 1.0], "base": {"rev": "abc123", "sha": "abc123" * 6}, "head": {"sha": "def456" * 6}}))
    page, errors, _ = open_report(browser, render_report(FIXTURE, tmp_path))
    assert errors == []
    assert "A/B" in page.inner_text("section#ab h2") and "abc123" in page.inner_text("section#ab")
    assert page.locator("#ab-rows tr").count() == 1 + 1  # the one not called the same at its first look
    assert "1.400 (slower)" in page.text_content("#ab-rows")
    href = page.get_attribute("a[download='ab_rows.csv']", "href")
    import base64
    assert base64.b64decode(href.split(",", 1)[1]).decode().count("\n") == len(rows) + 1  # every one in the CSV
    assert page.locator("#ab-undecided").count() == 0
    page.close()


@pytest.mark.parametrize("strict", [False, True])
def test_undecided_rows_are_named_in_the_ab_section_and_the_ci_status(browser, tmp_path, strict):
    """Issue 32: a row whose interval stayed too wide is ``undecided``: a warning, or with
    ``--strict`` a failure, named with its interval in the A/B section and counted in the CI line."""
    rows = [{"impl": "cv2_dot_resize", "device": "cpu", "geometry": "seed", "batch": 1, "ratio": 1.0, "ci_low": 0.97,
             "ci_high": 1.03, "verdict": "same"},
            {"impl": "tf_dot_resize", "device": "cpu", "geometry": "seed", "batch": 8, "ratio": 1.12, "ci_low": 0.84,
             "ci_high": 1.61, "verdict": "undecided", "rounds": 80, "factor": 1.2}]
    (tmp_path / "ab.json").write_text(json.dumps({
        "kind": "ab", "schema_version": 1, "passed": not strict, "strict": strict, "rows": rows, "skipped": [],
        "errors": [], "undecided": [rows[1]], "ratio_range": [1.0, 1.12], "base": {"rev": "abc123", "sha": "abc1" * 10},
        "head": {"sha": "def4" * 10}}))
    page, errors, _ = open_report(browser, render_report(FIXTURE, tmp_path))
    assert errors == []
    note = page.inner_text("#ab-undecided")
    assert "1 undecided" in note and "tf_dot_resize cpu seed b8 1.120 [0.840, 1.610] after 80 rounds" in note
    assert "1.20x slowdown" in note and ("--strict" in note)
    assert page.get_attribute("#ab-undecided", "class") == ("fail" if strict else "warn")
    assert "1 undecided" in page.inner_text("#verdict-ci")
    assert page.locator("#ab-rows tr.undecided").count() == 1
    page.close()


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
    """The smoke report of CI: a page a user reads in a minute (at most 6,000 px at 1400 px with
    the folds closed) and no page scroll on a phone."""
    path = Path(os.environ["CAM_HARNESS_REPORT"])
    doc = json.loads((path.parent / "results.json").read_text())
    images = check_report(browser, path)
    assert any(alt.startswith("gallery") for _, _, alt in images)
    got = layout(browser, path)
    # The budgets are for the 14 forms of issue 37; each further form adds a row and a column to
    # the matrix and a row to every per-implementation table (the 4 JAX forms: about 36 px closed,
    # 190 px open each). Faithfulness's table and curves added about 700 px open (issue 36). Each
    # Ship it row beyond the 18 float32 ones (issue 35's precisions) adds about 37 px there and its
    # served latency rows about 12 px to the latency section (measured: 1424 px for 34 rows; +195 px).
    # The latency stage's time budget decides which configurations are timed, so how many it lists
    # as skipped depends on the machine's speed: five always are (the seed zoom's four, one over
    # the memory budget); each further one is a row of about 24 px in that fold (measured: 8 Keras
    # eager served timings estimated at 6 s against the 6 s budget, 174 to 369 px).
    more = max(0, len(doc["agreement"]["conventions"]) - 14)
    ship_rows = len((doc["recommendation"].get("ship_it") or {}).get("rows", []))
    skipped_rows = len(doc["latency"].get("skipped", []))
    assert got[1400][0] <= 6000 + 40 * more, got
    assert got[390][1] <= 390, got
    assert got["dead_links"] == []
    check_verdict_card(browser, path)
    assert folds_open_height(browser, path) <= (15500 + 200 * more + 50 * max(0, ship_rows - 18)
                                                + 25 * max(0, skipped_rows - 5))
    assert wrapped_numbers(browser, path) == []
    ab = json.loads((path.parent / "ab.json").read_text()) if (path.parent / "ab.json").is_file() else {}
    clean = (not doc["recommendation"]["verdict"]["defects"]["found"] and doc.get("gate", {}).get("passed", True)
             and ab.get("passed", True))
    if clean:  # only known upstream defects: nothing is painted as a failure
        assert red_elements(browser, path) == []


def check_verdict_card(browser, path: Path) -> None:
    """The verdict card's four lines, above the fold at 1400 px, with the speed-up against the seed."""
    page, errors, _ = open_report(browser, path)
    assert errors == []
    for line in ("use", "ci", "wrong", "convention"):
        box = page.locator(f"#verdict-{line}").bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900, (line, box)
    assert "faster than the seed's own code" in page.inner_text("#verdict-use")
    page.close()


def folds_open_height(browser, path: Path) -> int:
    page, _, _ = open_report(browser, path)
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    height = page.evaluate("document.documentElement.scrollHeight")
    page.close()
    return height


def wrapped_numbers(browser, path: Path) -> list:
    """Numeric cells laid out on more than one line, at 1400 and 390 px with every fold open."""
    out = []
    for width in (1400, 390):
        page, _, _ = open_report(browser, path, width)
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        out += page.evaluate("""[...document.querySelectorAll('td.num')].filter(td => {
            const r = document.createRange(); r.selectNodeContents(td);
            return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size > 1;
        }).map(td => [td.innerText, td.closest('table').rows[0].innerText.slice(0, 40)])""")
        page.close()
    return out


def red_elements(browser, path: Path) -> list:
    """Elements drawn in red (text or background), with every fold open."""
    page, _, _ = open_report(browser, path)
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    found = page.evaluate("""[...document.querySelectorAll('body *')].filter(e => {
        const red = c => { const m = c.match(/\\d+/g); if (!m || (m.length > 3 && +m[3] === 0)) return false;
                           const [r, g, b] = m.map(Number); return r - Math.max(g, b) > 60; };
        const s = getComputedStyle(e); return e.innerText && (red(s.color) || red(s.backgroundColor));
    }).map(e => e.tagName + ': ' + e.innerText.slice(0, 60))""")
    page.close()
    return found


def test_the_verdict_card_and_the_tables_of_a_report_with_known_defects_only(browser, tmp_path):
    """The fixture with the smoke run's kind of findings (a known upstream defect met by the seed's
    form and a pair it puts in disagreement): the card's four lines above the fold, no numeric
    cell on two lines, and nothing red; a defect with no known cause is red."""
    from harness.recommend import recommend
    doc = copy.deepcopy(FIXTURE)
    agreement = doc["agreement"]
    pair = agreement["pairs"][0]
    pair.update(verdict="disagree", explanation=f"{pair['a']} does not match the oracle of its declared convention")
    agreement["findings"] = [{"input": pair["input"], "finding": "scipy.ndimage.zoom reads outside the grid from 7x7 "
                              "to 375x500 (SciPy edge bug; docs/findings.md)", "impls": [pair["a"]]}]
    agreement["oracle_checks"].append({"impl": pair["a"], "input": pair["input"], "n": 2, "max_rel": 0.3,
                                       "convention": {}, "matches": False, "finding": agreement["findings"][0]["finding"]})
    doc["recommendation"] = recommend(agreement, doc["latency"], doc["localization"])
    assert doc["recommendation"]["verdict"]["defects"]["found"] == []
    path = render_report(doc, tmp_path)
    check_verdict_card(browser, path)
    assert wrapped_numbers(browser, path) == []
    assert red_elements(browser, path) == []
    agreement["findings"] = []
    del agreement["oracle_checks"][-1]["finding"]
    doc["recommendation"] = recommend(agreement, doc["latency"], doc["localization"])
    assert red_elements(browser, render_report(doc, tmp_path / "unknown"))  # the same miss, no known cause: red
