"""What the benchmarks share: a simulator in its own process, and markdown tables.

Every benchmark is a script that runs alone (``.venv/bin/python bench/<name>.py``) and prints
one markdown section; ``bench/run_all.py`` runs them all and writes ``bench/RESULTS.md``.
The simulator runs in a separate process so that the client and the server do not share
one interpreter (this machine has 2 cores: one each).
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
ACCESS_ID = "fwwatch-sim-access-id"
ACCESS_SECRET = "fwwatch-sim-access-secret-0000000"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Simulator:
    """A running ``fwwatch simulate`` process."""

    url: str
    process: subprocess.Popen[bytes]

    def stats(self) -> dict[str, object]:
        return dict(httpx.get(f"{self.url}/_sim/stats", timeout=10).json())

    def reset_stats(self) -> None:
        httpx.post(f"{self.url}/_sim/stats/reset", timeout=10)

    def admin(self, path: str, body: dict[str, object]) -> dict[str, object]:
        return dict(httpx.post(f"{self.url}/_sim/{path}", json=body, timeout=30).json())


@contextlib.contextmanager
def simulator(
    devices: int, *, latency_ms: float = 0.0, rate_limit: float | None = None, seed: int = 0
) -> Iterator[Simulator]:
    """``fwwatch simulate`` in a child process, stopped on exit."""
    port = free_port()
    command = [
        sys.executable, "-m", "fwwatch.cli", "simulate", "--port", str(port),
        "--fleet-size", str(devices), "--seed", str(seed), "--latency-ms", str(latency_ms),
    ]  # fmt: skip
    if rate_limit is not None:
        command += ["--rate-limit", str(rate_limit)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/_sim/stats", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.1)
        yield Simulator(url, process)
    finally:
        process.terminate()
        process.wait(10)


def tuya_env(url: str, **extra: str) -> dict[str, str]:
    """An environment that points fwwatch at a simulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUYA_", "FWWATCH_"))}
    env.update(TUYA_ENDPOINT=url, TUYA_ACCESS_ID=ACCESS_ID, TUYA_ACCESS_SECRET=ACCESS_SECRET)
    env.update(extra)
    return env


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def machine() -> str:
    """One line about where the figures were measured."""
    return (
        f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
