"""The new data controls in a real browser (Playwright + Debian's Chromium, as test_browser.py):
the sidebar's download and your-images controls, and a disallowed file on the Attribution and
Train uploaders, which must get a sentence while the uploader stays (Streamlit's own type
filter raised StreamlitAPIException there and the uploader vanished).

The classroom mirror is a loopback server that trickles 2 MB of zeros over 16 seconds: the
progress bar moves in the sidebar, then the checksum refuses the file and the sentence says
so. Nothing leaves this machine. Screenshots go to ``test-artifacts/``.
"""
from __future__ import annotations

import http.server
import re
import threading
import time
from pathlib import Path

import pytest

from browser_helpers import ARTIFACTS, chromium, need_browser, no_error_box, open_page, streamlit_server

pytestmark = pytest.mark.browser


class Trickle(http.server.BaseHTTPRequestHandler):
    """A slow school mirror: 2 MB of zeros in 32 pieces, 0.5 s apart (not the real file)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        piece = bytes(2**16)
        self.send_response(200)
        self.send_header("Content-Length", str(32 * len(piece)))
        self.end_headers()
        for _ in range(32):
            self.wfile.write(piece)
            self.wfile.flush()
            time.sleep(0.5)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def mirror():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/school/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, mirror):
    need_browser()
    tmp = tmp_path_factory.mktemp("browser_uploads")
    env = {"RESNET_VIZ_MIRROR": ""}              # the config's mirror, not the caller's
    with streamlit_server(tmp, f'max_concurrent_jobs = 2\ndata_mirror = "{mirror}"\n', env,
                          forbidden=("Traceback", "StreamlitAPIException")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as b:
        yield b


def _evil(tmp_path: Path) -> Path:
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"\x80\x04K\x01.")
    return path


def test_the_sidebar_offers_a_download_and_your_own_images(server, browser):
    page = open_page(browser, f"{server}/train?dataset=cifar10&depth=4&width=8&steps=30")
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("CIFAR-10 (binary version), about 162 MB").wait_for()
    sidebar.get_by_text("Augmentation (image sets)").wait_for()
    sidebar.screenshot(path=str(ARTIFACTS / "sidebar_download.png"))
    sidebar.get_by_role("button", name="Download", exact=True).click()
    moving = re.compile(r"Downloading CIFAR-10 \(binary version\): \d\.\d of about 162")
    sidebar.get_by_text(moving).wait_for(timeout=30_000)
    sidebar.screenshot(path=str(ARTIFACTS / "sidebar_downloading.png"))
    sidebar.get_by_text("The download failed").wait_for(timeout=60_000)     # zeros are not the archive
    assert "is not the published file" in sidebar.inner_text() and "Traceback" not in sidebar.inner_text()
    sidebar.get_by_role("button", name="Download", exact=True).wait_for()
    page.screenshot(path=str(ARTIFACTS / "train_download_failed.png"), full_page=True)
    sidebar.locator('[data-testid="stSelectbox"]').filter(has_text="Dataset").click()
    page.get_by_role("option", name="your own images (zip)").click()
    sidebar.get_by_role("button", name="Read the images").wait_for()
    sidebar.get_by_text("Image size (pixels a side)").wait_for()
    no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / "train_sidebar_new_controls.png"), full_page=True)
    sidebar.screenshot(path=str(ARTIFACTS / "sidebar_your_images.png"))
    page.close()


def test_a_disallowed_checkpoint_file_gets_a_sentence(server, browser, tmp_path):
    page = open_page(browser, f"{server}/train?dataset=moons&depth=4&width=8&steps=30")
    page.get_by_text("Start from trained weights").first.click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(_evil(tmp_path)))
    page.get_by_text("is not a .pt / .pth / .th file").wait_for()
    assert page.locator('[data-testid="stFileUploader"]').count() == 1
    no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / "train_checkpoint_refused.png"), full_page=True)
    page.close()


def test_a_disallowed_image_file_on_the_attribution_page_keeps_the_uploader(server, browser, tmp_path):
    page = open_page(browser, f"{server}/attribution")
    page.get_by_role("button", name="Train the digits pair to explain").click()
    page.get_by_text("Explaining class").wait_for(timeout=180_000)
    page.get_by_text("your own image").click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(_evil(tmp_path)))
    page.get_by_text("is not a .png / .jpg / .jpeg / .gif / .bmp / .webp file").wait_for()
    assert page.locator('[data-testid="stFileUploader"]').count() == 1
    no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / "attribution_refused_upload.png"), full_page=True)
    page.close()
