"""The check queue: messages of device IDs, sent ten to a request."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..messages import CheckMessage, DeadLetter

__all__ = ["SqsCheckQueue"]

SEND_BATCH_LIMIT = 10


class SqsCheckQueue:
    """Sends check messages with SendMessageBatch; dead-letters devices that keep failing."""

    def __init__(self, client: Any, queue_url: str, *, dead_letter_url: str | None = None) -> None:
        self._client = client
        self.queue_url = queue_url
        self.dead_letter_url = dead_letter_url

    def send(self, messages: Sequence[CheckMessage], *, delay_s: int = 0) -> int:
        """Send every message (retrying the entries SQS refuses); returns the requests made."""
        requests = 0
        for start in range(0, len(messages), SEND_BATCH_LIMIT):
            entries = {
                str(index): message.model_dump_json(exclude_defaults=True)
                for index, message in enumerate(messages[start : start + SEND_BATCH_LIMIT])
            }
            for attempt in range(5):
                answer = self._client.send_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": key, "MessageBody": body, "DelaySeconds": delay_s}
                        for key, body in entries.items()
                    ],
                )
                requests += 1
                failed = {entry["Id"] for entry in answer.get("Failed", [])}
                entries = {key: body for key, body in entries.items() if key in failed}
                if not entries:
                    break
                time.sleep(0.1 * 2**attempt)
            else:
                raise RuntimeError(f"SQS refused {len(entries)} check messages five times")
        return requests

    def dead_letter(self, letter: DeadLetter) -> None:
        """Put devices that exhausted their attempts on the dead-letter queue, with errors."""
        if self.dead_letter_url is None:
            raise RuntimeError("no dead-letter queue configured")
        self._client.send_message(
            QueueUrl=self.dead_letter_url, MessageBody=letter.model_dump_json()
        )
