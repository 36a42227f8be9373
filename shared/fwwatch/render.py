"""Every way a group of events is shown: subject, e-mail text, Slack blocks, JSON.

One place, so that an e-mail, a Slack post, an SNS message and the console all say the same
thing about the same news. A group that is one message of a run's digest
(:class:`~fwwatch.messages.ReleasePart`) is told with the whole release's device count, and
a follow-up says that its devices come on top of the run's first message; the run's digest
message itself (:class:`~fwwatch.messages.RunDigestMessage`) has its own subject and text.

Names, IDs and versions come from Tuya, where anyone who can name a device writes them: every
text here shows them on one line without control characters (:mod:`fwwatch.safe_text`), and
the Slack message escapes them as well, so that a name can neither notify nor link.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .events import EventGroup, EventType, FirmwareEvent
from .messages import NewsDevice, NewsMessage, ReleasePart, ReleaseSummary, RunDigestMessage
from .safe_text import slack_escape, strip_controls

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


def _shown(text: str | None) -> str:
    """Text from outside, as every rendering shows it: one line, no control characters."""
    return strip_controls(text or "")


def _product(group: EventGroup) -> str:
    return _shown(group.product_name or group.product_id) or "unknown product"


def _channel(group: EventGroup) -> str:
    return _shown(group.channel_name)


def _version(group: EventGroup) -> str:
    return _shown(group.version)


def _previous(group: EventGroup, shown: int | None = None) -> str:
    return ", ".join(_shown(version) for version in group.previous_versions[:shown])


def _device(event: FirmwareEvent | NewsDevice, *, before: str = "  ") -> str:
    """A device's ID, then its name if it has one (after ``before``)."""
    name = _shown(event.device_name)
    return _shown(event.device_id) + (f"{before}{name}" if name else "")


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
    channel = f"{_channel(group)} (channel {group.channel})"
    origin = f" (from {_previous(group, 3)})" if group.previous_versions else ""
    where = f"{devices} of {_product(group)}, {channel}{origin}"
    if group.type is EventType.UPDATE_AVAILABLE:
        return f"Firmware {_version(group)} is available for {where}."
    if group.type is EventType.UPDATE_INSTALLED:
        return f"Firmware {_version(group)} was installed on {where}."
    return f"The update to {_version(group)} failed on {where}."


def render_subject(group: EventGroup) -> str:
    """An e-mail subject under 100 characters, on one line."""
    subject = (
        f"fwwatch: {_version(group)} {_VERBS[group.type]} - {_product(group)} "
        f"{_channel(group)} ({_devices(_told(group), more=_follow_up(group))})"
    )
    if isinstance(group, ReleasePart) and group.part > 1:
        subject += f" part {group.part} of {group.parts}"
    return _one_line(subject)


def _one_line(subject: str) -> str:
    subject = " ".join(strip_controls(subject).split())
    if len(subject) > MAX_SUBJECT:
        subject = subject[: MAX_SUBJECT - 3].rstrip() + "..."
    return subject


def render_text(group: EventGroup, *, part: tuple[int, int] | None = None) -> str:
    """The plain-text body of an e-mail: the sentence, the facts, the first devices."""
    lines = [summary_sentence(group), ""]
    lines.append(f"Event:     {group.type.value}")
    product_id = _shown(group.product_id)
    lines.append(f"Product:   {_product(group)}" + (f" ({product_id})" if product_id else ""))
    lines.append(f"Channel:   {_channel(group)} ({group.channel})")
    if group.previous_versions:
        lines.append(f"From:      {_previous(group)}")
    lines.append(f"Version:   {_version(group)}")
    lines.append(f"Devices:   {_told(group)}")
    lines.append(f"Seen at:   {_moment(group)}")
    if isinstance(group, ReleasePart):
        if part is None and group.parts > 1:
            part = (group.part, group.parts)
        if group.run_id:
            lines.append(f"Run:       {_shown(group.run_id)}")
        if group.follow_up:
            lines.append("Follow-up: these devices came after this run's first message about it")
    if part is not None:
        lines.append(f"Part:      {part[0]} of {part[1]} ({_devices(group.device_count)} in it)")
    lines.append("")
    shown = group.events[:DEVICES_LISTED]
    lines.append("Devices:" if len(shown) == _told(group) else f"First {len(shown)} devices:")
    for event in shown:
        origin = f"  (was {_shown(event.previous_version)})" if event.previous_version else ""
        lines.append(f"  - {_device(event)}{origin}")
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


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack neither links URLs nor parses mentions in it; the text is escaped, so
    # only the markup written here (bold, code) is read as such.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def render_slack(group: EventGroup) -> dict[str, Any]:
    """A Slack message: Block Kit blocks with a plain ``text`` fallback.

    Every text from outside is escaped (:func:`~fwwatch.safe_text.slack_escape`): a device
    named ``<!channel>`` is shown so, and notifies nobody.
    """
    shown = group.events[:DEVICES_LISTED]
    device_lines = "\n".join(
        f"• `{slack_escape(_shown(event.device_id))}`"
        + (f" {slack_escape(name)}" if (name := _shown(event.device_name)) else "")
        for event in shown
    )
    if _told(group) > len(shown):
        device_lines += f"\n… and {_told(group) - len(shown)} more"
    fields = [
        _mrkdwn(f"*Product*\n{slack_escape(_product(group))}"),
        _mrkdwn(f"*Channel*\n{slack_escape(_channel(group))} ({group.channel})"),
        _mrkdwn(f"*Version*\n{slack_escape(_version(group))}"),
        _mrkdwn(f"*Devices*\n{_told(group)}"),
    ]
    if group.previous_versions:
        fields.append(_mrkdwn(f"*From*\n{slack_escape(_previous(group, 5))}"))
    summary = slack_escape(summary_sentence(group))
    return {
        "text": summary,
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": slack_escape(render_subject(group))[:150]},
            },
            {"type": "section", "text": _mrkdwn(f"{_EMOJI[group.type]} {summary}")},
            {"type": "section", "fields": fields},
            {"type": "section", "text": _mrkdwn(device_lines[:2900])},
            {
                "type": "context",
                "elements": [_mrkdwn(f"fwwatch · seen {_moment(group)}")],
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
    run = _shown(digest.run_id)
    return _one_line(f"fwwatch: {releases} {noun}, {devices}{follow_up} - run {run}")


def render_run_text(digest: RunDigestMessage) -> str:
    """The e-mail text of a run's digest message: each release, its first devices."""
    releases = len(digest.releases)
    lines = [
        f"This run found news of {releases} release{'s' if releases != 1 else ''} "
        f"({_devices(digest.device_count)})"
        + (", after its first message." if digest.follow_up else "."),
        "",
        f"Run:       {_shown(digest.run_id)}",
    ]
    for number, release in enumerate(digest.releases, 1):
        lines += ["", f"{number}. {_shown(release.subject)}", f"   {_shown(release.summary)}"]
        lines += [f"     - {_device(device)}" for device in release.first_devices]
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
