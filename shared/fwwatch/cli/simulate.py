"""``fwwatch simulate``: a Tuya cloud on a loopback port."""

from __future__ import annotations

import argparse
import asyncio

from .common import EXIT_OK, UsageError


def simulate_command(args: argparse.Namespace) -> int:
    """Serve the simulator until Ctrl-C."""
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
    elif args.devices:
        fleet = generate_fleet(args.devices, seed=args.seed)
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
        print(f"Tuya cloud simulator with {len(fleet.devices)} devices on {url}")
        print("Point fwwatch at it (the simulator's own, public credentials):")
        print(f"  export TUYA_ENDPOINT={url}")
        print(f"  export TUYA_ACCESS_ID={DEFAULT_ACCESS_ID}")
        print(f"  export TUYA_ACCESS_SECRET={DEFAULT_ACCESS_SECRET}")
        print("Admin API: POST /_sim/releases, /_sim/install, /_sim/faults; GET /_sim/stats")
        print("Ctrl-C stops it.", flush=True)

    try:
        asyncio.run(serve(cloud, args.host, args.port, on_ready=ready))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {exc.strerror}") from None
    return EXIT_OK
