"""A real headless Chromium (Debian's ``chromium`` package), driven by Playwright.

Playwright's synchronous API keeps an event loop of its own on the thread that starts it,
where ``asyncio.run`` (every ``fwwatch`` command) then refuses to run; so the browser lives
on a thread of its own, and every page is opened and read there. Playwright never downloads
a browser here: it launches the system's Chromium (``make debs`` installs it).

    browser = Chromium()
    visit = browser.visit(path, probe="() => document.title")
    visit.dom, visit.requests, visit.console, visit.screenshot
    browser.close()
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

MISSING = (
    "Chromium is not installed: `make debs` installs Debian's chromium package "
    "(apt-get install chromium)"
)

T = TypeVar("T")


def chromium_executable() -> str:
    """The system's Chromium, or the test fails saying how to get it."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(MISSING)


@dataclass
class Visit:
    """What opening a page gave: what the probe read, what the page asked for and said."""

    dom: Any
    screenshot: bytes
    #: Every request the page made, the page itself included.
    requests: list[str] = field(default_factory=list)
    #: Console messages as (type, text), and uncaught errors.
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: alert(), confirm()... the page opened (each dismissed).
    dialogs: list[str] = field(default_factory=list)

    def colours(self) -> set[tuple[int, int, int]]:
        """The distinct colours of the screenshot."""
        from PIL import Image

        image = Image.open(io.BytesIO(self.screenshot)).convert("RGB")
        found = image.getcolors(maxcolors=image.width * image.height)
        assert found is not None
        return {colour for _, colour in found}


class Chromium:
    """One browser for many pages, on its own thread."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._executable = chromium_executable()
        self._run(self._start)

    def _run(self, work: Callable[[], T]) -> T:
        return self._thread.submit(work).result(timeout=90)

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        # Chromium's sandbox refuses to run as root (CI and these machines run as root).
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        self._browser = self._playwright.chromium.launch(
            executable_path=self._executable, args=args
        )

    def visit(
        self,
        path: Path,
        probe: str,
        *,
        width: int = 1200,
        height: int = 900,
        color_scheme: str = "light",
        act: Callable[[Any], None] | None = None,
    ) -> Visit:
        """Open ``path``, let ``act(page)`` do what a person would, then evaluate ``probe``
        (a JavaScript function) and take a screenshot of the whole page."""
        return self._run(lambda: self._visit(path, probe, width, height, color_scheme, act))

    def _visit(
        self,
        path: Path,
        probe: str,
        width: int,
        height: int,
        color_scheme: str,
        act: Callable[[Any], None] | None,
    ) -> Visit:
        context = self._browser.new_context(
            viewport={"width": width, "height": height}, color_scheme=color_scheme
        )
        visit = Visit(dom=None, screenshot=b"")
        context.on("request", lambda request: visit.requests.append(request.url))
        page = context.new_page()
        page.on("console", lambda message: visit.console.append((message.type, message.text)))
        page.on("pageerror", lambda error: visit.errors.append(str(error)))

        def dismiss(dialog: Any) -> None:
            visit.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", dismiss)
        try:
            page.goto(path.resolve().as_uri(), wait_until="load")
            if act is not None:
                act(page)
            visit.dom = page.evaluate(probe)
            visit.screenshot = page.screenshot(full_page=True)
        finally:
            context.close()
        return visit

    def close(self) -> None:
        """Close the browser and its thread."""

        def stop() -> None:
            self._browser.close()
            self._playwright.stop()

        try:
            self._run(stop)
        finally:
            self._thread.shutdown()
