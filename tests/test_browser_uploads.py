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
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from test_browser import ARGS, ARTIFACTS, CHROMIUM, ROOT, _free_port, _healthy, _no_error_box, _open

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
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: install Debian's chromium to run the browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("playwright.sync_api")
    tmp = tmp_path_factory.mktemp("browser_uploads")
    (tmp / "classroom.toml").write_text(f'data_dir = "{tmp / "data"}"\nmax_concurrent_jobs = 2\n'
                                        f'data_mirror = "{mirror}"\n')
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "RESNET_VIZ_MIRROR"}
    env.update(RESNET_VIZ_CONFIG=str(tmp / "classroom.toml"))
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 300
        while not _healthy(url):
            assert proc.poll() is None, (tmp / "server.log").read_text()[-3000:]
            assert time.monotonic() < end, "the server did not become healthy"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        server_log = (tmp / "server.log").read_text()
        assert "Traceback" not in server_log and "StreamlitAPIException" not in server_log, server_log[-3000:]


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _evil(tmp_path: Path) -> Path:
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"\x80\x04K\x01.")
    return path


def test_the_sidebar_offers_a_download_and_your_own_images(server, browser):
    page = _open(browser, f"{server}/train?dataset=cifar10&depth=4&width=8&steps=30")
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
    _no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / "train_sidebar_new_controls.png"), full_page=True)
    sidebar.screenshot(path=str(ARTIFACTS / "sidebar_your_images.png"))
    page.close()


def test_a_disallowed_checkpoint_file_gets_a_sentence(server, browser, tmp_path):
    page = _open(browser, f"{server}/train?dataset=moons&depth=4&width=8&steps=30")
    page.get_by_text("Start from trained weights").first.click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(_evil(tmp_path)))
    page.get_by_text("is not a .pt / .pth / .th file").wait_for()
    assert page.locator('[data-testid="stFileUploader"]').count() == 1
    _no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / "train_checkpoint_refused.png"), full_page=True)
    page.close()


def test_a_disallowed_image_file_on_the_attribution_page_keeps_the_uploader(server, browser, tmp_path):
    page = _open(browser, f"{server}/attribution")
    page.get_by_role("button", name="Train the digits pair to explain").click()
    page.get_by_text("Explaining class").wait_for(timeout=180_000)
    page.get_by_text("your own image").click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(_evil(tmp_path)))
    page.get_by_text("is not a .png / .jpg / .jpeg / .gif / .bmp / .webp file").wait_for()
    assert page.locator('[data-testid="stFileUploader"]').count() == 1
    _no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / "attribution_refused_upload.png"), full_page=True)
    page.close()
