"""A client for Tuya's cloud OpenAPI: signing, tokens, pacing, retries, typed firmware.

This package is the ground floor of fwwatch: it imports nothing else of fwwatch.
"""

from .client import ClientStats, TuyaClient
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
from .models import (
    DeviceFirmware,
    DeviceSummary,
    FirmwareChannel,
    UpgradeStatus,
    parse_firmware,
    validate_device_id,
)
from .tokens import InMemoryTokenStore, Token, TokenStore

__all__ = [
    "REGIONS",
    "ClientStats",
    "DeviceFirmware",
    "DeviceSummary",
    "FirmwareChannel",
    "InMemoryTokenStore",
    "InvalidDeviceIdError",
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
    "parse_firmware",
    "validate_device_id",
]
