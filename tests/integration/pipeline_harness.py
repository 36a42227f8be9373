"""Drive the real handlers through the whole chain, on a stack provisioned from template.yaml.

moto runs no Lambda, so this harness plays the part of the Lambda service: it reads what the
queues and the table's stream hold, builds the events Lambda would build, calls the real
handlers with them, and acts on their answers (deleting what succeeded, letting failed
messages be received again until the queue's redrive policy moves them to the DLQ).

One cycle is ``schedule()``, ``run_listing()`` (the listing queue: the steps a long listing
was handed on to), ``run_checkers()``, ``run_differ()`` (the stream drained), then
``run_digest()`` (the digest queue: the run's digest, follow-ups); ``notifications()`` is
what the topic's subscribers then got. Each invocation gets its own request ID and, from
``invocation_clock``, its own remaining time (60 s whenever asked, by default). SQS delays
are real: keep DigestDelaySeconds at 0 in a test's stack, or give
``run_digest(wait_s=...)`` the time to wait for them.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import sys
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from fwwatch.aws.checker import CheckerService
from fwwatch.aws.differ import DifferService
from fwwatch.aws.digest import DigestService
from fwwatch.aws.scheduler import SchedulerService
from fwwatch.aws.settings import (
    CheckerSettings,
    DifferSettings,
    DigestSettings,
    SchedulerSettings,
    SlackSettings,
)
from fwwatch.aws.slack import SlackService

REPO = Path(__file__).resolve().parents[2]
#: The scheduled time of a pipeline's first run; each later run is a day later.
FIRST_RUN = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def handler_module(name: str) -> ModuleType:
    """functions/<name>/app.py, imported under a unique module name."""
    module_name = f"fwwatch_function_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, REPO / "functions" / name / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


#: An invocation's remaining time in milliseconds, as its context tells it when asked.
TimeLeft = Callable[[], int]


@dataclass
class LambdaContext:
    """The fields of Lambda's context that Powertools and the functions read."""

    function_name: str = "fwwatch-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-central-1:123456789012:function:fwwatch-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time_left: TimeLeft | None = None  # None: 60 s, however long the invocation has run

    def get_remaining_time_in_millis(self) -> int:
        return 60_000 if self.time_left is None else self.time_left()


@dataclass(eq=False)  # compared by identity, so it can be tracked in a WeakSet
class Pipeline:
    """The stack's functions wired to moto and the simulator."""

    stack: Any
    overrides: dict[str, str] = field(default_factory=dict)
    slack_transport: Any = None
    invocations: dict[str, int] = field(default_factory=dict)
    #: How long a received message stays invisible (0: as if the invocation timed out).
    visibility_timeout: int = 30
    #: Makes each invocation's clock of remaining time (None: 60 s whenever asked).
    invocation_clock: Callable[[], TimeLeft] | None = None

    def __post_init__(self) -> None:
        parameters.clear_caches()
        dynamodb = self.stack.client("dynamodb")
        sqs = self.stack.client("sqs")
        self.scheduler = SchedulerService.from_clients(
            SchedulerSettings.load(self.env("SchedulerFunction")), sqs=sqs, dynamodb=dynamodb
        )
        self.checker = CheckerService.from_clients(
            CheckerSettings.load(self.env("CheckerFunction")), sqs=sqs, dynamodb=dynamodb
        )
        self.differ = DifferService.from_clients(
            DifferSettings.load(self.env("DifferFunction")), sqs=sqs, dynamodb=dynamodb
        )
        self.digest = DigestService.from_clients(
            DigestSettings.load(self.env("DigestFunction")),
            sns=self.stack.client("sns"),
            sqs=sqs,
            dynamodb=dynamodb,
        )
        self._scheduled = 0
        # As in a Lambda container: one event loop kept from one invocation to the next.
        self.loop = asyncio.new_event_loop()
        _LIVE.add(self)
        self.check_queue = self.stack.queue_url("CheckQueue")
        self.listing_queue = self.stack.queue_url("ListingQueue")
        self.check_dlq = self.stack.queue_url("CheckDeadLetterQueue")
        self.digest_queue = self.stack.queue_url("DigestQueue")
        self.digest_dlq = self.stack.queue_url("DigestDeadLetterQueue")
        self._stream_iterators: list[str] | None = None
        self.subscriber = self._subscribe_queue()

    def env(self, function: str) -> dict[str, str]:
        return {**self.stack.function_env(function), **self.overrides}

    def _invoke(self, name: str, event: dict[str, Any], **service: Any) -> Any:
        """Call a handler as Lambda's runtime does: in the container's event loop, with
        LAMBDA_TASK_ROOT set (Powertools' batch processor then runs on that loop, not in an
        ``asyncio.run`` of its own)."""
        self.invocations[name] = self.invocations.get(name, 0) + 1
        asyncio.set_event_loop(self.loop)
        try:
            with mock.patch.dict(os.environ, {"LAMBDA_TASK_ROOT": str(REPO / "functions" / name)}):
                context = LambdaContext(
                    time_left=self.invocation_clock() if self.invocation_clock else None
                )
                return handler_module(name).handler(event, context, **service)
        finally:
            asyncio.set_event_loop(None)

    def pending_tasks(self) -> list[asyncio.Task[Any]]:
        """Tasks left unfinished on the container's loop between invocations."""
        return [task for task in asyncio.all_tasks(self.loop) if not task.done()]

    def close(self) -> None:
        """End the container: its leftover tasks, async generators, executor, then its loop."""
        if self.loop.is_closed():
            return
        leftovers = self.pending_tasks()
        for task in leftovers:
            task.cancel()
        if leftovers:
            self.loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()

    # -- scheduler

    def schedule(self, run_id: str | None = None, *, by_hand: bool = False) -> dict[str, Any]:
        """One scheduled run, named after its scheduled time as the Scheduler names it (each
        call a day after the last), or ``run_id`` (a retry of the same invocation); with
        ``by_hand``, an invocation without the schedule's input (``aws lambda invoke``)."""
        event = json.loads((REPO / "events" / "scheduler.json").read_text())
        if by_hand:
            event = {}
        elif run_id is None:
            run_id = (FIRST_RUN + timedelta(days=self._scheduled)).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._scheduled += 1
        if run_id is not None:
            event["run_id"] = run_id
        return self.invoke_scheduler(event)

    def invoke_scheduler(self, event: dict[str, Any]) -> dict[str, Any]:
        """The scheduler function invoked with this event (the schedule's input, or not)."""
        return self._invoke("scheduler", event, scheduler=self.scheduler)  # type: ignore[no-any-return]

    def run_listing(self, *, max_rounds: int = 1000) -> list[dict[str, Any]]:
        """Play the listing queue's event source (one message an invocation, as the template
        says) until it is empty: the steps that runs' listings were handed on to."""
        return self._consume(
            "ListingQueue",
            "scheduler",
            max_rounds=max_rounds,
            wait_s=None,
            batch_size=1,
            scheduler=self.scheduler,
        )

    # -- checker

    def run_checkers(self, *, max_rounds: int = 50) -> list[dict[str, Any]]:
        """Receive batches of up to 10 messages and invoke the checker until the queue is empty."""
        return self._consume(
            "CheckQueue", "checker", max_rounds=max_rounds, wait_s=None, checker=self.checker
        )

    def _consume(
        self,
        queue: str,
        name: str,
        *,
        max_rounds: int,
        wait_s: float | None,
        batch_size: int = 10,
        **service: Any,
    ) -> list[dict[str, Any]]:
        """Play an SQS event source: receive up to ``batch_size`` messages, invoke, delete
        what succeeded, make what failed visible again. Delayed messages are waited for (all
        of them with ``wait_s`` None, else for at most ``wait_s`` seconds)."""
        sqs = self.stack.client("sqs")
        url = self.stack.queue_url(queue)
        answers = []
        until = None if wait_s is None else time.monotonic() + wait_s
        for _ in range(max_rounds):
            received = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=batch_size,
                AttributeNames=["All"],
                VisibilityTimeout=self.visibility_timeout,
            ).get("Messages", [])
            if not received:
                if not self._messages_to_come(url):
                    break
                if until is not None and time.monotonic() > until:
                    break
                time.sleep(0.25)  # Lambda polls again; the messages' delay runs out
                continue
            try:
                answer = self._invoke(name, self._sqs_event(received, queue), **service)
            except BatchProcessingError:
                # Every record failed: Lambda sees an error and the whole batch comes back.
                answer = {
                    "batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in received]
                }
            answers.append(answer)
            failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
            for message in received:
                if message["MessageId"] in failed:
                    # As if its visibility timeout ran out: it is received again (or redriven).
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return answers

    def _messages_to_come(self, url: str) -> int:
        """Messages still delayed, or visible already: a delay that runs out between the
        empty receive and this question leaves the message visible, not delayed."""
        names = ["ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessages"]
        attributes = self.stack.client("sqs").get_queue_attributes(
            QueueUrl=url, AttributeNames=names
        )["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in names)

    def _sqs_event(self, messages: list[dict[str, Any]], queue: str) -> dict[str, Any]:
        arn = self.stack.arn(queue)
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": "eu-central-1",
                }
                for m in messages
            ]
        }

    def take_messages(self, url: str) -> list[str]:
        """Every visible message of a queue, received and deleted: their bodies (to send
        them again, as SQS's redeliveries would)."""
        sqs = self.stack.client("sqs")
        bodies: list[str] = []
        while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in got:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def send_raw(self, body: str) -> None:
        self.stack.client("sqs").send_message(QueueUrl=self.check_queue, MessageBody=body)

    def dead_letters(self, queue: str | None = None) -> list[str]:
        """The bodies waiting in a dead-letter queue (the check queue's by default), taken."""
        sqs = self.stack.client("sqs")
        url = queue or self.check_dlq
        bodies: list[str] = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return bodies
            for message in got:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    # -- the table's stream and the differ

    def stream_records(self) -> list[dict[str, Any]]:
        """New stream records since the last call, shaped as Lambda delivers them."""
        streams = self.stack.client("dynamodbstreams")
        arn = self.stack.get_att("StateTable", "StreamArn")
        if self._stream_iterators is None:
            shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
            self._stream_iterators = [
                streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
                for shard in shards
            ]
        records = []
        next_iterators = []
        for iterator in self._stream_iterators:
            while True:  # a call returns at most 1,000 records
                answer = streams.get_records(ShardIterator=iterator)
                records += answer["Records"]
                iterator = answer["NextShardIterator"]
                if not answer["Records"]:
                    break
            next_iterators.append(iterator)
        self._stream_iterators = next_iterators
        for record in records:
            record["eventSourceARN"] = arn
        return records

    def skip_stream(self) -> None:
        """Move past every record in the stream now, unread (a silent baseline's records, in
        tests that need not spend the time)."""
        streams = self.stack.client("dynamodbstreams")
        arn = self.stack.get_att("StateTable", "StreamArn")
        shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        self._stream_iterators = [
            streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
            )["ShardIterator"]
            for shard in shards
        ]

    def run_differ(
        self, records: list[dict[str, Any]] | None = None, *, batch_size: int = 100
    ) -> list[Any]:
        """Deliver stream records to the differ (dropping what the filter criteria drop)."""
        records = self.stream_records() if records is None else records
        wanted = [r for r in records if passes_filter(r)]
        return [
            self._invoke(
                "differ", {"Records": wanted[start : start + batch_size]}, differ=self.differ
            )
            for start in range(0, len(wanted), batch_size)
        ]

    # -- the digest

    def run_digest(self, *, wait_s: float = 0.0, max_rounds: int = 50) -> list[dict[str, Any]]:
        """Play the digest queue's event source until nothing is visible in it, waiting up
        to ``wait_s`` seconds for delayed requests (a deadline) to become visible."""
        return self._consume(
            "DigestQueue", "digest", max_rounds=max_rounds, wait_s=wait_s, digest=self.digest
        )

    def cycle(self) -> list[dict[str, Any]]:
        """One whole run: schedule, checks, the stream drained, the digest; what subscribers
        got."""
        self.schedule()
        self.run_listing()
        self.run_checkers()
        self.run_differ()
        self.run_digest()
        return self.notifications()

    # -- what subscribers get

    def _subscribe_queue(self) -> str:
        sqs, sns = self.stack.client("sqs"), self.stack.client("sns")
        url = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=self.stack.topic_arn("NotificationTopic"), Protocol="sqs", Endpoint=arn
        )
        return str(url)

    def notifications(self) -> list[dict[str, Any]]:
        """SNS envelopes received by the SQS subscription since the last call."""
        sqs = self.stack.client("sqs")
        found = []
        while True:
            got = sqs.receive_message(QueueUrl=self.subscriber, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not got:
                return found
            for message in got:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.subscriber, ReceiptHandle=message["ReceiptHandle"])

    def slack_filter(self) -> dict[str, Any]:
        """The Slack function's subscription filter policy, as the template gives it."""
        event = self.stack.event_source("SlackFunction", "Notifications")
        return dict(event["Properties"].get("FilterPolicy", {}))

    def deliver_to_slack(self, envelopes: list[dict[str, Any]], slack: SlackService) -> Any:
        """What SNS hands the Slack function of these messages: those its subscription's
        filter policy lets through."""
        policy = self.slack_filter()
        event = {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "Sns": {"Message": e["Message"], "Subject": e.get("Subject")},
                }
                for e in envelopes
                if passes_sns_filter(policy, e)
            ]
        }
        return self._invoke("slack", event, slack=slack)

    def slack_service(self, **kwargs: Any) -> SlackService:
        return SlackService(SlackSettings.load(self.env("SlackFunction")), **kwargs)


def attributes_of(envelope: Mapping[str, Any]) -> dict[str, str]:
    """An SNS envelope's message attributes, by name."""
    return {name: a["Value"] for name, a in envelope.get("MessageAttributes", {}).items()}


def passes_sns_filter(policy: Mapping[str, Any], envelope: Mapping[str, Any]) -> bool:
    """A subscription filter policy of exact values (what the template uses) on attributes."""
    attributes = attributes_of(envelope)
    return all(attributes.get(name) in [str(v) for v in values] for name, values in policy.items())


def passes_filter(record: dict[str, Any]) -> bool:
    """The differ's FilterCriteria: no REMOVE, and only real channels (not device items)."""
    if record.get("eventName") == "REMOVE":
        return False
    channel = record.get("dynamodb", {}).get("NewImage", {}).get("channel", {}).get("N")
    return channel is not None and int(channel) >= 0


FleetChange = Callable[[Any], None]


#: Every pipeline not yet closed; tests/integration/conftest.py closes them after each test.
_LIVE: weakref.WeakSet[Pipeline] = weakref.WeakSet()


def close_all() -> None:
    """Close every pipeline made so far."""
    for pipeline in list(_LIVE):
        pipeline.close()
    _LIVE.clear()
