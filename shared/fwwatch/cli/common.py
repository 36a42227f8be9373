"""What every command shares: exit statuses, configuration loading, tables, progress."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from dotenv import dotenv_values

from ..tuya import TuyaSettings

EXIT_OK = 0
EXIT_DEVICES_FAILED = 1
EXIT_USAGE = 2

ENVIRONMENT_HELP = """\
configuration (environment variables, or a .env file in the current directory):
  TUYA_ACCESS_ID        the cloud project's Access ID
  TUYA_ACCESS_SECRET    the cloud project's Access Secret (never printed)
  TUYA_REGION           data centre: cn, us, us-e, eu, eu-w, in, sg
  TUYA_ENDPOINT         or a full base URL instead of TUYA_REGION
  TUYA_QPS              ceiling on requests per second (default 20)
  TUYA_DEVICE_LISTING   how to list devices: thing (default) or iot-03
"""


class UsageError(Exception):
    """A mistake on the command line or in the configuration: exit status 2."""


def environment(dotenv: Path = Path(".env")) -> dict[str, str]:
    """The process environment over the values of a ``.env`` file, if there is one."""
    values: dict[str, str] = {}
    if dotenv.is_file():
        values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    values.update(os.environ)
    return values


def load_settings(environ: Mapping[str, str] | None = None) -> TuyaSettings:
    """The Tuya settings (a :class:`TuyaConfigError` names what is wrong)."""
    return TuyaSettings.from_env(environment() if environ is None else environ)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart, no trailing blanks."""
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
