"""``fwwatch ignore``: skip a version, list the versions skipped, stop skipping one."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ..ignored import (
    IgnoredVersion,
    InvalidIgnoreError,
    validate_channel,
    validate_product_id,
    validate_version,
)
from ..local.config import StateSettings
from ..local.store_sqlite import SqliteStore
from ..state import ChannelState
from ..tuya import environment_help
from ..tuya.models import channel_name
from .common import EXIT_OK, UsageError, environment, table

USAGE = """\
fwwatch ignore PRODUCT_ID VERSION [--channel N] [--state PATH]
       fwwatch ignore --list [--json] [--state PATH]
       fwwatch ignore --remove PRODUCT_ID VERSION [--channel N] [--state PATH]"""

DESCRIPTION = """\
Skip a firmware version: runs tell no update_available news when it is offered to a
device of the product, on any channel (or only on channel N with --channel N). Installs
and failed updates are still told, whatever the version. The state still records the
offer: `fwwatch status` marks it "(ignored)".

Removing an ignore tells the news it held back: the next run announces the version to the
devices still offered it (not to one that installed it meanwhile or is offered another
version since; an offer told before the ignore was set is not told twice). Ignores live in
the state file and count from the next run on; setting one needs no lock, so it works
while a `watch` runs."""

EPILOG = """\
examples:
  fwwatch ignore keyjup78v54myhan 1.2.0               skip 1.2.0 on every channel
  fwwatch ignore keyjup78v54myhan 1.2.0 --channel 0   only on the main module
  fwwatch ignore --list
  fwwatch ignore --remove keyjup78v54myhan 1.2.0

""" + environment_help(StateSettings, "state (environment variable, or .env)")


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``ignore`` with its options."""
    ignore = commands.add_parser(
        "ignore",
        help="skip a firmware version: no news when it is offered",
        usage=USAGE,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ignore.add_argument(
        "product_id", nargs="?", metavar="PRODUCT_ID", help="the product, as `status` shows it"
    )
    ignore.add_argument(
        "version", nargs="?", metavar="VERSION", help="the version, exactly as Tuya offers it"
    )
    ignore.add_argument(
        "--channel",
        type=_channel,
        metavar="N",
        help="only this firmware channel (0 main module, 1 Bluetooth, 3 Zigbee, 9 MCU...); "
        "default: every channel of the product",
    )
    what = ignore.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="list the ignored versions")
    what.add_argument(
        "--remove", action="store_true", help="stop ignoring PRODUCT_ID VERSION (and --channel)"
    )
    ignore.add_argument("--json", action="store_true", help="with --list: print JSON")
    ignore.add_argument("--state", metavar="PATH", help="SQLite state file (FWWATCH_STATE)")
    ignore.set_defaults(command_main=ignore_command)


def _channel(text: str) -> int:
    try:
        return validate_channel(int(text))
    except ValueError as exc:  # InvalidIgnoreError is one too
        detail = str(exc) if isinstance(exc, InvalidIgnoreError) else f"{text!r} is no number"
        raise argparse.ArgumentTypeError(detail) from None


def ignore_command(args: argparse.Namespace, out: TextIO) -> int:
    """Add, list or remove ignored versions in the state."""
    state = _state_path(args)
    if args.list:
        if args.product_id is not None:
            raise UsageError("ignore --list takes no PRODUCT_ID or VERSION")
        if args.channel is not None:
            raise UsageError("ignore --list takes no --channel: it lists every ignored version")
        return _list(state, args.json, out)
    if args.json:
        raise UsageError("--json goes with --list: fwwatch ignore --list --json")
    entry = _entry(args)
    with SqliteStore(state) as store:
        if args.remove:
            return _remove(store, entry, out)
        return _add(store, entry, out)


def _state_path(args: argparse.Namespace) -> Path:
    return Path(args.state) if args.state else StateSettings.load(environment()).state


def _entry(args: argparse.Namespace) -> IgnoredVersion:
    command = "fwwatch ignore --remove" if args.remove else "fwwatch ignore"
    if args.product_id is None or args.version is None:
        raise UsageError(
            f"{command} needs PRODUCT_ID and VERSION, e.g. {command} keyjup78v54myhan 1.2.0"
            + ("" if args.remove else " (or --list)")
        )
    try:
        product_id = validate_product_id(args.product_id)
    except InvalidIgnoreError as exc:
        raise UsageError(f"PRODUCT_ID: {exc}") from None
    try:
        version = validate_version(args.version)
    except InvalidIgnoreError as exc:
        raise UsageError(f"VERSION: {exc}") from None
    return IgnoredVersion(product_id, version, args.channel)


def _add(store: SqliteStore, entry: IgnoredVersion, out: TextIO) -> int:
    existing = store.ignore_version(entry, datetime.now(UTC))
    if existing is not None:
        since = f" (since {_when(existing.added_at)})" if existing.added_at else ""
        out.write(f"Already ignoring {entry.describe()}{since}.\n")
        return EXIT_OK
    out.write(
        f"Ignoring {entry.describe()}.\n"
        "From the next run on, its offers are not news; installs and failures still are.\n"
    )
    if not store.knows_product(entry.product_id):
        out.write(
            f"Note: no device of product {entry.product_id} is in the state yet; "
            "check the ID with `fwwatch status` or `fwwatch devices`.\n"
        )
    out.write(f"Undo: fwwatch ignore --remove {_arguments(entry)}\n")
    return EXIT_OK


def _remove(store: SqliteStore, entry: IgnoredVersion, out: TextIO) -> int:
    if not store.unignore_version(entry):
        others = [
            e
            for e in store.ignored_versions().entries
            if (e.product_id, e.version) == (entry.product_id, entry.version)
        ]
        hint = (
            "; it is ignored as: "
            + ", ".join(f"fwwatch ignore --remove {_arguments(e)}" for e in others)
            if others
            else "; `fwwatch ignore --list` shows what is"
        )
        raise UsageError(f"{entry.describe()} is not ignored{hint}")
    out.write(
        f"No longer ignoring {entry.describe()}.\n"
        "The next run announces it to the devices still offered it.\n"
    )
    return EXIT_OK


def _list(state: Path, as_json: bool, out: TextIO) -> int:
    if state.exists():
        with SqliteStore(state) as store:
            entries = store.ignored_versions().entries
            states = store.load_all()
    else:
        entries, states = (), []
    names = {s.product_id: s.product_name for s in states if s.product_id and s.product_name}
    offered = _on_offer(states)
    rows = [
        {
            "product_id": e.product_id,
            "product_name": names.get(e.product_id),
            "channel": e.channel,
            "version": e.version,
            "added_at": e.added_at.isoformat() if e.added_at else None,
            "on_offer": sum(
                count
                for (product_id, channel, version), count in offered.items()
                if e.covers_offer(product_id, channel, version)
            ),
        }
        for e in entries
    ]
    if as_json:
        json.dump(rows, out, indent=2)
        out.write("\n")
        return EXIT_OK
    if not rows:
        out.write("No version is ignored.\n")
        return EXIT_OK
    out.write(
        table(
            ("PRODUCT", "CHANNEL", "VERSION", "ON OFFER", "SINCE"),
            [
                (
                    f"{row['product_name']} ({row['product_id']})"
                    if row["product_name"]
                    else str(row["product_id"]),
                    "every" if e.channel is None else f"{channel_name(e.channel)} ({e.channel})",
                    e.version,
                    str(row["on_offer"]),
                    _when(e.added_at),
                )
                for row, e in zip(rows, entries, strict=True)
            ],
        )
    )
    return EXIT_OK


def _on_offer(states: list[ChannelState]) -> Counter[tuple[str | None, int, str | None]]:
    """How many device channels are offered each (product, channel, version) now."""
    return Counter(
        (s.product_id, s.channel, s.target_version)
        for s in states
        if s.channel >= 0 and s.update_available
    )


def _arguments(entry: IgnoredVersion) -> str:
    channel = "" if entry.channel is None else f" --channel {entry.channel}"
    return f"{entry.product_id} {entry.version}{channel}"


def _when(moment: datetime | None) -> str:
    return moment.replace(microsecond=0).isoformat() if moment else "-"
