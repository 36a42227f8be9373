"""The fault matrix's delivery rows: what each subscriber receives when delivery goes wrong.

Every row runs one story in both modes: a baseline, a release of two products (two
messages), the fault, then cycles with the fault cleared until nothing is left to send.
Two subscribers count what they received, per product:

- ``mail``: local mode's JSON-lines notifier (a file, as a mailbox is), the SNS topic's
  subscriber queue on AWS (where e-mail subscriptions get their copy);
- ``slack``: the fake webhook on loopback, posted to by local mode's Slack notifier or by
  the AWS Slack function, invoked once per SNS message and again when it raises, as Lambda's
  asynchronous retries do.

Each row asserts the exact number of messages every subscriber got. Where a mode's physics
differs (on AWS one publish reaches every subscriber; locally each notifier has its own
record), the row says both. docs/reliability.md quotes these rows.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fwwatch.cycle import DeviceRetryPolicy
from fwwatch.local.runner import run_cycle
from fwwatch.local.store_sqlite import SqliteStore
from fwwatch.notify import JsonLinesNotifier, NotifyError, SlackNotifier
from fwwatch.simulator import Fleet
from fwwatch.tuya import RetryPolicy, TuyaClient, TuyaSettings
from tests.aws.template import load_template
from tests.integration.conftest import point_cli_at
from tests.integration.fakes import FakeSlack, failing_calls, serving_fake_slack
from tests.integration.fleets import products
from tests.integration.pipeline_harness import Pipeline

pytestmark = pytest.mark.integration

PRODUCTS = {"plugprod0001": "Smart plug", "lampprod0001": "Smart lamp"}
#: Timeouts far under the fake's late answers (1 s): 0.1 s, then 0.3 s for the one retry.
SHORT = {"timeout_s": 0.1, "retry_timeout_s": 0.3, "max_wait_s": 0.05}
NO_WAIT = DeviceRetryPolicy(max_attempts=3, delay_s=0)

Received = dict[str, list[int]]
"""Per subscriber, how many messages it got of each product, sorted (``[1, 1]``: each once)."""


def fleet() -> Fleet:
    return products(PRODUCTS, 3)


def per_product(texts: Sequence[str]) -> list[int]:
    counts: Counter[str] = Counter()
    for text in texts:
        (name,) = [name for name in PRODUCTS.values() if f"devices of {name}," in text]
        counts[name] += 1
    return sorted(counts[name] for name in PRODUCTS.values())


class Crash(BaseException):
    """The process dies (or the invocation ends, as a Lambda timeout ends it)."""


# ---------------------------------------------------------------------- local mode


class LocalWorld:
    """`run_cycle` on one SQLite state, telling the JSON-lines file and the fake Slack; or
    real ``fwwatch run`` processes on the same state, for the rows about processes."""

    def __init__(self, sim: Any, slack: FakeSlack, tmp_path: Path) -> None:
        self.sim, self.slack, self.tmp_path = sim, slack, tmp_path
        self.state = tmp_path / "state.sqlite3"
        self.mailbox = tmp_path / "mail" / "news.jsonl"

    def notifiers(self) -> list[Any]:
        return [JsonLinesNotifier(self.mailbox), SlackNotifier(self.slack.url, **SHORT)]

    def cycle(self, notifiers: Sequence[Any] | None = None) -> None:
        async def one() -> None:
            settings = TuyaSettings(
                access_id=self.sim.access_id,
                access_secret=self.sim.access_secret,
                endpoint=self.sim.url,
                qps=200,
            )
            async with TuyaClient(settings, retry=RetryPolicy(base_s=0.01)) as tuya:
                with SqliteStore(self.state) as store:
                    await run_cycle(tuya, store, list(notifiers or self.notifiers()), retry=NO_WAIT)

        asyncio.run(one())

    def received(self) -> Received:
        mail = self.mailbox.read_text().splitlines() if self.mailbox.exists() else []
        return {
            "mail": per_product([json.loads(line)["summary"] for line in mail]),
            "slack": per_product(self.slack.texts()),
        }

    # -- real processes (the state's lock, a kill -9)

    def start_run(
        self, monkeypatch: pytest.MonkeyPatch, *options: str, **env: str
    ) -> subprocess.Popen[str]:
        point_cli_at(self.sim, monkeypatch, self.tmp_path)
        variables = {
            "FWWATCH_STATE": str(self.state),
            "FWWATCH_JSONL": str(self.mailbox),
            "SLACK_WEBHOOK_URL": self.slack.url,
            **env,
        }
        return subprocess.Popen(
            [sys.executable, "-m", "fwwatch.cli", *options, "run"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **variables},
            cwd=self.tmp_path,
        )

    def undelivered(self, notifier: str) -> int | None:
        """News not yet marked delivered by ``notifier`` (None before any is queued)."""
        with sqlite3.connect(self.state, timeout=30) as db:
            rows = db.execute(
                "SELECT count(*), count(delivered_at) FROM delivery WHERE notifier = ?",
                (notifier,),
            ).fetchone()
        return None if rows[0] == 0 else rows[0] - rows[1]


# ---------------------------------------------------------------------- AWS mode


class AwsWorld:
    """The stack on moto; the topic's subscriber queue, and the Slack function fed by it."""

    def __init__(self, sim: Any, slack: FakeSlack, stack: Any) -> None:
        self.sim, self.slack = sim, slack
        self.pipeline = Pipeline(stack, overrides={"RETRY_DELAY_S": "0", "TUYA_QPS": "200"})
        self.mail: list[dict[str, Any]] = []
        self.retries = int(
            load_template().function_properties("SlackFunction")["EventInvokeConfig"][
                "MaximumRetryAttempts"
            ]
        )

    def cycle(self) -> None:
        self.pipeline.schedule()
        self.pipeline.run_checkers()
        self.pipeline.run_differ()
        self.pipeline.run_digest()
        self.deliver()

    def deliver(self) -> None:
        """What the topic's subscribers get of what was published since the last call."""
        envelopes = self.pipeline.notifications()
        self.mail += envelopes
        for envelope in envelopes:
            # SNS invokes the function once per message; Lambda again after an exception
            for _ in range(1 + self.retries):
                try:
                    self.pipeline.deliver_to_slack([envelope], self.pipeline.slack_service(**SHORT))
                    break
                except NotifyError:
                    continue

    def received(self) -> Received:
        return {
            "mail": per_product([json.loads(e["Message"])["summary"] for e in self.mail]),
            "slack": per_product(self.slack.texts()),
        }


World = LocalWorld | AwsWorld


# ---------------------------------------------------------------------- the rows


def delivery_fails_then_recovers_locally(world: LocalWorld, _: pytest.MonkeyPatch) -> None:
    # Slack answers 503 to all four attempts of the first post; the mailbox cannot be
    # written (its folder is a file) during the first cycle
    world.slack.script = [(503, {})] * 4
    world.mailbox.parent.parent.mkdir(parents=True, exist_ok=True)
    world.mailbox.parent.write_text("not a folder")
    world.cycle()
    world.mailbox.parent.unlink()
    world.cycle()
    world.cycle()


def delivery_fails_then_recovers_on_aws(world: AwsWorld, _: pytest.MonkeyPatch) -> None:
    # When the run's news is digested: SNS refuses two publishes, the ledger write after a
    # publish fails twice, and the Slack function's first invocation meets 5xx only
    pipeline = world.pipeline
    pipeline.schedule()
    pipeline.run_checkers()
    pipeline.run_differ()
    dynamodb = pipeline.stack.client("dynamodb")
    left = failing_calls(pipeline.stack.client("sns"), "Publish", "InternalError", times=2)
    ledger = failing_calls(dynamodb, "BatchWriteItem", "ProvisionedThroughputExceededException", 2)
    world.slack.script = [(503, {})] * 4
    pipeline.run_digest()
    world.deliver()
    assert (left, ledger) == ([0], [0])
    world.cycle()


def slack_answers_after_every_timeout_locally(world: LocalWorld, _: pytest.MonkeyPatch) -> None:
    world.slack.delays = [1.0] * 8
    world.cycle()
    world.cycle()


def slack_answers_after_every_timeout_on_aws(world: AwsWorld, _: pytest.MonkeyPatch) -> None:
    world.slack.delays = [1.0] * 8
    world.cycle()
    world.cycle()


def killed_between_send_and_mark_locally(
    world: LocalWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real `fwwatch run`, SIGKILLed while Slack holds its first post open: the mailbox's
    # two messages are written and marked, the post has reached Slack and is not marked
    world.slack.hold_posts = {1}
    victim = world.start_run(monkeypatch)
    assert world.slack.holding.wait(60), "the run never got to Slack"
    deadline = time.monotonic() + 60
    while world.undelivered("jsonl") != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.kill()
    victim.communicate(timeout=30)
    world.slack.release()
    again = world.start_run(monkeypatch, FWWATCH_LOCK_WAIT_S="0")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err


def killed_between_send_and_mark_on_aws(world: AwsWorld, _: pytest.MonkeyPatch) -> None:
    # The digest's invocation ends right after SNS took its first message, before the
    # ledger and the release's record say so; SQS gives the request again
    pipeline = world.pipeline
    sns = pipeline.stack.client("sns")
    killed: list[int] = []

    def die_once(**_: Any) -> None:
        if not killed:
            killed.append(1)
            raise Crash

    sns.meta.events.register("after-call.sns.Publish", die_once)
    pipeline.visibility_timeout = 0
    pipeline.schedule()
    pipeline.run_checkers()
    pipeline.run_differ()
    with pytest.raises(Crash):
        pipeline.run_digest()
    sns.meta.events.unregister("after-call.sns.Publish", die_once)
    pipeline.run_digest()
    world.deliver()


def two_runs_at_once_locally(world: LocalWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    # A second `fwwatch run` starts while the first is in the middle of its delivery
    world.slack.hold_posts = {1}
    first = world.start_run(monkeypatch)
    assert world.slack.holding.wait(60), "the first run never got to Slack"
    second = world.start_run(monkeypatch, "-v", FWWATCH_LOCK_WAIT_S="120")
    assert second.stderr is not None
    for line in iter(second.stderr.readline, ""):
        if "the state file is in use by" in line:
            break  # the second waits for the first, which is still delivering
    else:
        raise AssertionError("the second run did not wait for the first")
    world.slack.release()
    for process in (first, second):
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err


def two_runs_at_once_on_aws(world: AwsWorld, _: pytest.MonkeyPatch) -> None:
    # The Scheduler invokes the scheduler twice for one run (its retry, which finds the run
    # and sends nothing), and a run invoked by hand overlaps it: the two runs' messages are
    # checked together
    pipeline = world.pipeline
    run = pipeline.schedule()
    assert pipeline.schedule(run["run_id"])["messages"] == 0
    assert pipeline.schedule(by_hand=True)["messages"] == run["messages"]
    pipeline.run_checkers()
    pipeline.run_differ()
    pipeline.run_digest()
    world.deliver()


def work_redone_locally(world: LocalWorld, _: pytest.MonkeyPatch) -> None:
    # The process dies after storing the run's news, before any of it is sent; the next
    # run sends it
    class DiesBeforeSending(JsonLinesNotifier):
        async def send(self, group: Any) -> None:
            raise Crash

    with pytest.raises(Crash):
        world.cycle([DiesBeforeSending(world.mailbox), SlackNotifier(world.slack.url, **SHORT)])
    world.cycle()
    world.cycle()


def work_redone_on_aws(world: AwsWorld, _: pytest.MonkeyPatch) -> None:
    # Every check message delivered twice, and every stream batch given to the differ twice
    pipeline = world.pipeline
    pipeline.schedule()
    bodies = pipeline.take_messages(pipeline.check_queue)
    for body in bodies + bodies:
        pipeline.send_raw(body)
    pipeline.run_checkers()
    records = pipeline.stream_records()
    pipeline.run_differ(records)
    pipeline.run_differ(records)
    pipeline.run_digest()
    world.deliver()


Fault = Callable[[Any, pytest.MonkeyPatch], None]


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery fault in each mode, and what each subscriber gets over the story."""

    name: str
    local: Fault
    aws: Fault
    local_gets: Received
    aws_gets: Received


EACH_ONCE: Received = {"mail": [1, 1], "slack": [1, 1]}

DELIVERY_ROWS = [
    DeliveryRow(
        "nothing goes wrong",
        lambda world, _: world.cycle(),
        lambda world, _: world.cycle(),
        EACH_ONCE,
        EACH_ONCE,
    ),
    DeliveryRow(
        "delivery fails for a while (SNS, the ledger, Slack 5xx; a mailbox not writable)",
        delivery_fails_then_recovers_locally,
        delivery_fails_then_recovers_on_aws,
        EACH_ONCE,
        EACH_ONCE,
    ),
    DeliveryRow(
        "Slack answers after every timeout: each post tried once more, never again",
        slack_answers_after_every_timeout_locally,
        slack_answers_after_every_timeout_on_aws,
        {"mail": [1, 1], "slack": [2, 2]},
        {"mail": [1, 1], "slack": [2, 2]},
    ),
    DeliveryRow(
        "killed between sending a message and marking it: that one message twice",
        killed_between_send_and_mark_locally,
        killed_between_send_and_mark_on_aws,
        # locally only Slack's post was cut short; on AWS the SNS publish was, and every
        # subscriber gets what SNS took
        {"mail": [1, 1], "slack": [1, 2]},
        {"mail": [1, 2], "slack": [1, 2]},
    ),
    DeliveryRow(
        "two runs at once (two processes on one state; a run by hand beside a scheduled one)",
        two_runs_at_once_locally,
        two_runs_at_once_on_aws,
        EACH_ONCE,
        EACH_ONCE,
    ),
    DeliveryRow(
        "work done twice (a crash before sending; SQS and the stream redelivering)",
        work_redone_locally,
        work_redone_on_aws,
        EACH_ONCE,
        EACH_ONCE,
    ),
]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with serving_fake_slack("/services/T000/B000/matrixsecret") as fake:
        yield fake


@pytest.mark.parametrize("mode", ["local", "aws"])
@pytest.mark.parametrize("row", DELIVERY_ROWS, ids=lambda row: row.name)
def test_each_subscriber_gets_exactly_what_the_delivery_rule_allows_in_both_modes(
    row: DeliveryRow,
    mode: str,
    make_simulator: Callable[..., Any],
    make_aws_stack: Callable[..., Any],
    slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    sim = make_simulator(fleet=fleet())
    world: World
    if mode == "local":
        world = LocalWorld(sim, slack, tmp_path)
    else:
        stack = make_aws_stack(
            parameters={"TuyaEndpoint": sim.url, "DevicesPerMessage": 2, "DigestDelaySeconds": 0},
            tuya_secret={"access_id": sim.access_id, "access_secret": sim.access_secret},
            slack_webhook_url=slack.url,
        )
        world = AwsWorld(sim, slack, stack)
    # Given a baseline, then a release of each product: two messages to deliver
    world.cycle()
    assert world.received() == {"mail": [0, 0], "slack": [0, 0]}
    for product in PRODUCTS:
        sim.cloud.publish_release(product, 0, "1.1.0")
    # When the row's fault happens, and cycles follow with it cleared
    (row.local if mode == "local" else row.aws)(world, monkeypatch)
    world.cycle()
    # Then each subscriber got each message exactly as often as the row says
    assert world.received() == (row.local_gets if mode == "local" else row.aws_gets)
