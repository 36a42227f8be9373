"""AWS requests per 1,000 devices, and messages per release, through the real handlers on moto.

The stack is provisioned from template.yaml into moto; the functions' boto3 clients count
every call by operation with botocore's ``before-call`` event hook. What Lambda's SQS poller
does on the functions' behalf (one ReceiveMessage and one DeleteMessageBatch per checker or
digest invocation) and the Lambda invocations themselves are added, since they are billed
too. A second stack counts the SNS messages a release reaching thousands of devices makes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import machine, table
from moto import mock_aws

from tests.aws.provision import provision_stack
from tests.conftest import TEST_ENVIRONMENT

BILLED = {"sqs", "dynamodb", "sns", "secretsmanager"}


class Counting:
    """boto3 clients whose calls are counted by service and operation."""

    def __init__(self, stack: Any) -> None:
        import boto3

        self.calls: Counter[tuple[str, str]] = Counter()
        self._clients: dict[str, Any] = {}
        self._boto3 = boto3

    def client(self, service: str) -> Any:
        if service not in self._clients:
            client = self._boto3.client(service, region_name="eu-central-1")
            name = client.meta.service_model.service_name

            def count(model: Any, **_: Any) -> None:
                self.calls[(name, model.name)] += 1

            client.meta.events.register("before-call.*.*", count)
            self._clients[service] = client
        return self._clients[service]


def fleet(devices: int, products: int) -> Any:
    from fwwatch.simulator import Fleet, FleetChannel, FleetDevice

    return Fleet(
        devices=[
            FleetDevice(
                device_id=f"bfdev{index:06d}",
                name=f"Device {index}",
                product_id=f"product{index % products:02d}",
                product_name=f"Product {index % products}",
                category="cz",
                channels=[FleetChannel(channel=0, current_version="1.0.0")],
            )
            for index in range(devices)
        ]
    )


@dataclass
class Run:
    """One run's figures: calls by operation, invocations, what the topic received."""

    label: str
    calls: Counter[str]
    invocations: dict[str, int]
    published: Counter[str] = field(default_factory=Counter)  # SNS messages by kind


def next_day(_cloud: Any, stack: Any) -> None:
    """A day later: the stored Tuya token has expired (it lives two hours), so the run's
    first call renews it, as every daily run does. Written with a client of its own (not
    counted)."""
    import boto3

    boto3.client("dynamodb", region_name="eu-central-1").update_item(
        TableName=stack.table_name("ControlTable"),
        Key={"pk": {"S": "tuya-token"}},
        UpdateExpression="SET token_expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "0"}},
    )


def release(product: str) -> Any:
    return lambda cloud, _stack: cloud.publish_release(product, 0, "1.1.0")


def measure(devices: int, products: int, runs: list[tuple[str, Any]]) -> list[Run]:
    """Each run of ``runs`` (a label and a change to the cloud or the stack before it, or
    ``None``) on one stack."""
    import os

    os.environ.update(TEST_ENVIRONMENT)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # the functions' INFO logs would go to stdout
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from fwwatch.aws.checker import CheckerService
    from fwwatch.aws.differ import DifferService
    from fwwatch.aws.digest import DigestService
    from fwwatch.aws.scheduler import SchedulerService
    from fwwatch.aws.settings import (
        CheckerSettings,
        DifferSettings,
        DigestSettings,
        SchedulerSettings,
    )
    from fwwatch.simulator import SimulatedCloud, running_simulator

    cloud = SimulatedCloud(fleet(devices, products=products))
    cloud.faults.set_latency(0.005)
    results = []
    # The functions' metrics flush to stdout as EMF lines (CloudWatch reads them there); not
    # this report's.
    with running_simulator(cloud) as sim, mock_aws(), contextlib.redirect_stdout(io.StringIO()):
        # The digest's delay is the stream's time to drain: the driver drains it first.
        stack = provision_stack(
            {"TuyaEndpoint": sim.url, "DigestDelaySeconds": 0},
            tuya_secret={"access_id": sim.access_id, "access_secret": sim.access_secret},
        )
        counting = Counting(stack)

        def env(function: str) -> dict[str, str]:
            return {**stack.function_env(function), "TUYA_QPS": "1000", "RETRY_DELAY_S": "0"}

        def services() -> Services:
            # New services for every run: a new container each time (cold caches, the
            # pessimistic case for Secrets Manager and the token item).
            parameters.clear_caches()

            def container_secrets() -> Any:
                # Each function runs in its own container, with its own cache.
                provider = SecretsProvider(boto3_client=counting.client("secretsmanager"))
                return lambda name: provider.get(name, transform="json", max_age=300)

            sqs, dynamodb = counting.client("sqs"), counting.client("dynamodb")
            return Services(
                scheduler=SchedulerService.from_clients(
                    SchedulerSettings.load(env("SchedulerFunction")),
                    sqs=sqs, dynamodb=dynamodb, read_secret=container_secrets(),
                ),
                checker=CheckerService.from_clients(
                    CheckerSettings.load(env("CheckerFunction")),
                    sqs=sqs, dynamodb=dynamodb, read_secret=container_secrets(),
                ),
                differ=DifferService.from_clients(
                    DifferSettings.load(env("DifferFunction")), sqs=sqs, dynamodb=dynamodb
                ),
                digest=DigestService.from_clients(
                    DigestSettings.load(env("DigestFunction")),
                    sns=counting.client("sns"), sqs=sqs, dynamodb=dynamodb,
                ),
            )  # fmt: skip

        driver = Driver(stack)
        for number, (label, change) in enumerate(runs):
            if change is not None:
                change(cloud, stack)
            counting.calls.clear()
            invocations = driver.run(services(), run_id=f"2026-11-{number + 2:02d}T06:00:00Z")
            per_operation: Counter[str] = Counter(
                {f"{svc}:{op}": n for (svc, op), n in counting.calls.items()}
            )
            results.append(Run(label, per_operation, invocations, driver.published()))
    return results


@dataclass
class Services:
    scheduler: Any
    checker: Any
    differ: Any
    digest: Any


def sqs_record(message: dict[str, Any], queue: str) -> dict[str, Any]:
    """An SQS message as Lambda's event source mapping hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:eu-central-1:123456789012:{queue}",
        "awsRegion": "eu-central-1",
    }


class Driver:
    """Plays Lambda: feeds queue batches and stream records to the services."""

    def __init__(self, stack: Any) -> None:
        import boto3

        self.stack = stack
        self.sqs = boto3.client("sqs", region_name="eu-central-1")
        self.streams = boto3.client("dynamodbstreams", region_name="eu-central-1")
        self.queue = stack.queue_url("CheckQueue")
        self.digest_queue = stack.queue_url("DigestQueue")
        self.stream_arn = stack.get_att("StateTable", "StreamArn")
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"][
            "Shards"
        ]
        self.iterators = [
            self.streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for s in shards
        ]
        # What the topic delivers, as a subscriber queue sees it (not a function's call).
        self.subscriber = self.sqs.create_queue(QueueName="bench-subscriber")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.subscriber, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        boto3.client("sns", region_name="eu-central-1").subscribe(
            TopicArn=stack.topic_arn("NotificationTopic"), Protocol="sqs", Endpoint=arn
        )

    def consume(self, url: str, name: str, handle: Any, invocations: Counter[str]) -> None:
        """An SQS event source: batches of up to 10 until the queue shows nothing."""
        while True:
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return
            handle({"Records": [sqs_record(message, name) for message in got]})
            invocations[name] += 1
            for message in got:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def run(self, services: Services, *, run_id: str) -> dict[str, int]:
        invocations = Counter[str]()
        services.scheduler.run(run_id)
        invocations["scheduler"] += 1
        self.consume(self.queue, "checker", services.checker.handle, invocations)
        records = []
        next_iterators = []
        for iterator in self.iterators:
            while True:  # a call returns at most 1,000 records
                answer = self.streams.get_records(ShardIterator=iterator)
                records += answer["Records"]
                iterator = answer["NextShardIterator"]
                if not answer["Records"]:
                    break
            next_iterators.append(iterator)
        self.iterators = next_iterators
        wanted = [
            r for r in records
            if int(r["dynamodb"].get("NewImage", {}).get("channel", {}).get("N", "-1")) >= 0
        ]  # fmt: skip
        for start in range(0, len(wanted), 100):
            services.differ.handle({"Records": wanted[start : start + 100]})
            invocations["differ"] += 1
        # Only what is due: a deadline request (hours away) waits, invisible, in the queue.
        self.consume(self.digest_queue, "digest", services.digest.handle, invocations)
        invocations["stream records"] = len(records)
        return dict(invocations)

    def published(self) -> Counter[str]:
        """The SNS messages delivered since the last call, by kind (release, ...)."""
        kinds: Counter[str] = Counter()
        while got := self.sqs.receive_message(
            QueueUrl=self.subscriber, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", []):
            for message in got:
                envelope = json.loads(message["Body"])
                kinds[envelope["MessageAttributes"]["kind"]["Value"]] += 1
                self.sqs.delete_message(
                    QueueUrl=self.subscriber, ReceiptHandle=message["ReceiptHandle"]
                )
        return kinds


#: Functions invoked by an SQS event source: Lambda's poller makes one ReceiveMessage and
#: one DeleteMessageBatch per invocation, billed too.
POLLED = ("checker", "digest")
FUNCTIONS = ("scheduler", "checker", "differ", "digest")


def billable(run: Run) -> int:
    poller = 2 * sum(run.invocations.get(name, 0) for name in POLLED)
    lambdas = sum(run.invocations.get(name, 0) for name in FUNCTIONS)
    return sum(run.calls.values()) + poller + lambdas


STATE_WRITES = ("dynamodb:BatchWriteItem", "dynamodb:PutItem")
#: The floor of an unchanged daily run, per 1,000 devices, at the fleet sizes the stack is
#: built for (its own measurement below; a small fleet pays the run's fixed requests).
FLOOR_PER_1000 = 20


def rows_of(runs: list[Run], devices: int) -> list[tuple[Any, ...]]:
    scale = 1000 / devices
    rows = []
    for run in runs:
        detail = ", ".join(f"{op} {n}" for op, n in sorted(run.calls.items()))
        poller = 2 * sum(run.invocations.get(name, 0) for name in POLLED)
        rows.append(
            (
                f"{devices:,}",
                run.label,
                detail,
                poller,
                json.dumps(run.invocations).replace('"', ""),
                billable(run),
                f"{billable(run) * scale:.1f}",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="300 and 3,000 devices")
    args = parser.parse_args()
    small, large = (300, 3000) if args.quick else (1000, 10_000)
    daily = "unchanged fleet, the next day (the token renewed)"
    requests = measure(
        small,
        10,
        [
            ("baseline (first run; not a daily cost)", None),
            ("unchanged fleet, token still valid", None),
            (daily, next_day),
            ("10 % of devices got a new version", release("product03")),
        ],
    )
    at_scale = measure(
        large, 10, [("baseline (first run; not a daily cost)", None), (daily, next_day)]
    )
    print("## AWS requests per 1,000 devices\n")
    print(
        f"{small:,} and {large:,} devices, the stack provisioned from template.yaml into moto "
        "(defaults: 100 device IDs per message, 10 messages per checker invocation), the real "
        "services of the handlers, the simulator in-process. Requests are counted per "
        "operation with botocore's `before-call` hook on the functions' clients; Lambda's own "
        "SQS polling for the checker and the digest (one ReceiveMessage and one "
        "DeleteMessageBatch per invocation) and the Lambda invocations are added; the "
        "stream's reads by Lambda are free and not counted. Each run starts with cold "
        "containers (Secrets Manager, the token and the learned rate read again). A daily "
        "run finds the token expired (Tuya's live two hours) and renews it, so the next-day "
        f"runs are the daily cost. Machine: {machine()}.\n"
    )
    print(
        table(
            (
                "devices",
                "run",
                "calls by the functions",
                "SQS poller",
                "invocations",
                "billable requests",
                "per 1,000 devices",
            ),
            rows_of(requests, small) + rows_of(at_scale[1:], large),
        )
    )
    small_day = next(run for run in requests if run.label == daily)
    large_day = at_scale[1]
    # A run's requests are a fixed part (the scheduler, the first reads of each container,
    # the run's own records) and a part per device: two fleet sizes give both.
    marginal = (billable(large_day) - billable(small_day)) / ((large - small) / 1000)
    fixed = billable(small_day) - marginal * small / 1000
    state_writes = sum(
        large_day.calls.get(call, 0) + small_day.calls.get(call, 0) for call in STATE_WRITES
    )
    at_large = billable(large_day) * 1000 / large
    met = at_large <= FLOOR_PER_1000 and state_writes == 0
    from_size = fixed / (FLOOR_PER_1000 - marginal) * 1000 if marginal < FLOOR_PER_1000 else None
    print(
        f"An unchanged daily run costs about **{fixed:.0f} requests per run plus "
        f"{marginal:.1f} per 1,000 devices** (from the two next-day runs): "
        f"{fixed / 100 + marginal:.1f} per 1,000 devices at 100,000 and "
        f"{fixed / 200 + marginal:.1f} at 200,000, derived.\n\n"
        f"Floor (an unchanged daily run: at most {FLOOR_PER_1000} billable requests per 1,000 "
        f"devices, no write to the state table), at {large:,} devices: "
        f"**{'met' if met else 'NOT met'}** ({at_large:.1f} requests per 1,000, "
        f"{state_writes} PutItem or BatchWriteItem)"
        + (
            f"; it holds from about {from_size:,.0f} devices up. "
            if from_size is not None
            else ". "
        )
        + f"A fleet of {small:,} pays the fixed part alone: "
        f"{billable(small_day) * 1000 / small:.1f} per 1,000. The fixed part is the "
        "scheduler's invocation, secret and token read, the token's renewal (a conditional "
        "lease and one write), the run's listing item (claimed before the first send, so "
        "that a retried invocation sends nothing, and finished after the last), and each "
        "checker container's secret and token read (one container here; each more adds "
        "two); per 1,000 devices, ten state reads, one send of ten messages, a checker "
        "invocation with its two SQS poller requests, the count of its settled messages, "
        "and a fifth of a listing checkpoint. Not counted: the event source mappings' idle "
        "long polling of the queues, which AWS bills whatever the fleet size.\n\n"
        "A changed state is one conditional PutItem (a state never replaces one observed "
        "later, and BatchWriteItem takes no condition), so the runs that write count a call "
        "per state item. DynamoDB bills writes per item, not per call (one write request "
        "unit per item up to 1 KB, on demand), so those calls cost what the same items "
        "written 25 to a BatchWriteItem would: the baseline's calls are a one-off, and the "
        "daily cost is the unchanged run's.\n"
    )
    big = 1000 if args.quick else 5000
    baseline, released = measure(big, 2, [("baseline", None), ("release", release("product00"))])
    reached = released.invocations.get("differ", 0)
    print("## Messages per release\n")
    print(
        f"{big:,} devices of two products; one product's release reaches half of them. "
        "What the topic delivered (an SQS subscriber), by kind: `release` is the message "
        "people get (the e-mail and Slack subscriptions filter on it), `continuation` the "
        "further parts of a release over SNS's 256 KiB, for machines. Before the digest, the "
        "differ published once per stream batch with news.\n"
    )
    print(
        table(
            (
                "devices reached",
                "stream batches with news",
                "SNS messages (before: one per batch)",
                "of which for people (release)",
                "continuation parts",
                "billable requests of the run",
            ),
            [
                (
                    f"{big // 2:,}",
                    reached,
                    sum(released.published.values()),
                    released.published.get("release", 0),
                    released.published.get("continuation", 0),
                    billable(released),
                )
            ],
        )
    )
    assert sum(baseline.published.values()) == 0


if __name__ == "__main__":
    main()
