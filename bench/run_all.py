"""Run every benchmark and rewrite bench/RESULTS.md (``make bench``).

Each benchmark runs in its own process, one after another, so that none disturbs another's
figures; the sections they print are assembled under a header naming the machine and date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

from _common import machine

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "throughput_vs_sdk",
    "check_process",
    "rate_ceiling",
    "aws_requests",
    "run_200k",
    "cold_start",
    "local_scale",
    "report_size",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("names", nargs="*", default=BENCHMARKS, help="benchmarks to run")
    args = parser.parse_args()
    sections = []
    failures = 0
    for name in args.names:
        print(f"== {name}", file=sys.stderr, flush=True)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(HERE / f"{name}.py"), *(["--quick"] if args.quick else [])],
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE,
            check=False,
        )
        took = time.monotonic() - started
        print(f"   {took:.0f} s", file=sys.stderr, flush=True)
        if done.returncode != 0:
            failures += 1
            sections.append(f"## {name}\n\nThe benchmark failed (exit status {done.returncode}).\n")
        else:
            sections.append(done.stdout.strip() + f"\n\n_({took:.0f} s)_\n")
    header = (
        "# Benchmark results\n\n"
        f"Written by `make bench` on {dt.date.today().isoformat()}. Machine: {machine()}. "
        "Shared machines are noisy: compare figures measured side by side in one run, not "
        "across runs. What earlier figures led to, before and after: "
        "[IMPROVEMENTS.md](IMPROVEMENTS.md)."
        + (" **Quick run: small sizes, floors not meaningful.**" if args.quick else "")
        + "\n\n"
    )
    args.output.write_text(header + "\n".join(sections))
    print(f"wrote {args.output}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
