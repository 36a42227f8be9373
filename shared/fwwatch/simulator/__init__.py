"""A faithful Tuya Cloud simulator: the OpenAPI calls fwwatch makes, served over real HTTP.

`SimulatedCloud` holds the rules (signing, tokens, rate limits, the firmware and listing
APIs, injectable faults); `SimulatorServer`, `serve` and `running_simulator` put it behind
an aiohttp server; `Fleet` and friends describe the simulated devices.
"""

from fwwatch.simulator.cloud import (
    DEFAULT_ACCESS_ID,
    DEFAULT_ACCESS_SECRET,
    SimResponse,
    SimulatedCloud,
    Stats,
    TokenPair,
    UnknownDeviceError,
)
from fwwatch.simulator.faults import Faults
from fwwatch.simulator.fleet import (
    DEFAULT_PRODUCTS,
    ChannelTemplate,
    Fleet,
    FleetChannel,
    FleetDevice,
    FleetFileError,
    ProductTemplate,
    channel_name,
    demo_fleet,
    generate_fleet,
    load_fleet,
)
from fwwatch.simulator.server import RunningSimulator, SimulatorServer, running_simulator, serve
from fwwatch.simulator.signing import build_signed_headers

__all__ = [
    "DEFAULT_ACCESS_ID",
    "DEFAULT_ACCESS_SECRET",
    "DEFAULT_PRODUCTS",
    "ChannelTemplate",
    "Faults",
    "Fleet",
    "FleetChannel",
    "FleetDevice",
    "FleetFileError",
    "ProductTemplate",
    "RunningSimulator",
    "SimResponse",
    "SimulatedCloud",
    "SimulatorServer",
    "Stats",
    "TokenPair",
    "UnknownDeviceError",
    "build_signed_headers",
    "channel_name",
    "demo_fleet",
    "generate_fleet",
    "load_fleet",
    "running_simulator",
    "serve",
]
