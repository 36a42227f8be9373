"""Every way a group of events is shown: subject, e-mail text, Slack blocks, JSON.

One place, so that an e-mail, a Slack post, an SNS message and the console all say the same
thing about the same news. A group that is one message of a run's digest
(:class:`~fwwatch.messages.ReleasePart`) is told with the whole release's device count, and
a follow-up says that its devices come on top of the run's first message; the run's digest
message itself (:class:`~fwwatch.messages.RunDigestMessage`) has its own subject and text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .events import EventGroup, EventType
from .messages import NewsDevice, NewsMessage, ReleasePart, ReleaseSummary, RunDigestMessage

__all__ = [
    "TEST_SUBJECT",
    "release_summary",
    "render_json",
    "render_run_subject",
    "render_run_text",
    "render_slack",
    "render_subject",
    "render_text",
    "run_digest",
    "summary_sentence",
]

MAX_SUBJECT = 99  # SNS: under 100 characters, no line breaks
DEVICES_LISTED = 20
#: Devices each release lists in a run's digest message.
DEVICES_IN_RUN_MESSAGE = 5
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


def _devices(count: int, *, more: bool = False) -> str:
    noun = "device" if count == 1 else "devices"
    return f"{count} more {noun}" if more else f"{count} {noun}"


def _told(group: EventGroup) -> int:
    """How many devices the message tells of: the whole release's, when it is in parts."""
    return group.release_devices if isinstance(group, ReleasePart) else group.device_count


def _follow_up(group: EventGroup) -> bool:
    return isinstance(group, ReleasePart) and group.follow_up


def summary_sentence(group: EventGroup) -> str:
    """One sentence: what, which product and channel, from which version, how many devices."""
    devices = _devices(_told(group), more=_follow_up(group))
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
        f"{group.channel_name} ({_devices(_told(group), more=_follow_up(group))})"
    )
    if isinstance(group, ReleasePart) and group.part > 1:
        subject += f" part {group.part} of {group.parts}"
    return _one_line(subject)


def _one_line(subject: str) -> str:
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
    lines.append(f"Devices:   {_told(group)}")
    lines.append(f"Seen at:   {_moment(group)}")
    if isinstance(group, ReleasePart):
        if part is None and group.parts > 1:
            part = (group.part, group.parts)
        if group.run_id:
            lines.append(f"Run:       {group.run_id}")
        if group.follow_up:
            lines.append("Follow-up: these devices came after this run's first message about it")
    if part is not None:
        lines.append(f"Part:      {part[0]} of {part[1]} ({_devices(group.device_count)} in it)")
    lines.append("")
    shown = group.events[:DEVICES_LISTED]
    lines.append("Devices:" if len(shown) == _told(group) else f"First {len(shown)} devices:")
    for event in shown:
        name = f"  {event.device_name}" if event.device_name else ""
        origin = f"  (was {event.previous_version})" if event.previous_version else ""
        lines.append(f"  - {event.device_id}{name}{origin}")
    if _told(group) > len(shown):
        where = " (every one in the message's JSON body)" if part is None else ""
        lines.append(f"  ... and {_told(group) - len(shown)} more{where}")
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
    if _told(group) > len(shown):
        device_lines += f"\n… and {_told(group) - len(shown)} more"
    fields = [
        {"type": "mrkdwn", "text": f"*Product*\n{_product(group)}"},
        {"type": "mrkdwn", "text": f"*Channel*\n{group.channel_name} ({group.channel})"},
        {"type": "mrkdwn", "text": f"*Version*\n{group.version}"},
        {"type": "mrkdwn", "text": f"*Devices*\n{_told(group)}"},
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


def release_summary(group: EventGroup, *, follow_up: bool = False) -> ReleaseSummary:
    """A release as a run's digest message lists it: subject, sentence, first devices."""
    whole = group if isinstance(group, ReleasePart) else ReleasePart.of(group, follow_up=follow_up)
    return ReleaseSummary(
        type=whole.type,
        product_id=whole.product_id,
        product_name=whole.product_name,
        channel=whole.channel,
        channel_name=whole.channel_name,
        version=whole.version,
        device_count=whole.device_count,
        follow_up=whole.follow_up,
        subject=render_subject(whole),
        summary=summary_sentence(whole),
        first_devices=[
            NewsDevice(device_id=event.device_id, device_name=event.device_name)
            for event in whole.events[:DEVICES_IN_RUN_MESSAGE]
        ],
    )


def run_digest(run_id: str, groups: Sequence[EventGroup]) -> RunDigestMessage:
    """One message listing every release of ``groups`` (at least one), in release order."""
    return RunDigestMessage(run_id=run_id, releases=[release_summary(group) for group in groups])


def render_run_subject(digest: RunDigestMessage) -> str:
    """The subject of a run's digest message: how many releases, how many devices."""
    releases = len(digest.releases)
    noun = "release" if releases == 1 else "releases"
    devices = _devices(digest.device_count, more=digest.follow_up)
    follow_up = " (follow-up)" if digest.follow_up else ""
    return _one_line(f"fwwatch: {releases} {noun}, {devices}{follow_up} - run {digest.run_id}")


def render_run_text(digest: RunDigestMessage) -> str:
    """The e-mail text of a run's digest message: each release, its first devices."""
    releases = len(digest.releases)
    lines = [
        f"This run found news of {releases} release{'s' if releases != 1 else ''} "
        f"({_devices(digest.device_count)})"
        + (", after its first message." if digest.follow_up else "."),
        "",
        f"Run:       {digest.run_id}",
    ]
    for number, release in enumerate(digest.releases, 1):
        lines += ["", f"{number}. {release.subject}", f"   {release.summary}"]
        for device in release.first_devices:
            name = f"  {device.device_name}" if device.device_name else ""
            lines.append(f"     - {device.device_id}{name}")
        if release.device_count > len(release.first_devices):
            lines.append(f"     ... and {release.device_count - len(release.first_devices)} more")
    if any(release.device_count > len(release.first_devices) for release in digest.releases):
        lines += [
            "",
            "Every device of a release: `fwwatch status` in local mode; on AWS, the release's",
            "own message (its JSON body).",
        ]
    lines += ["", "-- fwwatch"]
    return "\n".join(lines)
