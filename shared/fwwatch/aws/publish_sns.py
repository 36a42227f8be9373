"""News published on SNS: a readable e-mail, a JSON body for machines, filterable attributes."""

from __future__ import annotations

import json
from typing import Any

from ..events import EventGroup
from ..render import render_json, render_subject, render_text

__all__ = ["SnsPublisher", "sns_message"]

SNS_LIMIT = 256 * 1024
SAFE_LIMIT = 240 * 1024  # headroom for the envelope and attributes


def sns_message(group: EventGroup, *, part: tuple[int, int] | None = None) -> dict[str, Any]:
    """The arguments of one ``Publish`` call for a group."""
    body = render_json(group)
    machine = json.dumps(body, separators=(",", ":"))
    text = render_text(group, part=part)
    return {
        "Subject": render_subject(group),
        "MessageStructure": "json",
        "Message": json.dumps(
            {
                "default": text,
                "email": text,
                "email-json": machine,
                "sqs": machine,
                "lambda": machine,
                "http": machine,
                "https": machine,
            }
        ),
        "MessageAttributes": {
            "event_type": {"DataType": "String", "StringValue": group.type.value},
            "product_id": {"DataType": "String", "StringValue": group.product_id or "unknown"},
            "channel": {"DataType": "Number", "StringValue": str(group.channel)},
            "version": {"DataType": "String", "StringValue": group.version},
        },
    }


class SnsPublisher:
    """Publishes each group to the topic, split only when it would pass SNS's size limit."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self.topic_arn = topic_arn
        self.published = 0

    def publish(self, group: EventGroup) -> None:
        parts = _fitting_parts(group)
        for number, part in enumerate(parts, 1):
            position = (number, len(parts)) if len(parts) > 1 else None
            self._client.publish(TopicArn=self.topic_arn, **sns_message(part, part=position))
            self.published += 1


def _fitting_parts(group: EventGroup) -> list[EventGroup]:
    per_part = group.device_count
    while per_part > 1:
        parts = group.split(per_part)
        if all(len(sns_message(part)["Message"].encode()) <= SAFE_LIMIT for part in parts):
            return parts
        per_part = max(1, per_part // 2)
    return group.split(1)
