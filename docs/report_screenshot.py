"""Make docs/fleet-report.png, the README's picture of the demo fleet's report.

Runs the demo (``make run``'s four cycles against the simulator) into a temporary folder,
opens its report in Debian's headless Chromium through Playwright, and keeps, one under
another, the parts a reader looks at first: the summary and what needs attention, the
chart of the product that got the release, the release's adoption, the top of the device
table. Usage: ``.venv/bin/python docs/report_screenshot.py``.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "shared"))

from fwwatch.cli.demo import run_demo  # noqa: E402

PICTURE = HERE / "fleet-report.png"
WIDTH = 1100
#: The parts kept, each from the top of one element to the top of another (or its end).
PARTS = """() => {
  const top = (el) => el.getBoundingClientRect().top + scrollY;
  const bottom = (el) => el.getBoundingClientRect().bottom + scrollY;
  const offered = Array.from(document.querySelectorAll("#versions .card"))
    .find((card) => card.querySelector(".tag"));
  const release = document.querySelector("#releases .card");
  const rows = document.querySelectorAll("#device-table tbody tr");
  return [
    [0, top(document.getElementById("versions"))],
    [top(offered) - 8, bottom(offered) + 8],
    [top(document.getElementById("releases")), bottom(release) + 8],
    [top(document.getElementById("devices")), bottom(rows[Math.min(5, rows.length - 1)]) + 8],
  ];
}"""


def main() -> int:
    executable = shutil.which("chromium")
    if executable is None:
        print("Chromium is not installed: make debs", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "fwwatch-report.html"
        run_demo(io.StringIO(), page)
        with sync_playwright() as playwright:
            args = ["--no-sandbox"] if os.geteuid() == 0 else []
            browser = playwright.chromium.launch(executable_path=executable, args=args)
            tab = browser.new_page(viewport={"width": WIDTH, "height": 900})
            tab.goto(page.as_uri(), wait_until="load")
            parts = tab.evaluate(PARTS)
            whole = Image.open(io.BytesIO(tab.screenshot(full_page=True)))
            browser.close()
    pieces = [whole.crop((0, round(top), WIDTH, round(bottom))) for top, bottom in parts]
    picture = Image.new("RGB", (WIDTH, sum(piece.height for piece in pieces)), "white")
    y = 0
    for piece in pieces:
        picture.paste(piece, (0, y))
        y += piece.height
    picture.save(PICTURE, optimize=True)
    print(f"wrote {PICTURE} ({WIDTH}x{picture.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
