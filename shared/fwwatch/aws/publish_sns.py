"""News published on SNS: a readable e-mail, a JSON body for machines, filterable attributes.

One Publish carries two bodies: ``email`` (the text people read) and ``default`` (the JSON
:class:`~fwwatch.messages.NewsMessage`, which every other protocol gets: SQS, Lambda,
HTTP(S), email-json). Its attributes say what it is about (``event_type``, ``product_id``,
``channel``, ``version``) and which kind of message it is (``kind``):

- ``release``: a release's message (its first part, when it has several): the device count
  and the first devices for people, every device (of this part) for machines;
- ``continuation``: the further parts of a release too big for one message (256 KiB), for
  machines: people's subscriptions (e-mail, Slack) filter them out;
- ``run``: the optional message per run that lists every release of it.
"""

from __future__ import annotations

import json
from typing import Any

from ..events import EventGroup
from ..messages import ReleasePart, RunDigestMessage
from ..render import render_json, render_run_subject, render_run_text, render_subject, render_text

__all__ = ["SnsPublisher", "run_message", "sns_message"]

SNS_LIMIT = 256 * 1024
SAFE_LIMIT = 240 * 1024  # headroom for the envelope and attributes


def _attribute(value: str, data_type: str = "String") -> dict[str, str]:
    return {"DataType": data_type, "StringValue": value}


def sns_message(group: EventGroup, *, part: tuple[int, int] | None = None) -> dict[str, Any]:
    """The arguments of one ``Publish`` call for a group."""
    machine = json.dumps(render_json(group), separators=(",", ":"))
    text = render_text(group, part=part)
    number = group.part if isinstance(group, ReleasePart) else (part[0] if part else 1)
    attributes = {
        "kind": _attribute("release" if number == 1 else "continuation"),
        "event_type": _attribute(group.type.value),
        "product_id": _attribute(group.product_id or "unknown"),
        "channel": _attribute(str(group.channel), "Number"),
        "version": _attribute(group.version),
    }
    if isinstance(group, ReleasePart) and group.run_id:
        attributes["run_id"] = _attribute(group.run_id)
    return {
        "Subject": render_subject(group),
        "MessageStructure": "json",
        "Message": json.dumps({"default": machine, "email": text}),
        "MessageAttributes": attributes,
    }


def run_message(digest: RunDigestMessage) -> dict[str, Any]:
    """The arguments of the ``Publish`` call of a run's digest message."""
    machine = json.dumps(digest.as_json(), separators=(",", ":"))
    return {
        "Subject": render_run_subject(digest),
        "MessageStructure": "json",
        "Message": json.dumps({"default": machine, "email": render_run_text(digest)}),
        "MessageAttributes": {"kind": _attribute("run"), "run_id": _attribute(digest.run_id)},
    }


def fits(arguments: dict[str, Any]) -> bool:
    """Whether a Publish call's message is within SNS's limit (with headroom)."""
    return len(str(arguments["Message"]).encode()) <= SAFE_LIMIT


class SnsPublisher:
    """Publishes groups to the topic: whole (:meth:`publish`) or one message at a time."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self.topic_arn = topic_arn
        self.published = 0

    def publish(self, group: EventGroup) -> None:
        """Publish a group, in as few parts as SNS's size limit allows."""
        parts = group.split(self.devices_per_message(group))
        for number, part in enumerate(parts, 1):
            self.publish_one(
                ReleasePart.of(
                    part, release_devices=group.device_count, part=number, parts=len(parts)
                )
            )

    def publish_one(self, group: EventGroup) -> None:
        """One Publish call (the group must fit: see :meth:`devices_per_message`)."""
        self._client.publish(TopicArn=self.topic_arn, **sns_message(group))
        self.published += 1

    def publish_run(self, digest: RunDigestMessage) -> None:
        """One Publish call of a run's digest message."""
        self._client.publish(TopicArn=self.topic_arn, **run_message(digest))
        self.published += 1

    @staticmethod
    def devices_per_message(group: EventGroup) -> int:
        """How many of the group's devices one message holds (the group split that way, in
        device order, gives parts that each fit)."""
        per_part = group.device_count
        size = len(str(sns_message(group)["Message"]).encode())
        if size > SAFE_LIMIT:  # start from the size per device, then make sure
            per_part = max(1, int(group.device_count * SAFE_LIMIT / size * 0.95))
        while per_part > 1:
            parts = group.split(per_part)
            if all(fits(sns_message(ReleasePart.of(part))) for part in parts):
                return per_part
            per_part = max(1, per_part // 2)
        return 1
