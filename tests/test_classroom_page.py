"""The web page with a class of thirty in view (issue 37), in Debian's Chromium: every face
counted, labels that fit, and a list of faces that scrolls inside its panel."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from web_support import browser, running, web_config  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import classroom_material as material  # noqa: E402


def test_the_page_shows_a_class_of_thirty_legibly(shared, tmp_path, browser):
    """30 faces in view: every box drawn, the face count right, and the list of faces
    stays inside its panel (it scrolls) instead of pushing the page down."""
    clip = material.crowd_clip(30, (1280, 720), tmp_path / "crowd.mp4")
    cfg = web_config(tmp_path, clip, source={"realtime": False})   # as fast as it runs
    with running(cfg) as (_, url):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(url)
            # One snapshot of the page per look (it redraws with every frame); evaluated
            # in a loop: the page's CSP forbids the eval that wait_for_function needs.
            state = """() => { const l = document.getElementById('faces');
                return {count: parseInt(document.getElementById('face-count').textContent),
                        items: l.children.length, crowd: l.classList.contains('crowd'),
                        height: l.getBoundingClientRect().height}; }"""
            end = time.monotonic() + 180   # a bound, not a speed: 30 faces take a few frames
            while True:
                s = page.evaluate(state)
                if s["count"] >= 27 and s["items"] >= 27:
                    break
                assert time.monotonic() < end, s
                time.sleep(0.1)
            assert s["crowd"] and s["height"] <= 9 * 16 + 4, s   # 9rem: it scrolls past that
            page.screenshot(path=str(tmp_path / "page.png"))
        finally:
            page.close()
