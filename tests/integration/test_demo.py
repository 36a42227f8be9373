"""``make run`` without credentials: the demo against the in-process simulator."""

from __future__ import annotations

import io

import pytest

from fwwatch.cli.demo import run_demo

pytestmark = pytest.mark.integration


def test_the_demo_shows_a_baseline_a_release_and_a_bad_moment_survived() -> None:
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    summaries = [line for line in text.splitlines() if line.startswith("fwwatch run ")]
    # Three cycles: each checks every device but the one offline on purpose, even the one
    # that met two seconds of 503 on every endpoint and a revoked token
    assert len(summaries) == 3
    assert all("checked 11 of 12 devices, 1 device error, 0 not checked" in s for s in summaries)
    assert "1 notification sent" in summaries[1]
    assert "available - Smart Plug 16A" in text
    assert "Traceback" not in text
