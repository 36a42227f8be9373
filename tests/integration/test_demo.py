"""``make run`` without credentials: the demo against the in-process simulator."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from fwwatch.cli.demo import run_demo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """What the demo said, and where it wrote its report (it runs once, for ten seconds)."""
    out = io.StringIO()
    page = tmp_path_factory.mktemp("demo") / "fwwatch-report.html"
    assert run_demo(out, page) == 0
    return out.getvalue(), page


def test_the_demo_shows_a_baseline_a_release_a_bad_moment_and_installs(
    demo: tuple[str, Path],
) -> None:
    text, _ = demo
    summaries = [line for line in text.splitlines() if line.startswith("fwwatch run ")]
    # Four cycles: each checks every device but the one offline on purpose, even the one
    # that met two seconds of 503 on every endpoint and a revoked token
    assert len(summaries) == 4
    assert all("checked 11 of 12 devices, 1 device error, 0 not checked" in s for s in summaries)
    assert "1 notification sent" in summaries[1]
    assert "available - Smart Plug 16A" in text
    # and the fourth tells the installs and the failure
    assert "installed - Smart Plug 16A" in text
    assert "failed - Smart Plug 16A" in text
    assert "Traceback" not in text


def test_the_demo_ends_by_writing_its_fleet_report_and_saying_where(
    demo: tuple[str, Path],
) -> None:
    text, page = demo
    assert text.rstrip().splitlines()[-1] == f"Open {page.resolve().as_uri()}"
    html = page.read_text(encoding="utf-8")
    assert "Kitchen plug" in html
    assert "Release adoption" in html
