"""The notifier interface."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..events import EventGroup
from ..messages import RunDigestMessage

__all__ = ["DeliveryUncertainError", "Notifier", "NotifyError", "RunDigestNotifier"]


class NotifyError(Exception):
    """A notification could not be delivered; the news stays queued for the next try."""


class DeliveryUncertainError(NotifyError):
    """A notification may or may not have been delivered: sending it again could repeat it.

    Raised when a request that may have reached the service went unanswered (a timeout
    while waiting for the answer) and trying once more did not settle it. The caller keeps
    the news as delivered-uncertain and does not send it again.
    """


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


@runtime_checkable
class RunDigestNotifier(Notifier, Protocol):
    """A notifier that can also tell a whole run in one message (``FWWATCH_DIGEST_PER_RUN``).

    Those meant for people reading mail; with the option on, they send one message per run
    listing every release instead of one per release.
    """

    async def send_run(self, digest: RunDigestMessage) -> None:
        """Deliver the run's digest message, or raise :class:`NotifyError`."""
        ...
