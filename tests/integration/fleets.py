"""Small simulated fleets that several test modules share."""

from __future__ import annotations

from collections.abc import Mapping

from fwwatch.simulator import Fleet, FleetChannel, FleetDevice

LAMP_PRODUCT = "lampprod0001"


def lamps(count: int, *, version: str = "3.0.0") -> Fleet:
    """``count`` smart lamps (``lamp00``...), one channel each, on ``version``."""
    return Fleet(
        devices=[
            FleetDevice(
                device_id=f"lamp{i:02d}",
                name=f"Lamp {i}",
                product_id=LAMP_PRODUCT,
                product_name="Smart lamp",
                category="dj",
                channels=[FleetChannel(channel=0, current_version=version)],
            )
            for i in range(count)
        ]
    )


def products(names: Mapping[str, str], per_product: int, *, prefix: str = "dev") -> Fleet:
    """``per_product`` devices of each product (ID: name), on 1.0.0, in the order given:
    ``<prefix><product's place><n>``, named ``<product name> <n>``."""
    return Fleet(
        devices=[
            FleetDevice(
                device_id=f"{prefix}{p}{i}",
                name=f"{name} {i}",
                product_id=product,
                product_name=name,
                category="cz",
                channels=[FleetChannel(channel=0, current_version="1.0.0")],
            )
            for p, (product, name) in enumerate(names.items())
            for i in range(per_product)
        ]
    )
