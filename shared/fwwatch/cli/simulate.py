"""``fwwatch simulate``: a Tuya cloud on a loopback port."""

from __future__ import annotations

import argparse
import asyncio
from typing import TextIO

from .common import EXIT_OK, UsageError, positive_int


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``simulate`` with its options."""
    simulate = commands.add_parser(
        "simulate",
        help="run a Tuya cloud simulator on this machine",
        description="Serve a simulated Tuya cloud (signing, tokens, firmware, device lists, "
        "rate limits and faults) on a loopback port, so fwwatch can be tried and tested "
        "without a Tuya account.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    simulate.add_argument("--port", type=int, default=8760, help="port (default 8760; 0 = any)")
    fleet = simulate.add_mutually_exclusive_group()
    fleet.add_argument("--fleet", metavar="FILE", help="fleet file (JSON or YAML)")
    fleet.add_argument(
        "--fleet-size", type=positive_int, metavar="N", help="generate a fleet of N devices"
    )
    # The option's old name, kept for scripts: `run --devices` names the devices to check,
    # which made `simulate --devices N` read as something it is not.
    fleet.add_argument(
        "--devices",
        dest="fleet_size",
        type=positive_int,
        help=argparse.SUPPRESS,
        deprecated=True,
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
    simulate.set_defaults(command_main=simulate_command)


def simulate_command(args: argparse.Namespace, out: TextIO) -> int:
    """Serve the simulator until Ctrl-C, saying on ``out`` how to point fwwatch at it."""
    from ..simulator import (
        DEFAULT_ACCESS_ID,
        DEFAULT_ACCESS_SECRET,
        FleetFileError,
        SimulatedCloud,
        demo_fleet,
        generate_fleet,
        load_fleet,
        serve,
    )

    if args.fleet:
        try:
            fleet = load_fleet(args.fleet)
        except (OSError, FleetFileError) as exc:
            raise UsageError(str(exc)) from None
    elif args.fleet_size:
        fleet = generate_fleet(args.fleet_size, seed=args.seed)
    else:
        fleet = demo_fleet()
    cloud = SimulatedCloud(
        fleet,
        access_id=DEFAULT_ACCESS_ID,
        access_secret=DEFAULT_ACCESS_SECRET,
        token_ttl_s=args.token_ttl,
        rate_limit_rps=args.rate_limit,
        listing_fields=args.listing_fields,
        revoke_on_grant=not args.keep_tokens_on_grant,
    )
    cloud.faults.set_latency(args.latency_ms / 1000)

    def ready(url: str) -> None:
        out.write(
            f"Tuya cloud simulator with {len(fleet.devices)} devices on {url}\n"
            "Point fwwatch at it (the simulator's own, public credentials):\n"
            f"  export TUYA_ENDPOINT={url}\n"
            f"  export TUYA_ACCESS_ID={DEFAULT_ACCESS_ID}\n"
            f"  export TUYA_ACCESS_SECRET={DEFAULT_ACCESS_SECRET}\n"
            "Admin API: POST /_sim/releases, /_sim/install, /_sim/faults; GET /_sim/stats\n"
            "Ctrl-C stops it.\n"
        )
        out.flush()

    try:
        asyncio.run(serve(cloud, args.host, args.port, on_ready=ready))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {exc.strerror}") from None
    return EXIT_OK
