"""Paging through a project's devices: the two listing endpoints and their cursors.

``/v2.0/cloud/thing/device`` pages by the ID of the last device of a page;
``/v1.3/iot-03/devices`` by a row key, while ``has_more`` says so. Both stop at a cursor
they have already followed, so a cloud that keeps answering the same page ends the listing
instead of looping.

:func:`device_pages` gives each page with the cursor of the next one, so that a listing
can stop between pages and be resumed from that cursor later (by another process, even).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol

from .config import TuyaSettings
from .errors import TuyaResponseError
from .models import DeviceSummary

__all__ = ["THING_PAGE_SIZE", "Call", "DevicePage", "device_pages", "devices"]

#: Devices per page of ``/v2.0/cloud/thing/device`` (the most it gives).
THING_PAGE_SIZE = 20


class Call(Protocol):
    """The client's API call: ``(result, tid)`` of one GET, retried and paced."""

    def __call__(
        self, method: str, path: str, *, query: Mapping[str, str | int] | None = None
    ) -> Awaitable[tuple[Any, str | None]]:
        """Call ``path`` with ``query``."""
        ...


@dataclass(frozen=True, slots=True)
class DevicePage:
    """One page of the listing, and the cursor of the next page (``None``: the last)."""

    devices: tuple[DeviceSummary, ...]
    next_cursor: str | None


async def devices(call: Call, settings: TuyaSettings) -> AsyncIterator[DeviceSummary]:
    """Every device of the project, from the listing endpoint the settings choose."""
    async for page in device_pages(call, settings):
        for device in page.devices:
            yield device


async def device_pages(
    call: Call, settings: TuyaSettings, cursor: str | None = None
) -> AsyncIterator[DevicePage]:
    """The listing's pages from ``cursor`` (``None``: the first page) to the last, which
    has no ``next_cursor`` (an empty project, or a cursor past the end: one empty page)."""
    if settings.device_listing == "iot-03":
        pages = _iot03_pages(call, settings, cursor)
    else:
        pages = _thing_pages(call, cursor)
    async with aclosing(pages):  # a listing stopped between pages ends its request loop
        async for raw, next_cursor in pages:
            yield DevicePage(tuple(_parse_device(item) for item in raw), next_cursor)


async def _thing_pages(
    call: Call, last_id: str | None
) -> AsyncGenerator[tuple[list[Any], str | None]]:
    while True:
        query: dict[str, str | int] = {"page_size": THING_PAGE_SIZE}
        if last_id:
            query["last_id"] = last_id
        result, tid = await call("GET", "/v2.0/cloud/thing/device", query=query)
        page = _as_list(result, "list", tid)
        next_id = _item_id(page[-1]) if page else None
        if len(page) < THING_PAGE_SIZE or not next_id or next_id == last_id:
            yield page, None
            return
        yield page, next_id
        last_id = next_id


async def _iot03_pages(
    call: Call, settings: TuyaSettings, row_key: str | None
) -> AsyncGenerator[tuple[list[Any], str | None]]:
    query: dict[str, str | int] = {"page_size": 200}
    if settings.source_type:
        query["source_type"] = settings.source_type
    if settings.source_id:
        query["source_id"] = settings.source_id
    seen_keys: set[str] = set()
    if row_key:
        seen_keys.add(row_key)
        query["last_row_key"] = row_key
    while True:
        result, tid = await call("GET", "/v1.3/iot-03/devices", query=query)
        if not isinstance(result, dict):
            raise TuyaResponseError("device list: expected an object with 'list'", tid=tid)
        page = _as_list(result.get("list"), "list", tid)
        raw_key = result.get("last_row_key")
        valid = isinstance(raw_key, str | int) and not isinstance(raw_key, bool)
        next_key = str(raw_key) if valid else ""
        if not result.get("has_more") or not next_key or next_key in seen_keys:
            yield page, None
            return
        yield page, next_key
        seen_keys.add(next_key)
        query["last_row_key"] = next_key


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
