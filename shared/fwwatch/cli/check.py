"""``fwwatch check`` and ``fwwatch devices``: ask the cloud now."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import TextIO

from ..check import CheckResult, check_devices
from ..local.config import StateSettings
from ..tuya import TuyaClient, TuyaError, validate_device_id
from .common import (
    ENVIRONMENT_HELP,
    EXIT_DEVICES_FAILED,
    EXIT_OK,
    Progress,
    add_client_options,
    asynchronous,
    environment,
    load_settings,
    open_rate_memory,
    table,
    tuya_client,
)

CHECK_EXIT_HELP = """\
exit status:
  0  every device was checked
  1  some device answered an error (offline, not in the project) or could not be
     checked (busy, unreachable, unreadable answers: each is listed with its cause)
  2  fatal or configuration error (wrong secret or data centre, lapsed account)"""


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``check`` and ``devices`` with their options."""
    check = commands.add_parser(
        "check",
        help="check devices for new firmware now",
        description="Ask Tuya's cloud for the firmware of each device, concurrently, and show "
        "for each channel the installed version, the version on offer and whether an update "
        "is available. Every device is reported: checked, answered an error, or not checked "
        "with the cause. Nobody is notified; only the rate limit learned is kept (in "
        "FWWATCH_STATE).",
        epilog=CHECK_EXIT_HELP + "\n\n" + ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("device_ids", nargs="+", metavar="DEVICE_ID", help="Tuya device IDs")
    check.add_argument("--json", action="store_true", help="print a JSON array, one per device")
    add_client_options(check)
    check.set_defaults(command_main=asynchronous(check_command))

    devices = commands.add_parser(
        "devices",
        help="list the cloud project's devices",
        description="List every device of the cloud project, following Tuya's paging to the end.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    devices.add_argument("--json", action="store_true", help="print a JSON array")
    devices.set_defaults(command_main=asynchronous(devices_command))


async def check_command(args: argparse.Namespace, out: TextIO) -> int:
    """Check the devices given, print a table or JSON; 1 when a device was not checked."""
    device_ids = [validate_device_id(device_id) for device_id in args.device_ids]
    env = environment()
    settings = load_settings(env)
    progress = Progress()
    started = time.monotonic()
    done = 0

    def advance(_: CheckResult) -> None:
        nonlocal done
        done += 1
        progress.update(done, len(device_ids))

    # Only the learned rate limit is read from and kept in the state file: the notifiers'
    # settings are not this command's business.
    memory = open_rate_memory(StateSettings.load(env).state)
    try:
        async with tuya_client(settings, memory, forget_rate=args.forget_rate) as tuya:
            results = await check_devices(
                tuya,
                device_ids,
                concurrency=args.concurrency or tuya.connections,
                on_result=advance,
            )
            requests = tuya.stats.requests
    finally:
        if memory is not None:
            memory.close()
    progress.done()
    if args.json:
        json.dump([result.as_dict() for result in results], out, indent=2)
        out.write("\n")
    else:
        out.write(render_check_table(results))
        out.write(check_summary(results, requests, time.monotonic() - started) + "\n")
    return EXIT_OK if all(result.ok for result in results) else EXIT_DEVICES_FAILED


def render_check_table(results: Sequence[CheckResult]) -> str:
    """One row per device channel, or per failed device."""
    header = ("DEVICE", "CHANNEL", "INSTALLED", "OFFERED", "STATUS", "UPDATE")
    rows: list[tuple[str, ...]] = []
    for result in results:
        if result.error is not None:
            status = "device error" if result.answered else "not checked"
            rows.append((result.device_id, "-", "-", "-", status, _error_text(result.error)))
            continue
        channels = result.firmware.channels if result.firmware else ()
        if not channels:
            rows.append((result.device_id, "-", "-", "-", "no firmware", ""))
        for channel in channels:
            offered = channel.target_version or "-"
            rows.append(
                (
                    result.device_id,
                    f"{channel.channel_name} ({channel.channel})",
                    channel.current_version or "?",
                    "-" if offered == channel.current_version else offered,
                    channel.status_name,
                    "yes" if channel.update_available else "",
                )
            )
    return table(header, rows)


def _error_text(error: TuyaError) -> str:
    code = f"[{error.code}] " if error.code is not None else ""
    return f"{code}{error.msg}"


def check_summary(results: Sequence[CheckResult], requests: int, seconds: float) -> str:
    """One line a cron mail makes sense of."""
    checked = sum(1 for result in results if result.ok)
    device_errors = sum(1 for result in results if not result.ok and result.answered)
    not_checked = len(results) - checked - device_errors
    updates = sum(1 for r in results if r.firmware is not None and r.firmware.update_available)
    return (
        f"Checked {checked} of {len(results)} devices: "
        f"{updates} with an update available, {device_errors} device errors, "
        f"{not_checked} not checked ({requests} Tuya requests, {seconds:.1f} s)"
    )


async def devices_command(args: argparse.Namespace, out: TextIO) -> int:
    """List the project's devices."""
    settings = load_settings()
    async with TuyaClient(settings) as tuya:
        devices = [device async for device in tuya.list_devices()]
    if args.json:
        json.dump([device.model_dump(mode="json") for device in devices], out, indent=2)
        out.write("\n")
        return EXIT_OK
    online = {True: "yes", False: "no", None: "?"}
    rows = [
        (
            device.device_id,
            device.name or "",
            f"{device.product_name or ''} ({device.product_id or '?'})",
            device.category or "",
            online[device.online],
        )
        for device in devices
    ]
    out.write(table(("DEVICE", "NAME", "PRODUCT", "CATEGORY", "ONLINE"), rows))
    out.write(f"{len(devices)} devices\n")
    return EXIT_OK
