"""The app in a real browser: Playwright drives Debian's Chromium against `streamlit run app.py`.

One server for the module (a temporary data dir, a 3 s session timeout so a closed tab's
runs are released quickly). Screenshots go to ``test-artifacts/``. Without
``/usr/bin/chromium`` the tests skip with a message, except under ``CI=true``, where a
missing browser is a failure. Never runs ``playwright install``.
"""
from __future__ import annotations

import re
import time

import pytest

from browser_helpers import ARTIFACTS, ROOT, chromium, need_browser, no_error_box, open_page, streamlit_server

pytestmark = pytest.mark.browser
LIVE = "dataset=moons&depth=8&width=16&steps=4000&eval_every=20&log_every=20&seed=11"
PAGES = ("Home", "Train & compare", "Gradient flow", "Residual responses", "Shattered gradients",
         "Attribution", "Architecture", "Runs") + (("Lessons",) if (ROOT / "pages" / "lessons.py").exists() else ())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    need_browser()
    tmp = tmp_path_factory.mktemp("browser")
    with streamlit_server(tmp, "max_concurrent_jobs = 2\n", {"RESNET_VIZ_SESSION_TIMEOUT_S": "3"}) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as b:
        yield b


def _points(page) -> int:
    """Points of the first trace of the loss chart (0 before it is drawn)."""
    return page.evaluate("""() => { const el = document.querySelector('.js-plotly-plot');
                                    return el && el.data && el.data.length ? el.data[0].x.length : 0; }""")


def _wait(page, pred, timeout: float, what: str) -> None:
    """Poll ``pred``; waiting through the page lets Playwright process its events (a bare
    sleep would leave ``page.url`` stale)."""
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        page.wait_for_timeout(250)


def test_train_live_pause_and_toggle_a_shortcut(server, browser):
    page = open_page(browser, f"{server}/train?{LIVE}")
    page.get_by_role("button", name="Start").click()
    _wait(page, lambda: _points(page) >= 2, 60, "the first plotted points")
    first = _points(page)
    _wait(page, lambda: _points(page) > first, 30, "the chart to gain points while training")
    page.screenshot(path=str(ARTIFACTS / "train_live.png"))
    page.get_by_role("button", name="Pause").click()
    page.get_by_text(re.compile(r"paused at step")).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "train_paused.png"))
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_role("button", name="0", exact=True).click()          # block 0 loses its shortcut
    _wait(page, lambda: "shortcut_mask=01111111" in page.url, 20, "the mask in the URL")
    page.get_by_text("the sidebar now describes another one").wait_for()
    no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / "train_toggled.png"))
    page.close()


def _boundary_contours(page) -> int:
    """Filled contour bands plotly.js drew in the decision-boundary chart (its P(class 1)
    map arrives as base64 typed arrays, NaN gaps included)."""
    return page.evaluate("""() => { for (const el of document.querySelectorAll('.js-plotly-plot')) {
                                      const t = el.layout && el.layout.title && el.layout.title.text;
                                      if (t && t.includes('Decision boundaries'))
                                        return el.querySelectorAll('.contour path').length; }
                                    return -1; }""")


def test_a_finished_pair_draws_its_decision_boundaries(server, browser):
    page = open_page(browser, f"{server}/train?dataset=moons&depth=4&width=16&steps=200&eval_every=50&log_every=50&seed=12")
    page.get_by_role("button", name="Start").click()
    _wait(page, lambda: _boundary_contours(page) > 10, 90, "the decision-boundary maps")
    no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / "train_boundaries.png"), full_page=True)
    page.close()


def test_every_page_opens_without_an_error(server, browser):
    page = open_page(browser, f"{server}/?dataset=moons&depth=4&width=8&steps=40", height=2000)
    for name in PAGES:
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=name).click()
        page.wait_for_selector('[data-testid="stMainBlockContainer"] h1')
        page.wait_for_timeout(1500)
        no_error_box(page)
        assert "depth=4" in page.url                                       # the spec follows the menu
        page.screenshot(path=str(ARTIFACTS / f"page_{name.split()[0].lower()}.png"))
    page.close()


def test_a_shared_link_restores_its_settings(server, browser):
    link = f"{server}/architecture?model=cnn&depth=32&width=8&shortcut=projection&seed=7"
    page = open_page(browser, link)
    page.get_by_text("resnet-32 (projection)").first.wait_for()
    sidebar = page.locator('[data-testid="stSidebar"]')
    for label in ("Model family", "Shortcut of the residual net", "Seed"):   # widgets render lazily
        sidebar.locator(f'input[aria-label="{label}"]').wait_for(state="attached")
    inputs = dict(sidebar.locator("input").evaluate_all(
        "els => els.map(e => [e.getAttribute('aria-label') || '', e.value])"))
    assert inputs["Model family"] == "CNN (He et al. §4.2)"
    assert inputs["Shortcut of the residual net"] == "projection (option B)" and inputs["Seed"] == "7"
    assert "Depth (weight layers)\n\n32" in sidebar.inner_text()          # the slider's thumb
    for part in ("model=cnn", "depth=32", "width=8", "shortcut=projection", "seed=7"):
        assert part in page.url
    no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / "shared_link.png"))
    page.close()


def test_closing_the_tab_releases_its_runs(server, browser):
    page = open_page(browser, f"{server}/train?dataset=moons&depth=4&width=8&steps=200000&seed=5")
    page.get_by_role("button", name="Start").click()
    page.get_by_text(re.compile(r"steps/s on cpu")).first.wait_for()
    page.close()                                                           # the tab goes away
    watcher = open_page(browser, f"{server}/runs")

    def training_now() -> str:
        watcher.reload()
        watcher.wait_for_selector('[data-testid="stMetricValue"]')
        return watcher.locator('[data-testid="stMetricValue"]').first.inner_text()
    _wait(watcher, lambda: training_now() == "0", 40, "the closed tab's runs to be cancelled")
    watcher.close()
