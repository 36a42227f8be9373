"""AWS requests per 1,000 devices, through the real handlers on moto.

The stack is provisioned from template.yaml into moto; the functions' boto3 clients count
every call by operation with botocore's ``before-call`` event hook. What Lambda's SQS poller
does on the functions' behalf (one ReceiveMessage and one DeleteMessageBatch per checker
invocation) and the Lambda invocations themselves are added, since they are billed too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
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


def measure(devices: int) -> list[tuple[str, Counter[str], dict[str, int]]]:
    import os

    os.environ.update(TEST_ENVIRONMENT)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # the functions' INFO logs would go to stdout
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from fwwatch.aws.checker import CheckerService
    from fwwatch.aws.differ import DifferService
    from fwwatch.aws.scheduler import SchedulerService
    from fwwatch.aws.settings import CheckerSettings, DifferSettings, SchedulerSettings
    from fwwatch.simulator import SimulatedCloud, running_simulator

    cloud = SimulatedCloud(fleet(devices, products=10))
    cloud.faults.set_latency(0.005)
    results = []
    with running_simulator(cloud) as sim, mock_aws():
        stack = provision_stack(
            {"TuyaEndpoint": sim.url},
            tuya_secret={"access_id": sim.access_id, "access_secret": sim.access_secret},
        )
        counting = Counting(stack)

        def env(function: str) -> dict[str, str]:
            return {**stack.function_env(function), "TUYA_QPS": "1000", "RETRY_DELAY_S": "0"}

        def services() -> tuple[Any, Any, Any]:
            # New services for every run: a new container each time (cold caches, the
            # pessimistic case for Secrets Manager and the token item).
            parameters.clear_caches()

            def container_secrets() -> Any:
                # Each function runs in its own container, with its own cache.
                provider = SecretsProvider(boto3_client=counting.client("secretsmanager"))
                return lambda name: provider.get(name, transform="json", max_age=300)

            scheduler = SchedulerService.from_clients(
                SchedulerSettings.load(env("SchedulerFunction")),
                sqs=counting.client("sqs"), dynamodb=counting.client("dynamodb"),
                read_secret=container_secrets(),
            )  # fmt: skip
            checker = CheckerService.from_clients(
                CheckerSettings.load(env("CheckerFunction")),
                sqs=counting.client("sqs"), dynamodb=counting.client("dynamodb"),
                read_secret=container_secrets(),
            )  # fmt: skip
            differ = DifferService.from_clients(
                DifferSettings.load(env("DifferFunction")),
                sns=counting.client("sns"), dynamodb=counting.client("dynamodb"),
            )  # fmt: skip
            return scheduler, checker, differ

        driver = Driver(stack)
        for label, change in (
            ("baseline (first run; not a daily cost)", None),
            ("unchanged fleet", None),
            (
                "10 % of devices got a new version",
                lambda: cloud.publish_release("product03", 0, "1.1.0"),
            ),
        ):
            if change is not None:
                change()
            counting.calls.clear()
            scheduler, checker, differ = services()
            invocations = driver.run(scheduler, checker, differ)
            per_operation: Counter[str] = Counter(
                {f"{svc}:{op}": n for (svc, op), n in counting.calls.items()}
            )
            results.append((label, per_operation, invocations))
    return results


def sqs_record(message: dict[str, Any]) -> dict[str, Any]:
    """An SQS message as Lambda's event source mapping hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:check",
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

    def run(self, scheduler: Any, checker: Any, differ: Any) -> dict[str, int]:
        invocations = Counter[str]()
        scheduler.run("bench")
        invocations["scheduler"] += 1
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not got:
                break
            event = {"Records": [sqs_record(message) for message in got]}
            checker.handle(event)
            invocations["checker"] += 1
            for message in got:
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
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
            differ.handle({"Records": wanted[start : start + 100]})
            invocations["differ"] += 1
        invocations["stream records"] = len(records)
        return dict(invocations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="300 devices")
    args = parser.parse_args()
    devices = 300 if args.quick else 1000
    results = measure(devices)
    print("## AWS requests per 1,000 devices\n")
    print(
        f"{devices:,} devices, the stack provisioned from template.yaml into moto (defaults: 100 "
        "device IDs per message, 10 messages per checker invocation), the real services of the "
        "handlers, the simulator in-process. Requests are counted per operation with "
        "botocore's `before-call` hook on the functions' clients; Lambda's own SQS polling for "
        "the checker (one ReceiveMessage and one DeleteMessageBatch per invocation) and the "
        "Lambda invocations are added. Each run starts with cold containers (Secrets Manager "
        f"and the token item read again). Machine: {machine()}.\n"
    )
    rows = []
    summary = []
    scale = 1000 / devices
    for label, calls, invocations in results:
        poller = 2 * invocations.get("checker", 0)
        lambdas = sum(invocations.get(name, 0) for name in ("scheduler", "checker", "differ"))
        billed = sum(calls.values()) + poller + lambdas
        writes = sum(
            n
            for op, n in calls.items()
            if op in ("dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
        )
        state_writes = calls.get("dynamodb:BatchWriteItem", 0)
        detail = ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))
        rows.append(
            (
                label,
                detail,
                poller,
                json.dumps(invocations).replace('"', ""),
                billed,
                f"{billed * scale:.1f}",
            )
        )
        summary.append((label, billed * scale, state_writes, writes))
    print(
        table(
            (
                "run",
                "calls by the functions",
                "SQS poller",
                "invocations",
                "billable requests",
                "per 1,000 devices",
            ),
            rows,
        )
    )
    unchanged = next(s for s in summary if s[0] == "unchanged fleet")
    met = unchanged[1] <= 30 and unchanged[2] == 0
    print(
        f"Floor (unchanged run: at most 30 billable requests per 1,000 devices, no DynamoDB "
        f"write): **{'met' if met else 'NOT met'}** ({unchanged[1]:.1f} requests, "
        f"{unchanged[2]} BatchWriteItem). The token lease's UpdateItem calls on the control "
        "table are counted above; they are not state writes. Not counted: the event source "
        "mapping's idle long polling of the queue, which AWS bills whatever the fleet size.\n"
    )


if __name__ == "__main__":
    main()
