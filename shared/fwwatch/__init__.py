"""fwwatch: know when new firmware exists for your Tuya devices."""

__version__ = "0.1.0"
