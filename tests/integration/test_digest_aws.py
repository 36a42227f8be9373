"""One message per release per run, on the stack from template.yaml (moto) and the simulator.

However many check messages, checker invocations and stream batches a run spans, each
release (event, product, channel, version) is published once, naming every device; what
comes after the run's digest is one follow-up per release; a run that never completes is
digested after its deadline.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fwwatch.aws import queue_sqs
from fwwatch.messages import DigestReason, DigestRequest
from fwwatch.simulator import Fleet, FleetChannel, FleetDevice, generate_fleet
from tests.integration.fakes import failing_calls
from tests.integration.pipeline_harness import Pipeline, attributes_of, passes_sns_filter

pytestmark = pytest.mark.integration

PLUG, SENSOR = "plugprod0001", "sensprod0001"
PLUGS = [f"plug{i:03d}" for i in range(30)]
SENSORS = [f"sens{i:03d}" for i in range(12)]


def small_fleet() -> Fleet:
    def device(device_id: str, product: str, channels: list[FleetChannel]) -> FleetDevice:
        return FleetDevice(
            device_id=device_id,
            name=device_id.title(),
            product_id=product,
            product_name=product,
            category="cz",
            channels=channels,
        )

    return Fleet(
        devices=[device(d, PLUG, [FleetChannel(channel=0, current_version="1.0.0")]) for d in PLUGS]
        + [
            device(
                d,
                SENSOR,
                [
                    FleetChannel(channel=3, current_version="2.0.0"),
                    FleetChannel(channel=9, current_version="0.9"),
                ],
            )
            for d in SENSORS
        ]
    )


Make = Callable[..., tuple[Any, Pipeline]]


@pytest.fixture
def world(make_simulator: Callable[..., Any], make_aws_stack: Callable[..., Any]) -> Make:
    """``world(fleet, **parameters)``: a simulator and the pipeline of a stack with them."""

    def make(fleet: Fleet | None = None, **parameters: Any) -> tuple[Any, Pipeline]:
        sim = make_simulator(fleet=fleet or small_fleet())
        stack = make_aws_stack(
            parameters={
                "TuyaEndpoint": sim.url,
                "DevicesPerMessage": 10,
                "DigestDelaySeconds": 0,
                **parameters,
            },
            tuya_secret={"access_id": sim.access_id, "access_secret": sim.access_secret},
            slack_webhook_url="http://127.0.0.1:9/services/T/B/x",
        )
        overrides = {"RETRY_DELAY_S": "0", "TUYA_QPS": "1000", "TUYA_RETRY_ATTEMPTS": "3"}
        return sim, Pipeline(stack, overrides=overrides)

    return make


def bodies(envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(envelope["Message"]) for envelope in envelopes]


def devices_of(envelope: dict[str, Any]) -> list[str]:
    return sorted(device["device_id"] for device in json.loads(envelope["Message"])["devices"])


def release_of(envelope: dict[str, Any]) -> tuple[str, str, int, str]:
    body = json.loads(envelope["Message"])
    return (body["type"], body["product_id"], body["channel"], body["version"])


def state_items(pipeline: Pipeline) -> list[str]:
    table = pipeline.stack.table_name("StateTable")
    items = pipeline.stack.client("dynamodb").scan(TableName=table)["Items"]
    return sorted(json.dumps(item, sort_keys=True) for item in items)


# ---------------------------------------------------------------------- thousands of devices


@pytest.mark.timeout(300)
def test_two_releases_over_3000_devices_make_one_message_and_one_slack_post_each(
    world: Make,
) -> None:
    # Given 3,000 devices of four products (100 IDs per check message: 30 messages, at least
    # four checker invocations), already seen once (a silent baseline, whose records are skipped)
    generated = generate_fleet(3000, seed=5)
    # (one channel a device: the stack's work per device is the same, moto's is a third)
    fleet = generated.model_copy(
        update={
            "devices": [
                d.model_copy(update={"channels": d.channels[:1]}) for d in generated.devices
            ]
        }
    )
    sim, pipeline = world(fleet, DevicesPerMessage=100)
    pipeline.schedule()
    pipeline.run_checkers()
    pipeline.skip_stream()
    plug, sensor = fleet.devices[0], fleet.devices[1]
    assert plug.product_id != sensor.product_id
    # When two products get a release in one run
    sim.cloud.publish_release(plug.product_id, plug.channels[0].channel, "9.0.0")
    sim.cloud.publish_release(sensor.product_id, sensor.channels[0].channel, "9.0.0")
    expected = {
        product_id: sorted(
            d.device_id for d in fleet.devices if d.product_id == product_id and d.error is None
        )
        for product_id in (plug.product_id, sensor.product_id)
    }
    assert all(len(ids) > 700 for ids in expected.values())
    scheduled = pipeline.schedule()
    sent = pipeline.take_messages(pipeline.check_queue)
    for body in sent + sent[:5]:  # SQS delivers some messages twice
        pipeline.send_raw(body)
    checks = pipeline.run_checkers()
    records = pipeline.stream_records()
    differ_batches = pipeline.run_differ(records)
    pipeline.run_digest()
    envelopes = pipeline.notifications()
    # Then the run spanned dozens of messages and stream batches, and made one SNS message
    # per release, each naming its full device count and every device
    # (35 messages, 10 an invocation: 4 invocations or more, as SQS hands them out)
    assert scheduled["messages"] == 30
    assert len(checks) >= 4
    assert len(differ_batches) >= 15
    assert Counter(release_of(e)[1] for e in envelopes) == {
        plug.product_id: 1,
        sensor.product_id: 1,
    }
    for envelope in envelopes:
        product_id = release_of(envelope)[1]
        count = len(expected[product_id])
        assert f"({count} devices)" in envelope["Subject"]
        assert json.loads(envelope["Message"])["device_count"] == count
        assert devices_of(envelope) == expected[product_id]
        assert attributes_of(envelope)["kind"] == "release"
    # And the Slack function, given what its subscription lets through, posts once each
    posts: list[dict[str, Any]] = []

    def slack(request: httpx.Request) -> httpx.Response:
        posts.append(json.loads(request.content))
        return httpx.Response(200, text="ok")

    service = pipeline.slack_service(transport=httpx.MockTransport(slack))
    assert pipeline.deliver_to_slack(envelopes, service) == {"posted": 2, "uncertain": 0}
    assert sorted(post["text"].split(" devices of ")[0].split()[-1] for post in posts) == sorted(
        str(len(ids)) for ids in expected.values()
    )
    # When the stream replays its batches, in other sizes too, and SQS redelivers check
    # messages and the digest request
    pipeline.run_differ(records)
    pipeline.run_differ(records, batch_size=37)
    for body in sent[10:13]:
        pipeline.send_raw(body)
    pipeline.run_checkers()
    pipeline.run_differ()
    request = DigestRequest(run_id=scheduled["run_id"], reason=DigestReason.COMPLETE)
    queue_sqs.SqsDigestQueue(pipeline.stack.client("sqs"), pipeline.digest_queue).send([request])
    pipeline.run_digest()
    # Then nothing more is published
    assert pipeline.notifications() == []


def test_a_scheduler_retry_of_the_same_run_enqueues_nothing_and_the_release_is_told_once(
    world: Make,
) -> None:
    sim, pipeline = world()
    pipeline.cycle()
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    # Given the Scheduler retrying an invocation (same run)
    run = pipeline.schedule()
    again = pipeline.schedule(run["run_id"])
    # Then the retry enqueued nothing
    assert (run["messages"], again["messages"], again["devices"]) == (5, 0, 0)
    # And when SQS delivers every check message of the run twice all the same
    bodies = pipeline.take_messages(pipeline.check_queue)
    assert len(bodies) == 5
    for body in bodies + bodies:
        pipeline.send_raw(body)
    pipeline.run_checkers()
    pipeline.run_differ()
    pipeline.run_digest()
    # Then the release is one message
    (envelope,) = pipeline.notifications()
    assert devices_of(envelope) == PLUGS


def test_an_unchanged_run_writes_no_state_item_and_asks_for_no_digest(world: Make) -> None:
    sim, pipeline = world()
    pipeline.cycle()
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    assert len(pipeline.cycle()) == 1
    before = state_items(pipeline)
    # When nothing changed since
    assert pipeline.cycle() == []
    # Then no state was written (no stream record), and no digest was asked for
    assert pipeline.stream_records() == []
    assert state_items(pipeline) == before
    assert pipeline.take_messages(pipeline.digest_queue) == []


# ---------------------------------------------------------------------- late news


def test_news_behind_a_lagging_stream_is_one_follow_up_per_release(world: Make) -> None:
    sim, pipeline = world()
    pipeline.cycle()
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    sim.cloud.publish_release(SENSOR, 3, "2.1.0")
    pipeline.schedule()
    pipeline.run_checkers()
    records = pipeline.stream_records()
    # Given a stream that delivers some devices' records only after the run's digest
    lagging = {"plug025", "plug026", "plug027", "plug028", "plug029", "sens010", "sens011"}

    def device(record: dict[str, Any]) -> str:
        return str(record["dynamodb"]["Keys"]["device_id"]["S"])

    pipeline.run_differ([r for r in records if device(r) not in lagging])
    pipeline.run_digest()
    first = pipeline.notifications()
    # When the rest arrives
    pipeline.run_differ([r for r in records if device(r) in lagging])
    pipeline.run_digest()
    follow_ups = pipeline.notifications()
    # Then each release had one message, then one follow-up with only the late devices
    assert sorted(release_of(e)[1] for e in first) == [PLUG, SENSOR]
    assert sorted(release_of(e)[1] for e in follow_ups) == [PLUG, SENSOR]
    by_product = {release_of(e)[1]: e for e in follow_ups}
    assert devices_of(by_product[PLUG]) == [f"plug{i:03d}" for i in range(25, 30)]
    assert devices_of(by_product[SENSOR]) == ["sens010", "sens011"]
    assert all(json.loads(e["Message"])["follow_up"] is True for e in follow_ups)
    assert "(5 more devices)" in by_product[PLUG]["Subject"]
    assert all(json.loads(e["Message"])["follow_up"] is False for e in first)
    told = sorted(d for e in first + follow_ups for d in devices_of(e) if d.startswith("plug"))
    assert told == PLUGS


def test_a_dead_lettered_message_delays_the_digest_until_the_deadline_only(
    world: Make,
) -> None:
    # Given a deadline of 8 s (well beyond what the checks take, on a busy machine too), and
    # one check message whose every check fails (DynamoDB refusing its devices' reads), so
    # that it ends in the dead-letter queue
    sim, pipeline = world(DigestDeadlineSeconds=8)
    pipeline.cycle()
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    stuck = set(PLUGS[:10])  # the first message's devices
    store = pipeline.checker.store
    reads = store.get_items

    def refusing(keys: Any) -> Any:
        keys = list(keys)
        if any(device_id in stuck for device_id, _ in keys):
            raise RuntimeError("DynamoDB left keys unread")
        return reads(keys)

    store.get_items = refusing  # type: ignore[method-assign]
    pipeline.schedule()
    pipeline.run_checkers()
    dead = pipeline.dead_letters()
    pipeline.run_differ()
    # When the digest queue is played: nothing is due until the deadline
    assert pipeline.run_digest() == []
    assert pipeline.notifications() == []
    pipeline.run_digest(wait_s=60)
    told = pipeline.notifications()
    # Then the run was digested at its deadline: one message, the devices that settled
    assert len(dead) == 1
    assert json.loads(dead[0])["device_ids"] == sorted(stuck)
    (envelope,) = told
    assert devices_of(envelope) == PLUGS[10:]
    # And when the operator redrives the message, its devices are one follow-up
    store.get_items = reads  # type: ignore[method-assign]
    pipeline.send_raw(dead[0])
    pipeline.run_checkers()
    pipeline.run_differ()
    pipeline.run_digest()
    (follow_up,) = pipeline.notifications()
    assert devices_of(follow_up) == sorted(stuck)
    assert json.loads(follow_up["Message"])["follow_up"] is True


def test_a_deadline_beyond_what_sqs_holds_is_reached_by_sending_the_request_on(
    world: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SQS holding a message back at most 1 s (900 s on AWS), a deadline of 4 s, and a
    # run that does not complete: one check message is held by a checker that hangs
    monkeypatch.setattr(queue_sqs, "MAX_DELAY_S", 1)
    sim, pipeline = world(DigestDeadlineSeconds=4)
    pipeline.cycle()
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    run_started = time.monotonic()
    pipeline.schedule()
    sqs = pipeline.stack.client("sqs")
    (held,) = sqs.receive_message(
        QueueUrl=pipeline.check_queue, MaxNumberOfMessages=1, VisibilityTimeout=600
    )["Messages"]
    held_devices = json.loads(held["Body"])["device_ids"]
    pipeline.run_checkers()
    pipeline.run_differ()
    # When the digest queue is played until the deadline (the wait ends once nothing is due)
    answers = pipeline.run_digest(wait_s=60)
    (envelope,) = pipeline.notifications()
    # Then the request came early, was sent on (each time), and the run was digested at
    # its deadline
    # (the deadline counts from the run's first news, which came after this)
    assert time.monotonic() - run_started >= 3
    assert len(answers) >= 2
    assert all(not a["batchItemFailures"] for a in answers)
    assert sorted(devices_of(envelope)) == sorted(set(PLUGS) - set(held_devices))
    # And the held message, settled after the digest, is one follow-up
    sqs.change_message_visibility(
        QueueUrl=pipeline.check_queue, ReceiptHandle=held["ReceiptHandle"], VisibilityTimeout=0
    )
    pipeline.run_checkers()
    pipeline.run_differ()
    pipeline.run_digest()
    (follow_up,) = pipeline.notifications()
    assert devices_of(follow_up) == sorted(held_devices)


# ---------------------------------------------------------------------- failures


def test_a_digest_request_that_cannot_be_sent_is_asked_for_again(world: Make) -> None:
    sim, pipeline = world()
    pipeline.cycle()
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    pipeline.schedule()
    # Given SQS refusing the checker's digest request once (the one SendMessage of a run)
    left = failing_calls(pipeline.stack.client("sqs"), "SendMessage", "InternalError", times=1)
    answers = pipeline.run_checkers()
    # Then the claim was undone and the batch's messages came back, were counted again,
    # and the next count claimed the completion and sent the request
    assert left == [0]
    assert any(a["batchItemFailures"] for a in answers)
    pipeline.run_differ()
    pipeline.run_digest()
    (envelope,) = pipeline.notifications()
    assert devices_of(envelope) == PLUGS


def test_a_stream_batch_whose_news_cannot_be_kept_is_retried_and_adds_nothing_twice(
    world: Make,
) -> None:
    sim, pipeline = world()
    pipeline.cycle()
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    sim.cloud.publish_release(SENSOR, 3, "2.1.0")
    pipeline.schedule()
    pipeline.run_checkers()
    records = pipeline.stream_records()
    # Given the run table refusing the differ's first writes
    left = failing_calls(pipeline.stack.client("dynamodb"), "BatchWriteItem", "InternalError", 1)
    answers = pipeline.run_differ(records)
    assert left == [0]
    assert any(a["batchItemFailures"] for a in answers)
    # When the stream retries (the whole batch again)
    assert all(not a["batchItemFailures"] for a in pipeline.run_differ(records))
    pipeline.run_digest()
    # Then each release is one message
    assert sorted(release_of(e)[1] for e in pipeline.notifications()) == [PLUG, SENSOR]


# ---------------------------------------------------------------------- concurrency, options


def test_a_digest_that_finds_another_under_way_waits_for_it(world: Make) -> None:
    sim, pipeline = world()
    pipeline.cycle()
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    scheduled = pipeline.schedule()
    pipeline.run_checkers()
    pipeline.run_differ()
    # Given another digest of the run holding its lease
    runs = pipeline.digest.runs
    runs.take_lease(scheduled["run_id"], "another-digest", 2)
    # When the digest request comes: it is sent on, until after the lease
    assert pipeline.run_digest() == [{"batchItemFailures": []}]
    assert pipeline.notifications() == []
    pipeline.run_digest(wait_s=10)
    # Then it published the release once the lease was over
    (envelope,) = pipeline.notifications()
    assert devices_of(envelope) == PLUGS


def test_a_digest_per_run_lists_every_release_in_one_more_message_for_email(world: Make) -> None:
    # Given the per-run option, and an e-mail subscription
    sim, pipeline = world(DigestPerRun=True, NotificationEmail="ops@example.com")
    pipeline.cycle()
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    sim.cloud.publish_release(SENSOR, 3, "2.1.0")
    # When a run has two releases
    envelopes = pipeline.cycle()
    # Then machines get each release's message, and one more message lists both
    kinds = Counter(attributes_of(e)["kind"] for e in envelopes)
    assert kinds == {"release": 2, "run": 1}
    (run_message,) = [e for e in envelopes if attributes_of(e)["kind"] == "run"]
    body = json.loads(run_message["Message"])
    assert [(r["product_id"], r["device_count"]) for r in body["releases"]] == [
        (PLUG, 30),
        (SENSOR, 12),
    ]
    assert run_message["Subject"].startswith("fwwatch: 2 releases, 42 devices - run ")
    # And the e-mail subscription's filter lets only that one through
    sns = pipeline.stack.client("sns")
    subscription = pipeline.stack.resources["EmailSubscription"]
    policy = json.loads(
        sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]["FilterPolicy"]
    )
    assert [e["Subject"] for e in envelopes if passes_sns_filter(policy, e)] == [
        run_message["Subject"]
    ]
