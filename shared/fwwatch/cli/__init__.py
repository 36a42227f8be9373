"""The ``fwwatch`` command.

Exit status, the same for ``check`` and ``run``: 0 when every device answered, 1 when some
devices could not be checked (busy, unreachable, unreadable answers; for ``check`` also a
device-level answer such as offline; for ``run`` also news that could not be delivered), 2
on a fatal or configuration error (a wrong secret or data centre, a lapsed account).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence

from .. import __version__
from ..local.config import LocalSettings
from ..tuya import ConfigError, InvalidDeviceIdError, TuyaError, TuyaFatalError, environment_help
from .common import ENVIRONMENT_HELP, EXIT_DEVICES_FAILED, EXIT_USAGE, UsageError

__all__ = ["build_parser", "main"]

#: The local mode's variables, as the commands that keep state or send news show them.
LOCAL_HELP = environment_help(LocalSettings, "local mode (environment variables, or .env)")

CHECK_EXIT_HELP = """\
exit status:
  0  every device was checked
  1  some device answered an error (offline, not in the project) or could not be
     checked (busy, unreachable, unreadable answers: each is listed with its cause)
  2  fatal or configuration error (wrong secret or data centre, lapsed account)"""

RUN_EXIT_HELP = """\
exit status:
  0  every device answered (offline and other device-level answers count as answered)
  1  some devices could not be checked, the device listing failed, or news could not
     be delivered (it stays queued for the next run)
  2  fatal or configuration error (wrong secret or data centre, lapsed account)"""


WATCH_EXIT_HELP = """\
exit status (when it stops): that of its last cycle, as for `run` (0 or 1); 2 when a
fatal or configuration error stopped it"""

FORGET_RATE_HELP = (
    "forget the cloud's rate limit learned by earlier runs and find it again, starting slowly"
)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _jitter(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError("jitter is a fraction between 0 and 1, e.g. 0.1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (it also renders ``--help``)."""
    from .local import parse_duration

    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="fwwatch",
        description="Know when new firmware exists for your Tuya devices.",
        epilog=ENVIRONMENT_HELP + "\n" + LOCAL_HELP,
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=f"fwwatch {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser(
        "check",
        help="check devices for new firmware now",
        description="Ask Tuya's cloud for the firmware of each device, concurrently, and show "
        "for each channel the installed version, the version on offer and whether an update "
        "is available. Every device is reported: checked, answered an error, or not checked "
        "with the cause. Nobody is notified; only the rate limit learned is kept (in "
        "FWWATCH_STATE).",
        epilog=CHECK_EXIT_HELP + "\n\n" + ENVIRONMENT_HELP,
        formatter_class=raw,
    )
    check.add_argument("device_ids", nargs="+", metavar="DEVICE_ID", help="Tuya device IDs")
    check.add_argument("--json", action="store_true", help="print a JSON array, one per device")
    check.add_argument(
        "--concurrency",
        type=_positive_int,
        metavar="N",
        help="devices at once (default: from TUYA_QPS, 16 to 256)",
    )
    check.add_argument("--forget-rate", action="store_true", help=FORGET_RATE_HELP)

    devices = commands.add_parser(
        "devices",
        help="list the cloud project's devices",
        description="List every device of the cloud project, following Tuya's paging to the end.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=raw,
    )
    devices.add_argument("--json", action="store_true", help="print a JSON array")

    def cycle_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--devices",
            metavar="FILE|ID,...",
            help="check these devices (a file with one ID per line, or IDs separated by "
            "commas) instead of every device of the project",
        )
        sub.add_argument("--state", metavar="PATH", help="SQLite state file (FWWATCH_STATE)")
        sub.add_argument(
            "--notify-first-seen",
            action="store_true",
            help="announce updates already on offer when a device is first seen "
            "(by default the first sighting is a silent baseline)",
        )
        sub.add_argument(
            "--concurrency",
            type=_positive_int,
            metavar="N",
            help="devices at once (default: from TUYA_QPS, 16 to 256)",
        )
        sub.add_argument("--forget-rate", action="store_true", help=FORGET_RATE_HELP)

    run = commands.add_parser(
        "run",
        help="run one cycle: check, remember, notify, report",
        description="Check every device (or --devices), compare with the state kept in "
        "SQLite, store what changed, send news of new, installed or failed firmware to every "
        "configured notifier, and print a run report. A run that is interrupted loses "
        "nothing: the next one completes it without sending anything twice. When Tuya "
        "misbehaves the run still ends with a report: devices it could not check are listed "
        "as not checked, with the cause; if the listing fails, the devices known from earlier "
        "runs are checked.",
        epilog=RUN_EXIT_HELP + "\n\n" + ENVIRONMENT_HELP + "\n" + LOCAL_HELP,
        formatter_class=raw,
    )
    cycle_options(run)
    run.add_argument("--json", action="store_true", help="print the run report as JSON")

    watch = commands.add_parser(
        "watch",
        help="run cycles forever, e.g. every 6 hours",
        description="Run a cycle, wait, run again. A cycle that fails (the cloud down, the "
        "state file locked) is logged in one line with the time of the next one, and the "
        "watch goes on; it stops only on a fatal configuration error (exit 2) or a signal. "
        "SIGINT or SIGTERM stops it cleanly: a cycle under way finishes the batch it is on, "
        "and the state stays consistent.",
        epilog=WATCH_EXIT_HELP + "\n\n" + ENVIRONMENT_HELP + "\n" + LOCAL_HELP,
        formatter_class=raw,
    )
    cycle_options(watch)
    watch.add_argument(
        "--every",
        type=parse_duration,
        default=parse_duration("6h"),
        metavar="DURATION",
        help="time between cycles: 30m, 6h, 1d (default 6h)",
    )
    watch.add_argument(
        "--jitter",
        type=_jitter,
        default=0.1,
        metavar="FRACTION",
        help="vary each wait by up to this fraction (default 0.1)",
    )

    status = commands.add_parser(
        "status",
        help="show the fleet as the state knows it",
        description="Devices per product, channel and installed version; pending updates; "
        "devices in error; when each device was last checked. Reads the state only: no "
        "request is sent.",
        epilog=LOCAL_HELP,
        formatter_class=raw,
    )
    status.add_argument("--state", metavar="PATH", help="SQLite state file (FWWATCH_STATE)")
    status.add_argument("--json", action="store_true", help="print JSON")

    notify_test = commands.add_parser(
        "notify-test",
        help="send a test message through every configured notifier",
        description="Send a clearly labelled test notification through every configured "
        "notifier and say which worked.",
        epilog=LOCAL_HELP,
        formatter_class=raw,
    )
    notify_test.add_argument("--state", help=argparse.SUPPRESS)

    simulate = commands.add_parser(
        "simulate",
        help="run a Tuya cloud simulator on this machine",
        description="Serve a simulated Tuya cloud (signing, tokens, firmware, device lists, "
        "rate limits and faults) on a loopback port, so fwwatch can be tried and tested "
        "without a Tuya account.",
        formatter_class=raw,
    )
    simulate.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    simulate.add_argument("--port", type=int, default=8760, help="port (default 8760; 0 = any)")
    fleet = simulate.add_mutually_exclusive_group()
    fleet.add_argument("--fleet", metavar="FILE", help="fleet file (JSON or YAML)")
    fleet.add_argument(
        "--devices", type=_positive_int, metavar="N", help="generate a fleet of N devices"
    )
    simulate.add_argument("--seed", type=int, default=0, help="seed of the generated fleet")
    simulate.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay before every answer (default 0)"
    )
    simulate.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="RPS",
        help="requests per second allowed per API (default: no limit)",
    )
    simulate.add_argument(
        "--token-ttl", type=int, default=7200, metavar="S", help="token lifetime in seconds"
    )
    simulate.add_argument(
        "--listing-fields",
        choices=("camelCase", "snake_case"),
        default="camelCase",
        help="how the /v2.0 device listing spells its fields (Tuya has sent both)",
    )
    simulate.add_argument(
        "--keep-tokens-on-grant",
        action="store_true",
        help="a new grant leaves older tokens alive (by default it revokes them, as Tuya may)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fwwatch`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    out = sys.stdout
    try:
        if args.command == "check":
            from .check import check_command

            return asyncio.run(check_command(args, out))
        if args.command == "devices":
            from .check import devices_command

            return asyncio.run(devices_command(args, out))
        if args.command == "run":
            from .local import run_command

            return asyncio.run(run_command(args, out))
        if args.command == "watch":
            from .local import watch_command

            return asyncio.run(watch_command(args, out))
        if args.command == "status":
            from .local import status_command

            return status_command(args, out)
        if args.command == "notify-test":
            from .local import notify_test_command

            return asyncio.run(notify_test_command(args, out))
        from .simulate import simulate_command

        return simulate_command(args)
    except (UsageError, ConfigError, InvalidDeviceIdError) as exc:
        print(f"fwwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TuyaFatalError as exc:
        print(f"fwwatch: stopped: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TuyaError as exc:
        # Transient trouble that outlasted the retries, where no per-device report exists
        # (``fwwatch devices``): the cause in one line.
        print(f"fwwatch: {exc}", file=sys.stderr)
        return EXIT_DEVICES_FAILED
    except sqlite3.Error as exc:
        print(
            f"fwwatch: the state file cannot be used ({exc}); check FWWATCH_STATE or --state, "
            "and that no other process holds it locked",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except OSError as exc:
        # A state file that cannot be written, a CA bundle (SSL_CERT_FILE) that is missing...
        print(f"fwwatch: {_describe_os_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fwwatch: interrupted", file=sys.stderr)
        return 130


def _describe_os_error(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    if exc.filename:
        return f"{what}: {exc.filename}"
    for variable in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        if os.environ.get(variable):
            return f"{what} (check {variable}={os.environ[variable]})"
    return what


def _configure_logging(verbosity: int) -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if verbosity < 2:
        logging.getLogger("httpx").setLevel(logging.WARNING)
