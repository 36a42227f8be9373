"""The queues: check messages (device IDs, sent ten to a request), digest requests, and the
listing's continuations."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..messages import CheckMessage, DeadLetter, DigestRequest, ListingContinuation

__all__ = ["MAX_DELAY_S", "SqsCheckQueue", "SqsDigestQueue", "SqsListingQueue"]

SEND_BATCH_LIMIT = 10
#: The longest SQS holds a message back.
MAX_DELAY_S = 900


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


class SqsDigestQueue:
    """Sends digest requests, each held back until it is due (at most :data:`MAX_DELAY_S`:
    a request due later arrives early, and the digest sends it on again)."""

    def __init__(
        self, client: Any, queue_url: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self.queue_url = queue_url
        self._clock = clock

    def send(self, requests: Sequence[DigestRequest]) -> None:
        """Send the requests (one SendMessage, or one SendMessageBatch for several)."""
        now = self._clock()
        entries = [
            {
                "Id": str(index),
                "MessageBody": request.model_dump_json(),
                "DelaySeconds": min(MAX_DELAY_S, max(0, math.ceil(request.not_before - now))),
            }
            for index, request in enumerate(requests)
        ]
        if len(entries) == 1:
            entry = entries[0]
            self._client.send_message(
                QueueUrl=self.queue_url,
                MessageBody=entry["MessageBody"],
                DelaySeconds=entry["DelaySeconds"],
            )
            return
        for start in range(0, len(entries), SEND_BATCH_LIMIT):
            answer = self._client.send_message_batch(
                QueueUrl=self.queue_url, Entries=entries[start : start + SEND_BATCH_LIMIT]
            )
            if answer.get("Failed"):
                raise RuntimeError(f"SQS refused {len(answer['Failed'])} digest requests")


class SqsListingQueue:
    """Sends a run's listing on to its next step."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def send(self, continuation: ListingContinuation) -> None:
        """One SendMessage."""
        self._client.send_message(
            QueueUrl=self.queue_url, MessageBody=continuation.model_dump_json()
        )
