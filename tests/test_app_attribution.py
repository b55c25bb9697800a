"""Attribution: trains the digits pair, explains a validation digit and an upload; bad uploads
get a sentence, never a traceback."""
from __future__ import annotations

import io

from PIL import Image, ImageDraw

from app_helpers import app_env, chart_titled, no_exception, open_app, wait_jobs  # noqa: F401


def _digit_png() -> bytes:
    img = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(img).ellipse((16, 8, 48, 56), outline=0, width=6)      # a zero, dark on light
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_explain_a_digit_and_uploads(app_env):
    at = open_app("attribution")
    no_exception(at)
    at.button(key="attr_train").click().run()
    wait_jobs(at.session_state["attr_pair"].keys.values())
    at.run()
    no_exception(at)
    maps = chart_titled(at, "Where each net looks")
    assert len(maps["data"]) == 6                                         # 2 nets x (input, saliency, IG)
    assert len(chart_titled(at, "How much each block")["data"]) == 2
    assert "Explaining class" in at.markdown[-1].value
    at.radio(key="attr_src").set_value("your own image").run()
    at.file_uploader(key="attr_upload").set_value(("notes.png", b"this is not an image", "image/png")).run()
    no_exception(at)
    assert any("not an image" in e.value for e in at.error)
    at.file_uploader(key="attr_upload").set_value(("zero.png", _digit_png(), "image/png")).run()
    no_exception(at)
    assert not at.error and chart_titled(at, "Where each net looks")
