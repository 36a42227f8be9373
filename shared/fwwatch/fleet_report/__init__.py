"""The fleet report: what the state says about a fleet's firmware, as data and as a page.

:func:`build_fleet_report` reads what a state store keeps (SQLite or the AWS state table)
into a :class:`FleetReport`; :func:`render_page` makes it one self-contained HTML file.
"""

from .data import (
    AdoptionPoint,
    DeviceRow,
    DeviceStatus,
    FleetReport,
    ProductChannel,
    Release,
    Summary,
    VersionShare,
    VersionTally,
    build_fleet_report,
)
from .page import render_page

__all__ = [
    "AdoptionPoint",
    "DeviceRow",
    "DeviceStatus",
    "FleetReport",
    "ProductChannel",
    "Release",
    "Summary",
    "VersionShare",
    "VersionTally",
    "build_fleet_report",
    "render_page",
]
