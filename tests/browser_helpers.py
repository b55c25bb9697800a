"""What every real-browser test shares: Debian's Chromium found (or skipped, except under
``CI=true``, where a missing browser fails), a ``streamlit run app.py`` server on a free
loopback port with its own data folder and config, and a page opened on it. Never runs
``playwright install``."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]


def need_browser() -> None:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: install Debian's chromium to run the browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def streamlit_server(tmp: Path, config: str, env: Mapping[str, str] | None = None,
                     forbidden: Sequence[str] = ("Traceback",)) -> Iterator[str]:
    """The app on a free port with ``config`` as its classroom config; yields its URL. When it
    stops, its log must hold none of ``forbidden`` (no traceback ever reaches a student)."""
    (tmp / "classroom.toml").write_text(f'data_dir = "{tmp / "data"}"\n' + config)
    full_env = {**os.environ, **(env or {}), "RESNET_VIZ_CONFIG": str(tmp / "classroom.toml")}
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(free_port_ := free_port()), "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{free_port_}"
    try:
        end = time.monotonic() + 300
        while not healthy(url):
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
        assert not any(word in server_log for word in forbidden), server_log[-3000:]


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def open_page(browser, url: str, height: int = 1600):
    page = browser.new_page(viewport={"width": 1400, "height": height})
    page.set_default_timeout(180_000)
    page.goto(url)
    page.wait_for_selector('[data-testid="stMainBlockContainer"] h1')
    return page


def no_error_box(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.inner_text("body")
