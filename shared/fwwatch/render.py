"""Every way a group of events is shown: subject, e-mail text, Slack blocks, JSON.

One place, so that an e-mail, a Slack post, an SNS message and the console all say the same
thing about the same news.
"""

from __future__ import annotations

from typing import Any

from .events import EventGroup, EventType
from .messages import NewsMessage

__all__ = [
    "TEST_SUBJECT",
    "render_json",
    "render_slack",
    "render_subject",
    "render_text",
    "summary_sentence",
]

MAX_SUBJECT = 99  # SNS: under 100 characters, no line breaks
DEVICES_LISTED = 20
TEST_SUBJECT = "fwwatch test notification"

_VERBS = {
    EventType.UPDATE_AVAILABLE: "available",
    EventType.UPDATE_INSTALLED: "installed",
    EventType.UPDATE_FAILED: "failed",
}


def _product(group: EventGroup) -> str:
    return group.product_name or group.product_id or "unknown product"


def _moment(group: EventGroup) -> str:
    """When the news was seen, to the second, as people read it."""
    return group.occurred_at.replace(microsecond=0).isoformat()


def _devices(count: int) -> str:
    return f"{count} device" if count == 1 else f"{count} devices"


def summary_sentence(group: EventGroup) -> str:
    """One sentence: what, which product and channel, from which version, how many devices."""
    devices = _devices(group.device_count)
    channel = f"{group.channel_name} (channel {group.channel})"
    previous = group.previous_versions
    origin = f" (from {', '.join(previous[:3])})" if previous else ""
    where = f"{devices} of {_product(group)}, {channel}{origin}"
    if group.type is EventType.UPDATE_AVAILABLE:
        return f"Firmware {group.version} is available for {where}."
    if group.type is EventType.UPDATE_INSTALLED:
        return f"Firmware {group.version} was installed on {where}."
    return f"The update to {group.version} failed on {where}."


def render_subject(group: EventGroup) -> str:
    """An e-mail subject under 100 characters, on one line."""
    subject = (
        f"fwwatch: {group.version} {_VERBS[group.type]} - {_product(group)} "
        f"{group.channel_name} ({_devices(group.device_count)})"
    )
    subject = " ".join(subject.split())
    if len(subject) > MAX_SUBJECT:
        subject = subject[: MAX_SUBJECT - 3].rstrip() + "..."
    return subject


def render_text(group: EventGroup, *, part: tuple[int, int] | None = None) -> str:
    """The plain-text body of an e-mail: the sentence, the facts, the first devices."""
    lines = [summary_sentence(group), ""]
    lines.append(f"Event:     {group.type.value}")
    lines.append(
        f"Product:   {_product(group)}" + (f" ({group.product_id})" if group.product_id else "")
    )
    lines.append(f"Channel:   {group.channel_name} ({group.channel})")
    if group.previous_versions:
        lines.append(f"From:      {', '.join(group.previous_versions)}")
    lines.append(f"Version:   {group.version}")
    lines.append(f"Devices:   {group.device_count}")
    lines.append(f"Seen at:   {_moment(group)}")
    if part is not None:
        lines.append(f"Part:      {part[0]} of {part[1]}")
    lines.append("")
    shown = group.events[:DEVICES_LISTED]
    lines.append("Devices:" if len(shown) == group.device_count else f"First {len(shown)} devices:")
    for event in shown:
        name = f"  {event.device_name}" if event.device_name else ""
        origin = f"  (was {event.previous_version})" if event.previous_version else ""
        lines.append(f"  - {event.device_id}{name}{origin}")
    if group.device_count > len(shown):
        lines.append(f"  ... and {group.device_count - len(shown)} more")
    lines.append("")
    lines.append("-- fwwatch")
    return "\n".join(lines)


def render_json(group: EventGroup) -> dict[str, Any]:
    """The machine-readable body, for queues and functions (a :class:`NewsMessage`)."""
    return NewsMessage.from_group(group, summary=summary_sentence(group)).as_json()


_EMOJI = {
    EventType.UPDATE_AVAILABLE: ":package:",
    EventType.UPDATE_INSTALLED: ":white_check_mark:",
    EventType.UPDATE_FAILED: ":warning:",
}


def render_slack(group: EventGroup) -> dict[str, Any]:
    """A Slack message: Block Kit blocks with a plain ``text`` fallback."""
    shown = group.events[:DEVICES_LISTED]
    device_lines = "\n".join(
        f"• `{event.device_id}`" + (f" {event.device_name}" if event.device_name else "")
        for event in shown
    )
    if group.device_count > len(shown):
        device_lines += f"\n… and {group.device_count - len(shown)} more"
    fields = [
        {"type": "mrkdwn", "text": f"*Product*\n{_product(group)}"},
        {"type": "mrkdwn", "text": f"*Channel*\n{group.channel_name} ({group.channel})"},
        {"type": "mrkdwn", "text": f"*Version*\n{group.version}"},
        {"type": "mrkdwn", "text": f"*Devices*\n{group.device_count}"},
    ]
    if group.previous_versions:
        fields.append(
            {"type": "mrkdwn", "text": f"*From*\n{', '.join(group.previous_versions[:5])}"}
        )
    return {
        "text": summary_sentence(group),
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": render_subject(group)[:150]},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"{_EMOJI[group.type]} {summary_sentence(group)}",
                },
            },
            {"type": "section", "fields": fields},
            {"type": "section", "text": {"type": "mrkdwn", "text": device_lines[:2900]}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"fwwatch · seen {_moment(group)}"}],
            },
        ],
    }
