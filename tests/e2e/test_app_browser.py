"""The app in a real browser: headless Chromium (Debian's, never a downloaded one) driven by
Playwright. Screenshots land in artifacts/ (gitignored) for a human to look at."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


pytestmark = [pytest.mark.e2e, pytest.mark.slow, *[pytest.mark.filterwarnings(f) for f in (
    "ignore:.*no_silent_downcasting", "ignore:The copy keyword is deprecated",  # pandas 3 inside gradio
    "ignore:Examples will be cached but not all input components")]]  # examples give 3 of 14 inputs

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"

if not Path(CHROMIUM).exists():
    if os.environ.get("VIDGEN_REQUIRE_BROWSER") == "1":  # .ci/run: a browser that failed to install fails CI
        raise RuntimeError(f"{CHROMIUM} is missing and VIDGEN_REQUIRE_BROWSER=1: install Debian's chromium")
    pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

# Records every distinct src the preview image takes (a poll could miss fast steps).
WATCH_PREVIEW = """() => {
  window.__previews = [];
  const seen = new Set();
  const record = () => {
    const img = document.querySelector('#vg-preview img');
    if (img && img.src && !seen.has(img.src)) { seen.add(img.src); window.__previews.push(img.src); }
  };
  new MutationObserver(record).observe(document.querySelector('#vg-preview'),
    {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
  record();
}"""


@pytest.fixture(scope="module")
def browser_app(tiny_checkpoint, tmp_path_factory, launch_app):
    with launch_app(tiny_checkpoint, tmp_path_factory.mktemp("browser-app"), steps=8) as (url, demo):
        yield url


@pytest.fixture(autouse=True)
def screenshot_on_failure(request):
    yield
    report = getattr(request.node, "rep_call", None)
    page = request.node.funcargs.get("page")
    if page is not None and (report is None or report.failed):
        page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"), full_page=True)


@pytest.fixture(scope="module")
def page(browser_app):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # loopback only: anything else (fonts, CDNs, telemetry) is refused
        page.route("**/*", lambda route: route.continue_()
                   if route.request.url.startswith((browser_app, "data:", "blob:")) else route.abort())
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def test_example_generate_live_preview_video_and_explorer(page, browser_app):
    page.goto(browser_app)
    page.wait_for_selector("#vg-generate")
    page.locator("#vg-prompt textarea").fill("a red dog moving left")
    sync_api.expect(page.locator("#vg-unknown")).to_contain_text("dog")  # warned before generating
    page.get_by_text("two objects", exact=True).click()  # fills the prompt (and shows the cached result)
    prompt = page.locator("#vg-prompt textarea")
    sync_api.expect(prompt).to_have_value("a big blue square moving up and a yellow circle moving right")
    sync_api.expect(page.locator("#vg-status")).to_contain_text("Done")  # the lazily cached example ran
    page.screenshot(path=str(ARTIFACTS / "app-1-example.png"), full_page=True)

    page.evaluate(WATCH_PREVIEW)
    old_video = page.locator("#vg-video video").get_attribute("src")
    page.click("#vg-generate")
    sync_api.expect(page.locator("#vg-status")).to_contain_text("Step")
    page.wait_for_function(
        "old => { const v = document.querySelector('#vg-video video'); return v && v.src && v.src !== old; }",
        arg=old_video)
    sync_api.expect(page.locator("#vg-status")).to_contain_text("Done")
    previews = page.evaluate("window.__previews")
    assert len(previews) >= 3, f"the preview changed {len(previews) - 1} times, expected at least twice"
    # The preview is sent at the frames' own size; the page stretches it over its block, crisply.
    shown, natural, block, rendering = page.evaluate("""() => { const img = document.querySelector('#vg-preview img');
      return [img.getBoundingClientRect().width, img.naturalWidth,
              document.querySelector('#vg-preview').getBoundingClientRect().width, getComputedStyle(img).imageRendering]; }""")
    assert shown > 1.5 * natural and shown > 0.95 * block - 4, (shown, natural, block)
    assert rendering in ("pixelated", "crisp-edges")
    page.screenshot(path=str(ARTIFACTS / "app-2-generated.png"), full_page=True)

    page.locator("#vg-tab-words-button, [role=tab]:has-text('Words → pixels')").first.click()
    overlay = page.locator("#vg-words-img img")
    overlay.wait_for()
    assert overlay.get_attribute("src")
    sync_api.expect(page.locator("#vg-words-caption")).to_contain_text("all 8 steps")
    page.locator("#vg-step input[type=number]").fill("2")  # scrub to one denoising step
    page.locator("#vg-step input[type=number]").press("Enter")
    sync_api.expect(page.locator("#vg-words-caption")).to_contain_text("step 2 of 8")
    page.locator("#vg-words-img").screenshot(path=str(ARTIFACTS / "app-3-words.png"))

    page.get_by_role("tab", name="Frames → frames").click()
    page.locator("#vg-frames-img img").wait_for()
    sync_api.expect(page.locator("#vg-frames-caption")).to_contain_text("Gate gamma")
    page.get_by_role("tab", name="Pixels → pixels").click()
    pixels = page.locator("#vg-pixels-img img")
    pixels.wait_for()
    before = pixels.get_attribute("src")
    pixels.click(position={"x": 10, "y": 10})
    page.wait_for_function("old => document.querySelector('#vg-pixels-img img').src !== old", arg=before)
    sync_api.expect(page.locator("#vg-pixels-caption")).to_contain_text("row 0, column 0")
    page.screenshot(path=str(ARTIFACTS / "app-4-explorer.png"), full_page=True)


def teardown_module(module):  # keep artifacts/, drop a stray playwright trace dir if any
    shutil.rmtree(ROOT / "test-results", ignore_errors=True)
