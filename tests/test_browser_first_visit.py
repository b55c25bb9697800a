"""A fresh server's first visitor comes straight to a sub-page URL (a link the teacher shared).

Streamlit starts such a server in its legacy ``pages/`` mode, in which that visit would run
the page script alone: no frame, no knobs, a menu of file names (``resnet_viz/ui/legacy_pages.py``
says why and how the page is rerun through app.py). Its own server: the first visit must be
the server's first. Same browser and skip rules as ``test_browser.py``.
"""
from __future__ import annotations

import pytest

from browser_helpers import ARTIFACTS, no_error_box, open_page
from test_browser import browser, server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
MENU = ("Home", "Train & compare", "Gradient flow", "Architecture", "Runs")


def test_the_first_visit_of_a_server_straight_to_a_sub_page_gets_the_whole_app(server, browser):
    page = open_page(browser, f"{server}/architecture?model=cnn&depth=14&width=8&seed=3")
    page.get_by_text("resnet-14 (identity)").first.wait_for()      # the page, with the link's spec
    assert page.locator('[data-testid="stMainBlockContainer"] h1').first.inner_text().startswith("Architecture")
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert all(title in nav for title in MENU) and "architecture\n" not in nav   # titles, not file names
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('input[aria-label="Seed"]').wait_for(state="attached")       # the frame's knobs
    assert "/architecture?" in page.url and "depth=14" in page.url
    no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / "first_visit_sub_page.png"))
    page.close()
