"""What every command shares: exit statuses, options, configuration, tables, progress."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dotenv import dotenv_values

from ..safe_text import strip_controls
from ..tuya import TuyaSettings, environment_help

if TYPE_CHECKING:
    from ..local.store_sqlite import SqliteStore
    from ..tuya import TuyaClient

logger = logging.getLogger("fwwatch.cli")

EXIT_OK = 0
EXIT_DEVICES_FAILED = 1
EXIT_USAGE = 2

#: The Tuya client's variables, as every command that talks to the cloud shows them.
ENVIRONMENT_HELP = environment_help(
    TuyaSettings, "configuration (environment variables, or a .env file in the current directory)"
)

FORGET_RATE_HELP = (
    "forget the cloud's rate limit learned by earlier runs and find it again, starting slowly"
)

#: What a command's parser hands to ``main``: the parsed arguments and stdout -> exit status.
Command = Callable[[argparse.Namespace, TextIO], int]


class UsageError(Exception):
    """A mistake on the command line (or in a file it names): exit status 2."""


def asynchronous(
    command: Callable[[argparse.Namespace, TextIO], Coroutine[Any, Any, int]],
) -> Command:
    """A :data:`Command` that runs the coroutine ``command`` on an event loop of its own."""

    def run(args: argparse.Namespace, out: TextIO) -> int:
        return asyncio.run(command(args, out))

    return run


def positive_int(text: str) -> int:
    """An option's value that is a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """``--concurrency`` and ``--forget-rate``: how a command that checks devices asks."""
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help="devices at once (default: from TUYA_QPS, 16 to 256)",
    )
    parser.add_argument("--forget-rate", action="store_true", help=FORGET_RATE_HELP)


def environment(dotenv: Path = Path(".env")) -> dict[str, str]:
    """The process environment over the values of a ``.env`` file, if there is one."""
    values: dict[str, str] = {}
    if dotenv.is_file():
        values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    values.update(os.environ)
    return values


def load_settings(environ: Mapping[str, str] | None = None) -> TuyaSettings:
    """The Tuya settings (a :class:`TuyaConfigError` names what is wrong)."""
    return TuyaSettings.load(environment() if environ is None else environ)


@contextlib.asynccontextmanager
async def tuya_client(
    settings: TuyaSettings, store: SqliteStore | None, *, forget_rate: bool = False
) -> AsyncIterator[TuyaClient]:
    """A client that starts at the rate limit an earlier run learned, and keeps what it learns.

    The limit is kept per endpoint and Access ID in the SQLite state; ``forget_rate`` drops
    every learned limit first, so the run finds it again from a slow start.
    """
    from ..tuya import TuyaClient

    key = (settings.base_url, settings.access_id)
    known = None
    if store is not None:
        if forget_rate:
            store.forget_rates()
        known = store.learned_rate(*key)
    client = TuyaClient(settings, known_rate_limit=known)
    try:
        async with client:
            yield client
    finally:
        learned = client.learned_rate_limit
        if store is not None and learned is not None and learned != known:
            try:
                store.remember_rate(*key, learned, datetime.now(UTC))
            except sqlite3.Error as exc:  # a cache: the run's own outcome matters more
                logger.info("could not keep the learned rate limit: %s", exc)


def open_rate_memory(path: Path) -> SqliteStore | None:
    """The state file for the learned rate limit, or ``None`` if it cannot be opened."""
    from ..local.store_sqlite import SqliteStore

    try:
        return SqliteStore(path)
    except (OSError, sqlite3.Error) as exc:
        logger.info("no learned rate limit (%s: %s): starting slowly", path, exc)
        return None


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart, no trailing blanks.

    Cells hold what Tuya said (names, versions, messages): each is shown on one line,
    without control characters or escape sequences.
    """
    rows = [[strip_controls(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        + "\n"
        for row in [header, *rows]
    )


class Progress:
    """``checked 1200/10000`` redrawn on a terminal's stderr; silent when not a terminal."""

    def __init__(self, stream: TextIO | None = None, *, label: str = "checked") -> None:
        self.stream = stream or sys.stderr
        self.label = label
        self.enabled = self.stream.isatty()
        self._last_draw = 0.0

    def update(self, done: int, total: int) -> None:
        """Redraw at most ten times a second, and always at the end."""
        now = time.monotonic()
        if not self.enabled or total <= 1 or (now - self._last_draw < 0.1 and done < total):
            return
        self._last_draw = now
        width = 30
        filled = width * done // total
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}")
        self.stream.flush()

    def done(self) -> None:
        """Clear the line."""
        if self.enabled and self._last_draw:
            self.stream.write("\r" + " " * 72 + "\r")
            self.stream.flush()
