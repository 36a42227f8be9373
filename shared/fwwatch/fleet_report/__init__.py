"""The fleet report: what the state says about a fleet's firmware, as data and as a page.

:func:`build_fleet_report` (``build.py``) reads what a state store keeps (SQLite or the AWS
state table) into a :class:`FleetReport` (``model.py``), each release's adoption drawn by
``adoption.py``; :func:`render_page` (``page.py``, with ``charts.py``, ``assets.py`` and
``markup.py``) makes it one self-contained HTML file.
"""

from .build import build_fleet_report
from .model import (
    AdoptionPoint,
    DeviceRow,
    DeviceStatus,
    FleetReport,
    ProductChannel,
    Release,
    Summary,
    VersionShare,
    VersionTally,
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
