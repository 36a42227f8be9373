"""What a local run did: the report people read in a cron mail and machines read as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..check import CheckResult
from ..events import FirmwareEvent

__all__ = ["NotifierOutcome", "PublishOutcome", "RunReport"]


@dataclass
class NotifierOutcome:
    """What one notifier delivered in a run."""

    sent: int = 0
    failed: int = 0
    #: Messages that may or may not have arrived (never sent again).
    uncertain: int = 0
    error: str | None = None


@dataclass
class PublishOutcome:
    """What the Home Assistant publisher did in a run: MQTT messages the broker took."""

    published: int = 0
    #: Of those, topics cleared (their device left the project).
    cleared: int = 0
    #: Messages not published: kept for the next cycle.
    pending: int = 0
    error: str | None = None


@dataclass
class RunReport:
    """What a run did, for people (:meth:`summary_line`) and machines (:meth:`as_dict`)."""

    run_id: str
    devices: int = 0
    checked: int = 0
    failed: list[CheckResult] = field(default_factory=list)
    events: list[FirmwareEvent] = field(default_factory=list)
    #: Offers of ignored versions seen in this run, held back instead of told.
    ignored_offers: int = 0
    notifications: dict[str, NotifierOutcome] = field(default_factory=dict)
    duration_s: float = 0.0
    tuya_requests: int = 0
    interrupted: bool = False
    listing_error: str | None = None
    #: What went to Home Assistant over MQTT, when it is configured.
    home_assistant: PublishOutcome | None = None
    #: The project's devices, when this run listed every one of them.
    project_devices: frozenset[str] | None = None

    @property
    def not_checked(self) -> list[CheckResult]:
        """Devices the cloud gave no answer for (busy, unreachable, unreadable)."""
        return [result for result in self.failed if not result.answered]

    @property
    def device_errors(self) -> list[CheckResult]:
        """Devices that answered with a device-level error (offline, not in the project)."""
        return [result for result in self.failed if result.answered]

    @property
    def ok(self) -> bool:
        """Every device answered (offline counts), the listing worked, news surely went out,
        Home Assistant got what changed."""
        return (
            not self.not_checked
            and self.listing_error is None
            and not self.interrupted
            and self.notification_failures == 0
            and self.notifications_uncertain == 0
            and (self.home_assistant is None or self.home_assistant.error is None)
        )

    @property
    def notification_failures(self) -> int:
        """Messages that could not be delivered (they stay queued)."""
        return sum(outcome.failed for outcome in self.notifications.values())

    @property
    def notifications_uncertain(self) -> int:
        """Messages that may not have arrived (the notifier got no answer; not sent again)."""
        return sum(outcome.uncertain for outcome in self.notifications.values())

    def as_dict(self) -> dict[str, Any]:
        """The run report as ``fwwatch run --json`` prints it."""
        return {
            "run_id": self.run_id,
            "devices": self.devices,
            "checked": self.checked,
            "failed": [
                {
                    "device_id": result.device_id,
                    "outcome": result.outcome,
                    "code": result.error.code if result.error else None,
                    "msg": result.error.msg if result.error else "",
                }
                for result in self.failed
            ],
            "not_checked": len(self.not_checked),
            "device_errors": len(self.device_errors),
            "listing_error": self.listing_error,
            "events": [
                {
                    key: value
                    for key, value in event.as_dict().items()
                    if key
                    in (
                        "type",
                        "device_id",
                        "channel",
                        "product_id",
                        "previous_version",
                        "current_version",
                        "target_version",
                    )
                }
                for event in self.events
            ],
            "ignored_offers": self.ignored_offers,
            "notifications": {
                name: {
                    "sent": outcome.sent,
                    "failed": outcome.failed,
                    "uncertain": outcome.uncertain,
                    "error": outcome.error,
                }
                for name, outcome in self.notifications.items()
            },
            "home_assistant": (
                None
                if self.home_assistant is None
                else {
                    "published": self.home_assistant.published,
                    "cleared": self.home_assistant.cleared,
                    "pending": self.home_assistant.pending,
                    "error": self.home_assistant.error,
                }
            ),
            "duration_s": round(self.duration_s, 3),
            "tuya_requests": self.tuya_requests,
            "interrupted": self.interrupted,
        }

    def summary_line(self) -> str:
        """One line a cron mail makes sense of."""
        sent = sum(outcome.sent for outcome in self.notifications.values())
        parts = [
            f"fwwatch run {self.run_id}: checked {self.checked} of {self.devices} devices",
            _count(len(self.device_errors), "device error"),
            f"{len(self.not_checked)} not checked",
            _count(len(self.events), "new event"),
            _count(sent, "notification") + " sent",
        ]
        if self.ignored_offers:
            parts.append(_count(self.ignored_offers, "update offer") + " ignored")
        if self.notification_failures:
            parts.append(f"{self.notification_failures} notifications queued for retry")
        if self.notifications_uncertain:
            parts.append(
                _count(self.notifications_uncertain, "notification") + " may not have arrived"
            )
        if self.home_assistant is not None:
            parts.append(_count(self.home_assistant.published, "MQTT message") + " published")
            if self.home_assistant.pending:
                parts.append(f"{self.home_assistant.pending} kept for the next cycle")
        if self.listing_error is not None:
            parts.append("device listing failed")
        if self.interrupted:
            parts.append("interrupted")
        return ", ".join(parts) + f" ({self.tuya_requests} Tuya requests, {self.duration_s:.1f} s)"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
