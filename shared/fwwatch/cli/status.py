"""``fwwatch status`` and ``notify-test``: the state as it is, the notifiers as they work."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from typing import TextIO

from ..local.store_sqlite import SqliteStore
from .common import EXIT_DEVICES_FAILED, EXIT_OK, UsageError, asynchronous, environment, table
from .local import LOCAL_HELP, local_settings


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``status`` and ``notify-test`` with their options."""
    raw = argparse.RawDescriptionHelpFormatter
    status = commands.add_parser(
        "status",
        help="show the fleet as the state knows it",
        description="Devices per product, channel and installed version; pending updates "
        "(an offer of a version `fwwatch ignore` skips is marked ignored); devices in error; "
        "when each device was last checked. Reads the state only: no request is sent.",
        epilog=LOCAL_HELP,
        formatter_class=raw,
    )
    status.add_argument("--state", metavar="PATH", help="SQLite state file (FWWATCH_STATE)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(command_main=status_command)

    notify_test = commands.add_parser(
        "notify-test",
        help="send a test message through every configured notifier",
        description="Send a clearly labelled test notification through every configured "
        "notifier and say which worked.",
        epilog=LOCAL_HELP,
        formatter_class=raw,
    )
    notify_test.add_argument("--state", help=argparse.SUPPRESS)
    notify_test.set_defaults(command_main=asynchronous(notify_test_command))


def status_command(args: argparse.Namespace, out: TextIO) -> int:
    """The fleet as the state knows it."""
    local = local_settings(args, environment())
    if not local.state.exists():
        raise UsageError(f"no state at {local.state} yet: run `fwwatch run` first")
    with SqliteStore(local.state) as store:
        states = store.load_all()
        checks = store.last_checks()
        ignored = store.ignored_versions()
    channels = [s for s in states if s.channel >= 0]
    versions = Counter(
        (s.product_name or "", s.product_id or "", s.channel_name, s.current_version or "?")
        for s in channels
    )
    pending = [s for s in channels if s.update_available]
    skipped = {
        s.key for s in pending if ignored.covers_offer(s.product_id, s.channel, s.target_version)
    }
    errors = {
        device_id: (checked, error)
        for device_id, (checked, ok, error) in checks.items()
        if not ok and error is not None
    }
    summary = {
        "devices": len({s.device_id for s in states} | set(checks)),
        "channels": len(channels),
        "versions": [
            {
                "product_name": name,
                "product_id": product_id,
                "channel_name": channel,
                "current_version": version,
                "devices": count,
            }
            for (name, product_id, channel, version), count in sorted(versions.items())
        ],
        "pending_updates": [
            {
                "device_id": s.device_id,
                "product_id": s.product_id,
                "channel": s.channel,
                "current_version": s.current_version,
                "target_version": s.target_version,
                "upgrade_status": s.upgrade_status,
                "ignored": s.key in skipped,
            }
            for s in pending
        ],
        "ignored_versions": [
            {
                "product_id": entry.product_id,
                "channel": entry.channel,
                "version": entry.version,
                "added_at": entry.added_at.isoformat() if entry.added_at else None,
            }
            for entry in ignored.entries
        ],
        "errors": [
            {"device_id": device_id, "last_checked": checked, **error}
            for device_id, (checked, error) in sorted(errors.items())
        ],
        "last_checked": {device_id: checks[device_id][0] for device_id in sorted(checks)},
    }
    if args.json:
        json.dump(summary, out, indent=2)
        out.write("\n")
        return EXIT_OK
    out.write(f"State: {local.state}\n")
    ignored_note = f" ({len(skipped)} ignored)" if skipped else ""
    out.write(
        f"{summary['devices']} devices, {len(channels)} channels, "
        f"{len(pending)} updates pending{ignored_note}, {len(errors)} in error\n\n"
    )
    out.write(
        table(
            ("PRODUCT", "CHANNEL", "INSTALLED", "DEVICES"),
            [
                (f"{name} ({pid})", channel, version, str(count))
                for (name, pid, channel, version), count in sorted(versions.items())
            ],
        )
    )
    if pending:
        out.write("\nPending updates:\n")
        out.write(
            table(
                ("DEVICE", "CHANNEL", "INSTALLED", "OFFERED", "LAST CHECKED"),
                [
                    (
                        s.device_id,
                        s.channel_name,
                        s.current_version or "?",
                        (s.target_version or "?") + (" (ignored)" if s.key in skipped else ""),
                        checks.get(s.device_id, ("never",))[0],
                    )
                    for s in pending
                ],
            )
        )
    if errors:
        out.write("\nDevices in error:\n")
        out.write(
            table(
                ("DEVICE", "CODE", "MESSAGE", "LAST CHECKED"),
                [
                    (device_id, str(error.get("code")), str(error.get("msg")), checked)
                    for device_id, (checked, error) in sorted(errors.items())
                ],
            )
        )
    return EXIT_OK


async def notify_test_command(args: argparse.Namespace, out: TextIO) -> int:
    """Send a labelled test message through every configured notifier."""
    local = local_settings(args, environment())
    notifiers = local.notifiers(out)
    outcomes = await asyncio.gather(
        *(notifier.send_test() for notifier in notifiers), return_exceptions=True
    )
    failed = 0
    for notifier, outcome in zip(notifiers, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failed += 1
            out.write(f"{notifier.name}: FAILED: {outcome}\n")
        else:
            out.write(f"{notifier.name}: ok\n")
    return EXIT_OK if not failed else EXIT_DEVICES_FAILED
