"""The ``fwwatch`` command.

Exit status, the same for ``check`` and ``run``: 0 when every device answered, 1 when some
devices could not be checked (busy, unreachable, unreadable answers; for ``check`` also a
device-level answer such as offline; for ``run`` also news that could not be delivered), 2
on a fatal or configuration error (a wrong secret or data centre, a lapsed account).
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence

from .. import __version__
from ..local.lock import StateLockError
from ..safe_text import strip_controls
from ..tuya import ConfigError, InvalidDeviceIdError, TuyaError, TuyaFatalError
from . import check, ignore, local, report, simulate, status
from .common import ENVIRONMENT_HELP, EXIT_DEVICES_FAILED, EXIT_USAGE, Command, UsageError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (it also renders ``--help``).

    Each command module registers its own commands and options; this only assembles them.
    """
    parser = argparse.ArgumentParser(
        prog="fwwatch",
        description="Know when new firmware exists for your Tuya devices.",
        epilog=ENVIRONMENT_HELP + "\n" + local.LOCAL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fwwatch {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    check.add_parsers(commands)
    local.add_parsers(commands)
    status.add_parsers(commands)
    ignore.add_parsers(commands)
    report.add_parsers(commands)
    simulate.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fwwatch`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    command: Command = args.command_main
    try:
        return command(args, sys.stdout)
    except (UsageError, ConfigError, InvalidDeviceIdError) as exc:
        _complain(exc)
        return EXIT_USAGE
    except TuyaFatalError as exc:
        _complain(f"stopped: {exc}")
        return EXIT_USAGE
    except StateLockError as exc:
        # Another run or watch cycle on the same state (or a lock that cannot work there).
        _complain(exc)
        return EXIT_USAGE
    except TuyaError as exc:
        # Transient trouble that outlasted the retries, where no per-device report exists
        # (``fwwatch devices``): the cause in one line.
        _complain(exc)
        return EXIT_DEVICES_FAILED
    except sqlite3.Error as exc:
        _complain(
            f"the state file cannot be used ({exc}); check FWWATCH_STATE or --state, "
            "and that no other process holds it locked"
        )
        return EXIT_USAGE
    except OSError as exc:
        # A state file that cannot be written, a CA bundle (SSL_CERT_FILE) that is missing...
        _complain(_describe_os_error(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fwwatch: interrupted", file=sys.stderr)
        return 130


def _complain(problem: object) -> None:
    # A Tuya error's message is the cloud's text: one line, no control characters.
    print(f"fwwatch: {strip_controls(str(problem))}", file=sys.stderr)


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
