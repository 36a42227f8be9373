"""``fwwatch run`` and ``watch``: local mode's cycles."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import re
import signal
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ..cycle import DeviceRetryPolicy
from ..local.config import LocalSettings
from ..local.heartbeat import Heartbeat
from ..local.home_assistant import HomeAssistantPublisher
from ..local.lock import holding_state
from ..local.runner import RunReport, run_cycle
from ..local.store_sqlite import SqliteStore
from ..safe_text import strip_controls
from ..tuya import (
    InvalidDeviceIdError,
    TuyaFatalError,
    TuyaSettings,
    environment_help,
    validate_device_id,
)
from .common import (
    ENVIRONMENT_HELP,
    EXIT_DEVICES_FAILED,
    EXIT_OK,
    Progress,
    UsageError,
    add_client_options,
    asynchronous,
    environment,
    tuya_client,
)
from .report import local_fleet_report, write_report

logger = logging.getLogger("fwwatch.cli")

MAX_DEVICE_FILE_BYTES = 16 * 1024 * 1024
MAX_DEVICES = 1_000_000

#: The local mode's variables, as the commands that keep state or send news show them.
LOCAL_HELP = environment_help(LocalSettings, "local mode (environment variables, or .env)")

RUN_EXIT_HELP = """\
exit status:
  0  every device answered (offline and other device-level answers count as answered)
  1  some devices could not be checked, the device listing failed, news could not
     be delivered (it stays queued for the next run) or may not have arrived (a notifier
     got no answer twice; it is not sent again), or the MQTT broker did not take all
     that changed (the next run publishes the rest)
  2  fatal or configuration error (wrong secret or data centre, lapsed account), or the
     state file in use by another run or watch cycle for longer than FWWATCH_LOCK_WAIT_S"""

WATCH_EXIT_HELP = """\
exit status (when it stops): that of its last cycle, as for `run` (0 or 1); 2 when a
fatal or configuration error stopped it"""


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``run`` and ``watch`` with their options."""
    raw = argparse.RawDescriptionHelpFormatter
    run = commands.add_parser(
        "run",
        help="run one cycle: check, remember, notify, report",
        description="Check every device (or --devices), compare with the state kept in "
        "SQLite, store what changed, send news of new, installed or failed firmware to every "
        "configured notifier (not of offers of a version `fwwatch ignore` skips), publish "
        "each device channel to Home Assistant when FWWATCH_MQTT_URL is set, and print a "
        "run report. A run that is interrupted loses "
        "nothing: the next one completes it without sending anything twice. When Tuya "
        "misbehaves the run still ends with a report: devices it could not check are listed "
        "as not checked, with the cause; if the listing fails, the devices known from earlier "
        "runs are checked. One run or watch cycle at a time uses a state file: another waits "
        "for it up to FWWATCH_LOCK_WAIT_S, then exits 2 naming it.",
        epilog=RUN_EXIT_HELP + "\n\n" + ENVIRONMENT_HELP + "\n" + LOCAL_HELP,
        formatter_class=raw,
    )
    _add_cycle_options(run)
    run.add_argument("--json", action="store_true", help="print the run report as JSON")
    run.set_defaults(command_main=asynchronous(run_command))

    watch = commands.add_parser(
        "watch",
        help="run cycles forever, e.g. every 6 hours",
        description="Run a cycle, wait, run again. A cycle that fails (the cloud down, the "
        "state file locked) is logged in one line with the time of the next one, and the "
        "watch goes on; it stops only on a fatal configuration error (exit 2) or a signal. "
        "SIGINT or SIGTERM stops it cleanly: a cycle under way finishes the batch it is on, "
        "and the state stays consistent. Each cycle holds the state file's lock (see run); "
        "between cycles, `status` and a one-off `run` can use the state. With --report, "
        "the fleet report (see `fwwatch report`) is rewritten after each cycle, whole: a "
        "browser or a web server reading it never sees half a file.",
        epilog=WATCH_EXIT_HELP + "\n\n" + ENVIRONMENT_HELP + "\n" + LOCAL_HELP,
        formatter_class=raw,
    )
    _add_cycle_options(watch)
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
    watch.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="rewrite the fleet report (one HTML page) in FILE after each cycle",
    )
    watch.set_defaults(command_main=asynchronous(watch_command))


def _add_cycle_options(sub: argparse.ArgumentParser) -> None:
    """The options ``run`` and ``watch`` share."""
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
    add_client_options(sub)


def _jitter(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError("jitter is a fraction between 0 and 1, e.g. 0.1")
    return value


def read_device_ids(spec: str) -> list[str]:
    """``--devices``: a file (one ID per line, ``#`` comments, or a JSON array) or ``ID,ID``.

    Every ID is validated before anything is sent; a hostile or broken file is refused
    with the line that is wrong.
    """
    path = Path(spec)
    if path.is_file():
        if path.stat().st_size > MAX_DEVICE_FILE_BYTES:
            raise UsageError(f"{spec}: larger than {MAX_DEVICE_FILE_BYTES // 2**20} MiB")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{spec}: not a UTF-8 text file") from None
        if text.lstrip().startswith("["):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{spec}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
            if not isinstance(raw, list):
                raise UsageError(f"{spec}: expected a JSON array of device IDs")
            entries = [(f"{spec}: item {n}", item) for n, item in enumerate(raw, 1)]
        else:
            entries = [
                (f"{spec}:{n}", line.split("#", 1)[0].strip())
                for n, line in enumerate(text.splitlines(), 1)
            ]
            entries = [(where, value) for where, value in entries if value]
    elif path.exists():
        raise UsageError(f"--devices {spec!r}: not a regular file")
    elif "/" in spec or spec.startswith("."):
        raise UsageError(f"--devices {spec!r}: no such file")
    else:
        entries = [(f"--devices item {n}", v.strip()) for n, v in enumerate(spec.split(","), 1)]
    if len(entries) > MAX_DEVICES:
        raise UsageError(f"{spec}: more than {MAX_DEVICES} devices")
    ids: list[str] = []
    seen: set[str] = set()
    for where, value in entries:
        try:
            device_id = validate_device_id(value)
        except InvalidDeviceIdError as exc:
            raise UsageError(f"{where}: {exc}") from None
        if device_id not in seen:
            seen.add(device_id)
            ids.append(device_id)
    if not ids:
        raise UsageError(f"--devices {spec!r}: no device IDs")
    return ids


def local_settings(args: argparse.Namespace, env: dict[str, str]) -> LocalSettings:
    """Local mode's settings, with ``--state`` over ``FWWATCH_STATE``."""
    local = LocalSettings.load(env)
    if getattr(args, "state", None):
        local = local.model_copy(update={"state": Path(args.state)})
    return local


def _settings(args: argparse.Namespace) -> tuple[TuyaSettings, LocalSettings]:
    env = environment()
    local = local_settings(args, env)
    return TuyaSettings.load(env), local


async def run_command(args: argparse.Namespace, out: TextIO) -> int:
    """One cycle; the report as a summary (or JSON); 1 when some device failed."""
    device_ids = read_device_ids(args.devices) if args.devices else None
    settings, local = _settings(args)
    heartbeat = local.heartbeat()
    try:
        report = await _one_cycle(args, settings, local, device_ids, out)
    except Exception:
        await _tell_heartbeat(heartbeat, None)
        raise
    _print_report(report, args.json, out)
    await _tell_heartbeat(heartbeat, report)
    return EXIT_OK if report.ok else EXIT_DEVICES_FAILED


async def _tell_heartbeat(heartbeat: Heartbeat | None, report: RunReport | None) -> None:
    """After a cycle: success when its report is ok, ``/fail`` when not or when the cycle
    failed (``report`` is ``None``); nothing for a cycle a signal cut short."""
    if heartbeat is None or (report is not None and report.interrupted):
        return
    await heartbeat.send(ok=report is not None and report.ok)


async def _one_cycle(
    args: argparse.Namespace,
    settings: TuyaSettings,
    local: LocalSettings,
    device_ids: list[str] | None,
    out: TextIO,
    stop: asyncio.Event | None = None,
) -> RunReport:
    # With --json, stdout carries only the report: the console notifier writes to stderr.
    notifiers = local.notifiers(sys.stderr if getattr(args, "json", False) else out)
    progress = Progress()
    forget_rate = args.forget_rate
    args.forget_rate = False  # once, not on every cycle of `watch`
    # One process per state file: two delivering from one outbox would post twice.
    async with holding_state(local.state, wait_s=local.lock_wait_s, command=args.command):
        with SqliteStore(local.state) as store:
            broker = local.mqtt_broker
            home_assistant = (
                None
                if broker is None
                else HomeAssistantPublisher(store, broker, prefix=local.mqtt_discovery_prefix)
            )
            async with tuya_client(settings, store, forget_rate=forget_rate) as tuya:
                report = await run_cycle(
                    tuya,
                    store,
                    notifiers,
                    device_ids=device_ids,
                    notify_first_seen=args.notify_first_seen,
                    concurrency=args.concurrency or tuya.connections,
                    retry=DeviceRetryPolicy(
                        max_attempts=local.max_attempts, delay_s=local.retry_delay_s
                    ),
                    on_progress=progress.update,
                    stop=stop,
                    digest_per_run=local.digest_per_run,
                    home_assistant=home_assistant,
                    notify_events=local.events,
                )
    progress.done()
    return report


def _print_report(report: RunReport, as_json: bool, out: TextIO) -> None:
    if as_json:
        json.dump(report.as_dict(), out, indent=2)
        out.write("\n")
        return
    lines = []
    if report.listing_error is not None:
        lines.append(f"  device listing failed: {report.listing_error}")
    for result in report.failed:
        error = result.error
        code = f"[{error.code}] " if error and error.code is not None else ""
        label = "device error" if result.answered else "not checked"
        lines.append(f"  {label}: {result.device_id}: {code}{error.msg if error else ''}")
    published = report.home_assistant
    if published is not None and published.error is not None:
        lines.append(
            f"  home assistant: {published.pending} MQTT messages not published, kept for the "
            f"next cycle ({published.error})"
        )
    for name, outcome in report.notifications.items():
        if outcome.failed:
            lines.append(f"  {name}: {outcome.failed} messages not delivered ({outcome.error})")
        if outcome.uncertain:
            lines.append(
                f"  {name}: {outcome.uncertain} messages may not have arrived, not sent again "
                f"({outcome.error})"
            )
    lines.append(report.summary_line())
    # Errors carry what Tuya or a notifier's server answered: one line each, no controls.
    out.write("".join(strip_controls(line) + "\n" for line in lines))
    out.flush()


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``6h``, ``1d``, ``1h30m`` -> seconds (at least 10 s)."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 6h or 1d")
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if seconds < 10:
        raise argparse.ArgumentTypeError("the interval must be at least 10s")
    return seconds


async def watch_command(args: argparse.Namespace, out: TextIO) -> int:
    """Cycles forever, ``--every`` apart (with jitter); stops cleanly on SIGINT/SIGTERM."""
    device_ids = read_device_ids(args.devices) if args.devices else None
    settings, local = _settings(args)
    if args.report is not None and not args.report.parent.resolve().is_dir():
        raise UsageError(f"--report {args.report}: no folder {args.report.parent} to write it in")
    heartbeat = local.heartbeat()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    out.write(f"fwwatch watch: a cycle every {args.every:.0f} s; Ctrl-C or SIGTERM stops.\n")
    out.flush()
    status = EXIT_OK
    try:
        while not stop.is_set():
            delay = args.every * random.uniform(1 - args.jitter, 1 + args.jitter)
            try:
                report = await _one_cycle(args, settings, local, device_ids, out, stop)
            except TuyaFatalError:
                await _tell_heartbeat(heartbeat, None)
                raise  # no later cycle can do better: a wrong secret, a lapsed account
            except Exception as exc:  # the watch outlives any one bad cycle
                status = EXIT_DEVICES_FAILED
                _log_failed_cycle(exc, delay, out)
                await _tell_heartbeat(heartbeat, None)
            else:
                _print_report(report, False, out)
                status = EXIT_OK if report.ok else EXIT_DEVICES_FAILED
                await _tell_heartbeat(heartbeat, report)
            if args.report is not None:
                # Even after a failed cycle: the report says what the state knows now.
                _rewrite_report(args.report, local, out)
            if stop.is_set():
                break
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                continue
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    out.write("fwwatch watch: stopped.\n")
    return status


def _rewrite_report(path: Path, local: LocalSettings, out: TextIO) -> None:
    """Write the fleet report of the state as the cycle left it; a failure is one line, and
    the watch goes on (the next cycle tries again)."""
    try:
        with SqliteStore(local.state) as store:
            write_report(path, local_fleet_report(store))
    except (OSError, sqlite3.Error) as exc:
        cause = strip_controls(str(exc)) or type(exc).__name__
        out.write(f"fwwatch watch: could not write the report {path} ({cause})\n")
        out.flush()


def _log_failed_cycle(exc: Exception, delay: float, out: TextIO) -> None:
    """One line: what went wrong and when the next cycle runs (the traceback with -vv)."""
    at = datetime.fromtimestamp(time.time() + delay).strftime("%H:%M:%S")
    cause = strip_controls(str(exc)) or type(exc).__name__
    out.write(f"fwwatch watch: the cycle failed ({cause}); the next one runs at {at}\n")
    out.flush()
    logger.debug("the failed cycle", exc_info=exc)
