"""One student as a real Chromium page (``--clients browser``), driven by Playwright."""
from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from classroom.constants import DONE_JS, ENDED_RE, START


async def student(browser: Any, url: str, delay: float, timeout: float, record: dict[str, Any],
                  contexts: list[Any]) -> None:
    """Open ``url``, press Start, wait until both runs of the pair show as ended. The
    context stays open (in ``contexts``) until the phase closes every tab."""
    await asyncio.sleep(delay)
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    contexts.append(ctx)
    page = await ctx.new_page()
    record.update(url=url, ok=False)
    try:
        t0 = time.perf_counter()
        await page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
        start = page.locator(START).first
        await start.wait_for(state="visible", timeout=timeout * 1000)
        record["load_s"] = time.perf_counter() - t0
        await start.click(timeout=timeout * 1000)
        await _confirm_if_asked(page, record)
        t1 = time.perf_counter()
        await page.wait_for_function(DONE_JS, timeout=timeout * 1000, polling=250)
        record["result_s"] = time.perf_counter() - t1
        record["since_open_s"] = time.perf_counter() - t0
        _read_result(await page.evaluate("() => document.body.textContent"), record)
    except Exception as err:  # one student's failure is a result, not a crash of the bench
        record["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"


async def _confirm_if_asked(page: Any, record: dict[str, Any]) -> None:
    """A "big" run asks for a second click (BIG_RUN_S); ours should not."""
    anyway = page.locator(".st-key-start_anyway button")
    try:
        await anyway.wait_for(state="visible", timeout=1500)
        await anyway.click()
        record["confirmed"] = True
    except Exception:
        pass


def _read_result(text: str, record: dict[str, Any]) -> None:
    """What the finished page says: the two ended statuses, the shared note, any error."""
    record["ended"] = re.findall(ENDED_RE + r"[^·(]{0,40}", text)[:2]
    record["shared_note"] = "computed once" in text
    record["errors"] = [m for m in ("Could not start", "Traceback", "could not train") if m in text]
    record["ok"] = not record["errors"]
