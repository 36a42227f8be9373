"""The notifier interface."""

from __future__ import annotations

from typing import Protocol

from ..events import EventGroup

__all__ = ["Notifier", "NotifyError"]


class NotifyError(Exception):
    """A notification could not be delivered; the news stays queued for the next try."""


class Notifier(Protocol):
    """Delivers one group of news (one message) somewhere."""

    #: A stable name: deliveries are recorded per notifier.
    name: str

    async def send(self, group: EventGroup) -> None:
        """Deliver the group, or raise :class:`NotifyError`."""
        ...

    async def send_test(self) -> None:
        """Deliver a clearly labelled test message, or raise :class:`NotifyError`."""
        ...
