"""``fwwatch report``: the fleet as one self-contained HTML page, or its data as JSON.

From the local state (SQLite), or with ``--aws-table`` from the AWS state table, read with
the caller's AWS credentials and nothing but Scan of that table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ..fleet_report import FleetReport, build_fleet_report, render_page
from ..local.config import StateSettings
from ..local.store_sqlite import SqliteStore
from ..safe_text import strip_controls
from ..tuya import environment_help
from .common import EXIT_DEVICES_FAILED, EXIT_OK, UsageError, environment

__all__ = ["add_parsers", "local_fleet_report", "write_atomically", "write_report"]

DEFAULT_OUT = Path("fwwatch-report.html")

DESCRIPTION = """\
Write the fleet report: one HTML file (default fwwatch-report.html) that opens in any
browser, on a phone too, and prints. It shows devices, products, the share up to date,
updates on offer, running, failed, devices offline or not checked and the last check;
per product and channel, a chart of the devices on each version and the version on
offer; for each release, its adoption over time; and every device in a table to sort
and filter, those that need attention first. The file holds its styles, script and
charts: opening it loads nothing and sends nothing. Reads the state only: no request
goes to Tuya.

With --aws-table, the report comes from the AWS stack's state table (its
StateTableName output), read with your AWS credentials (the usual AWS_PROFILE,
AWS_ACCESS_KEY_ID...); it needs only dynamodb:Scan on that table. AWS keeps no history
of runs, so there a release's adoption is estimated from when each device last
changed."""

EPILOG = """\
examples:
  fwwatch report                                   the local state's report
  fwwatch report --out /var/www/fleet.html
  fwwatch report --json > fleet.json               the report's data, for other tools
  fwwatch report --aws-table fwwatch-StateTable-1A2B3C --aws-region eu-central-1
  fwwatch watch --every 6h --report fleet.html     rewritten after every cycle

""" + environment_help(StateSettings, "state (environment variable, or .env)")


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``report`` with its options."""
    report = commands.add_parser(
        "report",
        help="write the fleet report: one HTML page with charts",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        help="where to write it (default fwwatch-report.html; with --json, standard output)",
    )
    report.add_argument("--state", metavar="PATH", help="SQLite state file (FWWATCH_STATE)")
    report.add_argument(
        "--json", action="store_true", help="write the report's data as JSON instead of HTML"
    )
    report.add_argument(
        "--aws-table",
        metavar="NAME",
        help="read the AWS state table NAME instead of the local state",
    )
    report.add_argument(
        "--aws-region",
        metavar="R",
        help="the table's region (default: AWS_REGION or your AWS configuration's)",
    )
    report.set_defaults(command_main=report_command)


def report_command(args: argparse.Namespace, out: TextIO) -> int:
    """Build the report from the local state or the AWS table, and write it."""
    if args.aws_region and not args.aws_table:
        raise UsageError("--aws-region goes with --aws-table NAME")
    if args.aws_table:
        if args.state:
            raise UsageError("--state and --aws-table are two sources: give one")
        from .report_aws import TableUnreadableError, aws_fleet_report

        try:
            report = aws_fleet_report(args.aws_table, args.aws_region)
        except TableUnreadableError as exc:  # AWS's trouble, not the command's: exit 1
            print(f"fwwatch: {strip_controls(str(exc))}", file=sys.stderr)
            return EXIT_DEVICES_FAILED
    else:
        env = environment()
        state = Path(args.state) if args.state else StateSettings.load(env).state
        if not state.exists():
            raise UsageError(f"no state at {state} yet: run `fwwatch run` first")
        with SqliteStore(state) as store:
            report = local_fleet_report(store)
    if args.json:
        data = json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
        if args.out is None:
            out.write(data)
            return EXIT_OK
        write_atomically(args.out, data)
        out.write(f"Wrote {args.out}: the report's data ({_size(len(data.encode()))}).\n")
        return EXIT_OK
    path = args.out or DEFAULT_OUT
    size = write_report(path, report)
    summary = report.summary
    out.write(
        f"Wrote {path} ({_size(size)}): {summary.devices:,} devices, {summary.products:,} "
        f"products. Open {path.resolve().as_uri()}\n"
    )
    return EXIT_OK


def local_fleet_report(store: SqliteStore) -> FleetReport:
    """The report of what a local state file holds."""
    checks = {
        device_id: datetime.fromisoformat(checked)
        for device_id, (checked, _ok, _error) in store.last_checks().items()
    }
    return build_fleet_report(
        store.load_all(),
        mode="local",
        source=f"local state {store.path}",
        last_checks=checks,
        history=store.version_history(),
        ignored=store.ignored_versions(),
    )


def write_report(path: Path, report: FleetReport) -> int:
    """Write the report's page to ``path`` atomically; its size in bytes."""
    page = render_page(report).encode()
    write_atomically(path, page)
    return len(page)


def write_atomically(path: Path, content: str | bytes) -> None:
    """Write ``path`` whole or not at all: a reader (a browser, a web server) never sees a
    half-written file. The content goes to a file beside it, then is renamed over it."""
    data = content.encode() if isinstance(content, str) else content
    folder = path.parent if str(path.parent) else Path(".")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _size(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"
