"""Paging through a project's devices: the two listing endpoints and their cursors.

``/v2.0/cloud/thing/device`` pages by the ID of the last device of a page;
``/v1.3/iot-03/devices`` by a row key, while ``has_more`` says so. Both stop at a cursor
they have already followed, so a cloud that keeps answering the same page ends the listing
instead of looping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, Protocol

from .config import TuyaSettings
from .errors import TuyaResponseError
from .models import DeviceSummary

__all__ = ["Call", "devices"]


class Call(Protocol):
    """The client's API call: ``(result, tid)`` of one GET, retried and paced."""

    def __call__(
        self, method: str, path: str, *, query: Mapping[str, str | int] | None = None
    ) -> Awaitable[tuple[Any, str | None]]:
        """Call ``path`` with ``query``."""
        ...


async def devices(call: Call, settings: TuyaSettings) -> AsyncIterator[DeviceSummary]:
    """Every device of the project, from the listing endpoint the settings choose."""
    if settings.device_listing == "iot-03":
        pages = _iot03_pages(call, settings)
    else:
        pages = _thing_pages(call)
    async for page in pages:
        for item in page:
            yield _parse_device(item)


async def _thing_pages(call: Call) -> AsyncIterator[list[Any]]:
    page_size = 20
    last_id: str | None = None
    while True:
        query: dict[str, str | int] = {"page_size": page_size}
        if last_id:
            query["last_id"] = last_id
        result, tid = await call("GET", "/v2.0/cloud/thing/device", query=query)
        page = _as_list(result, "list", tid)
        if not page:
            return
        yield page
        next_id = _item_id(page[-1])
        if len(page) < page_size or not next_id or next_id == last_id:
            return
        last_id = next_id


async def _iot03_pages(call: Call, settings: TuyaSettings) -> AsyncIterator[list[Any]]:
    query: dict[str, str | int] = {"page_size": 200}
    if settings.source_type:
        query["source_type"] = settings.source_type
    if settings.source_id:
        query["source_id"] = settings.source_id
    seen_keys: set[str] = set()
    while True:
        result, tid = await call("GET", "/v1.3/iot-03/devices", query=query)
        if not isinstance(result, dict):
            raise TuyaResponseError("device list: expected an object with 'list'", tid=tid)
        page = _as_list(result.get("list"), "list", tid)
        if page:
            yield page
        raw_key = result.get("last_row_key")
        valid = isinstance(raw_key, str | int) and not isinstance(raw_key, bool)
        row_key = str(raw_key) if valid else ""
        if not result.get("has_more") or not row_key or row_key in seen_keys:
            return
        seen_keys.add(row_key)
        query["last_row_key"] = row_key


def _parse_device(item: Any) -> DeviceSummary:
    try:
        return DeviceSummary.model_validate(item)
    except ValueError as exc:
        raise TuyaResponseError(f"unreadable device in the device list: {exc}") from None


def _as_list(value: Any, what: str, tid: str | None) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TuyaResponseError(
            f"device list: expected a {what}, got {type(value).__name__}", tid=tid
        )
    return value


def _item_id(item: Any) -> str | None:
    if isinstance(item, dict):
        value = item.get("id") or item.get("device_id")
        return str(value) if value else None
    return None
