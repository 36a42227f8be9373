"""A client for Tuya's cloud OpenAPI: signing, tokens, pacing, retries, typed firmware.

This package is the ground floor of fwwatch: it imports nothing else of fwwatch.
"""

from typing import TYPE_CHECKING, Any

from .config import REGIONS, TuyaSettings
from .errors import (
    InvalidDeviceIdError,
    TuyaApiError,
    TuyaConfigError,
    TuyaDeviceError,
    TuyaError,
    TuyaFatalError,
    TuyaResponseError,
    TuyaTransientError,
)
from .listing import THING_PAGE_SIZE, DevicePage
from .models import (
    DeviceFirmware,
    DeviceSummary,
    FirmwareChannel,
    UpgradeStatus,
    parse_firmware,
    validate_device_id,
)
from .resilience import RetryPolicy
from .settings import ConfigError, EnvSettings, environment_help, is_loopback_host
from .tokens import InMemoryTokenStore, Token, TokenStore

if TYPE_CHECKING:
    from .client import ClientStats, TuyaClient


def __getattr__(name: str) -> Any:
    # The client (and httpx) load on first use: code that only reads firmware models and
    # errors, like the function that turns state changes into news, never pays for them.
    if name in ("ClientStats", "TuyaClient"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "REGIONS",
    "THING_PAGE_SIZE",
    "ClientStats",
    "ConfigError",
    "DeviceFirmware",
    "DevicePage",
    "DeviceSummary",
    "EnvSettings",
    "FirmwareChannel",
    "InMemoryTokenStore",
    "InvalidDeviceIdError",
    "RetryPolicy",
    "Token",
    "TokenStore",
    "TuyaApiError",
    "TuyaClient",
    "TuyaConfigError",
    "TuyaDeviceError",
    "TuyaError",
    "TuyaFatalError",
    "TuyaResponseError",
    "TuyaSettings",
    "TuyaTransientError",
    "UpgradeStatus",
    "environment_help",
    "is_loopback_host",
    "parse_firmware",
    "validate_device_id",
]
