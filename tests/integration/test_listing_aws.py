"""A run's listing on the stack from template.yaml (moto) and the simulator: page by page,
handed on from one scheduler invocation to the next before its time runs out, and once per
run however often the scheduler is invoked for it.

The invocations' remaining time is the harness's: here each listing page the cloud serves
costs a second of it, so that the scheduler's 300 s run out after a few thousand devices.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fwwatch.aws.listing_dynamodb import DynamoRunListing, ListingRecord
from fwwatch.aws.run_table import DynamoRunTable, RunProgress
from fwwatch.fanout import CHECKPOINT_EVERY
from fwwatch.messages import CheckMessage
from fwwatch.simulator import Fleet, FleetChannel, FleetDevice, generate_fleet
from tests.aws.template import load_template
from tests.integration.fakes import calls_applied_twice, failing_calls
from tests.integration.pipeline_harness import FIRST_RUN, Pipeline, TimeLeft

pytestmark = pytest.mark.integration

PLUG = "plugprod0001"
LISTING_PAGES = "GET /v2.0/cloud/thing/device"


def plugs(count: int) -> Fleet:
    return Fleet(
        devices=[
            FleetDevice(
                device_id=f"plug{i:05d}",
                name=f"Plug {i}",
                product_id=PLUG,
                product_name="Smart plug",
                category="cz",
                channels=[FleetChannel(channel=0, current_version="1.0.0")],
            )
            for i in range(count)
        ]
    )


Make = Callable[..., tuple[Any, Pipeline]]


@pytest.fixture
def world(make_simulator: Callable[..., Any], make_aws_stack: Callable[..., Any]) -> Make:
    """``world(fleet, **parameters)``: a simulator and the pipeline of a stack with them."""

    def make(fleet: Fleet, **parameters: Any) -> tuple[Any, Pipeline]:
        sim = make_simulator(fleet=fleet)
        stack = make_aws_stack(
            parameters={"TuyaEndpoint": sim.url, "DigestDelaySeconds": 0, **parameters},
            tuya_secret={"access_id": sim.access_id, "access_secret": sim.access_secret},
        )
        # The listing's share of 100,000 requests/s does not hold the simulator back.
        overrides = {"RETRY_DELAY_S": "0", "TUYA_QPS": "100000", "TUYA_RETRY_ATTEMPTS": "3"}
        return sim, Pipeline(stack, overrides=overrides)

    return make


def pages_cost(sim: Any, *, budget_s: float, per_page_s: float = 1.0) -> Callable[[], TimeLeft]:
    """Each invocation's clock: ``budget_s`` at its start, less ``per_page_s`` for every
    listing page the cloud has served since."""

    def served() -> int:
        return int(sim.cloud.stats.by_api[LISTING_PAGES])

    def invocation() -> TimeLeft:
        start = served()
        return lambda: int((budget_s - per_page_s * (served() - start)) * 1000)

    return invocation


def scheduler_timeout_s() -> float:
    return float(load_template().function_properties("SchedulerFunction")["Timeout"])


def enqueued(pipeline: Pipeline) -> list[CheckMessage]:
    """Every check message waiting in the check queue, each received once (not deleted)."""
    sqs = pipeline.stack.client("sqs")
    found: list[CheckMessage] = []
    while got := sqs.receive_message(
        QueueUrl=pipeline.check_queue, MaxNumberOfMessages=10, VisibilityTimeout=3600
    ).get("Messages", []):
        found += [CheckMessage.model_validate_json(message["Body"]) for message in got]
    return found


def take_enqueued(pipeline: Pipeline) -> list[CheckMessage]:
    """Every check message in the check queue, taken as a checker takes them (moto's SQS
    slows down with every message a queue holds: the 200,000-device run keeps it short)."""
    sqs = pipeline.stack.client("sqs")
    found: list[CheckMessage] = []
    while got := sqs.receive_message(QueueUrl=pipeline.check_queue, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        found += [CheckMessage.model_validate_json(message["Body"]) for message in got]
        sqs.delete_message_batch(
            QueueUrl=pipeline.check_queue,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(got)
            ],
        )
    return found


def waiting(pipeline: Pipeline, url: str) -> int:
    """The messages a queue holds, visible or delayed."""
    attributes = pipeline.stack.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesDelayed"]
    )


def runs(pipeline: Pipeline) -> DynamoRunTable:
    return DynamoRunTable(pipeline.stack.client("dynamodb"), pipeline.stack.table_name("RunTable"))


def listing_of(pipeline: Pipeline, run_id: str) -> ListingRecord:
    record = DynamoRunListing(runs(pipeline)).read(run_id)
    assert record is not None
    return record


def progress_of(pipeline: Pipeline, run_id: str) -> RunProgress:
    return runs(pipeline).progress(run_id)


def devices_told(pipeline: Pipeline) -> list[list[str]]:
    """The device IDs of each notification published since the last call."""
    return [
        sorted(device["device_id"] for device in json.loads(envelope["Message"])["devices"])
        for envelope in pipeline.notifications()
    ]


# ---------------------------------------------------------------------- listing that scales


@pytest.mark.timeout(300)
def test_a_200000_device_project_is_listed_over_many_invocations_each_device_enqueued_once(
    world: Make,
) -> None:
    fleet = generate_fleet(200_000)
    sim, pipeline = world(fleet)
    # Given invocations whose time runs out after 250 pages (300 s, a second a page, less
    # the reserve a step keeps to hand on): 5,000 devices
    pipeline.invocation_clock = pages_cost(sim, budget_s=scheduler_timeout_s())
    # When the schedule invokes the scheduler, and the steps it hands on run, while a
    # checker takes what each step enqueued
    first = pipeline.schedule()
    messages = take_enqueued(pipeline)
    steps = 0
    while waiting(pipeline, pipeline.listing_queue):
        assert pipeline.run_listing(max_rounds=1) == [{"batchItemFailures": []}]
        steps += 1
        messages += take_enqueued(pipeline)
    # Then the first invocation enqueued a few thousand devices and handed the rest on
    assert first["listing"] == "handed on"
    assert 1_000 <= first["devices"] <= 10_000
    assert steps >= 30
    # And every device of the project is in exactly one check message
    listed = Counter(device_id for message in messages for device_id in message.device_ids)
    assert sum(listed.values()) == 200_000
    assert set(listed) == {device.device_id for device in fleet.devices}
    # And the messages are the run's plan: parts 0 to 1,999, the last one saying so
    assert sorted(message.part for message in messages) == list(range(2_000))
    assert [(m.part, m.parts) for m in messages if m.parts is not None] == [(1_999, 2_000)]
    assert {message.run_id for message in messages} == {first["run_id"]}
    # And the run's listing is recorded finished with that plan, each page listed once
    listing = listing_of(pipeline, first["run_id"])
    assert (listing.finished, listing.parts, listing.devices) == (True, 2_000, 200_000)
    assert listing.step == steps
    assert sim.cloud.stats.by_api[LISTING_PAGES] == 200_000 // 20 + 1  # and the empty last


def test_checks_start_while_the_listing_goes_on_and_the_run_completes_once_it_is_listed(
    world: Make,
) -> None:
    sim, pipeline = world(plugs(200), DevicesPerMessage=10)
    # Given invocations whose time runs out after 3 pages (60 devices): four steps a run
    pipeline.invocation_clock = pages_cost(sim, budget_s=53)

    def run_with_checks_between_steps() -> tuple[str, list[bool]]:
        run_id = str(pipeline.schedule()["run_id"])
        complete = []
        while True:
            pipeline.run_checkers()
            complete.append(progress_of(pipeline, run_id).complete)
            if not waiting(pipeline, pipeline.listing_queue):
                return run_id, complete
            pipeline.run_listing(max_rounds=1)

    baseline, complete = run_with_checks_between_steps()
    pipeline.run_differ()
    pipeline.run_digest()
    assert pipeline.notifications() == []
    # When a release reaches every plug, and a run checks each step's devices before the
    # next step lists more
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    run_id, complete = run_with_checks_between_steps()
    # Then the run was not complete while it was being listed, though everything sent so
    # far was checked; and it was once listed and checked, in four steps of 20 messages
    assert complete == [False, False, False, True]
    assert (listing_of(pipeline, run_id).step, listing_of(pipeline, run_id).parts) == (3, 20)
    assert listing_of(pipeline, baseline).parts == 20
    # And its digest tells the release once, naming every plug
    pipeline.run_differ()
    pipeline.run_digest()
    assert devices_told(pipeline) == [[f"plug{i:05d}" for i in range(200)]]
    assert progress_of(pipeline, run_id).parts == 20


# ---------------------------------------------------------------------- idempotent runs


def test_a_scheduler_invocation_retried_for_the_same_run_enqueues_nothing(world: Make) -> None:
    _, pipeline = world(plugs(300), DevicesPerMessage=10)
    # Given a scheduled invocation, which enqueued the fleet
    first = pipeline.schedule()
    assert waiting(pipeline, pipeline.check_queue) == 30
    # When the Scheduler retries it (the same scheduled time, a new execution ID)
    again = pipeline.invoke_scheduler(
        {"run_id": first["run_id"], "execution_id": "another0attempt", "attempt": "2"}
    )
    # Then it enqueued nothing, and the run is the first invocation's
    assert (again["devices"], again["messages"], again["listing"]) == (0, 0, "finished already")
    assert waiting(pipeline, pipeline.check_queue) == 30
    assert waiting(pipeline, pipeline.listing_queue) == 0


def test_an_invocation_retried_with_the_same_execution_id_enqueues_nothing(world: Make) -> None:
    _, pipeline = world(plugs(300), DevicesPerMessage=10)
    # Given an invocation that names its run by the Scheduler's execution ID only
    event = {"execution_id": "d32c5kddcf5bb8c3", "attempt": "1"}
    first = pipeline.invoke_scheduler(event)
    # When it is invoked again with the same execution ID
    again = pipeline.invoke_scheduler({**event, "attempt": "2"})
    # Then the run is the same, enqueued once
    assert first["run_id"] == again["run_id"] == "d32c5kddcf5bb8c3"
    assert (first["devices"], again["devices"]) == (300, 0)
    assert waiting(pipeline, pipeline.check_queue) == 30


def test_each_invocation_by_hand_is_a_fresh_run(world: Make) -> None:
    _, pipeline = world(plugs(300), DevicesPerMessage=10)
    # When the function is invoked twice by hand, without the schedule's input
    first = pipeline.schedule(by_hand=True)
    second = pipeline.schedule(by_hand=True)
    # Then each is a run of its own (named after its request), and each enqueued the fleet
    assert first["run_id"] != second["run_id"]
    assert (first["devices"], second["devices"]) == (300, 300)
    messages = enqueued(pipeline)
    assert Counter(message.run_id for message in messages) == {
        first["run_id"]: 30,
        second["run_id"]: 30,
    }


def test_a_retry_after_a_crash_mid_listing_enqueues_only_what_the_first_did_not(
    world: Make,
) -> None:
    sim, pipeline = world(plugs(1_000), DevicesPerMessage=10)
    # Given the check queue refusing the scheduler's send after the one that followed its
    # first checkpoint (50 messages out before the checkpoint, 60 before the refusal)
    refused = CHECKPOINT_EVERY + 2
    sends = [0]

    def refuse(**_: Any) -> None:
        sends[0] += 1
        if sends[0] == refused:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "Send")

    pipeline.stack.client("sqs").meta.events.register("before-call.sqs.SendMessageBatch", refuse)
    # When the scheduled invocation fails there, and Lambda invokes it again
    run_id = FIRST_RUN.strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(ClientError, match="injected"):
        pipeline.schedule(run_id)
    assert waiting(pipeline, pipeline.check_queue) == 60
    retry = pipeline.schedule(run_id)
    # Then the retry went on from the checkpoint: every device of the fleet is enqueued,
    # and only the send after the checkpoint went out twice, with the parts it had
    assert retry["listing"] == "finished"
    messages = take_enqueued(pipeline)
    listed = Counter(device_id for message in messages for device_id in message.device_ids)
    assert sorted(listed) == [f"plug{i:05d}" for i in range(1_000)]
    twice = {device for device, times in listed.items() if times == 2}
    assert twice == {f"plug{i:05d}" for i in range(500, 600)}
    assert set(listed.values()) == {1, 2}
    parts = Counter(message.part for message in messages)
    assert sorted(parts) == list(range(100))
    assert {part for part, times in parts.items() if times == 2} == set(range(50, 60))
    # And only the pages after the checkpoint were listed again (51 pages in one pass)
    assert 51 < sim.cloud.stats.by_api[LISTING_PAGES] <= 51 + 10 + 2


def test_a_step_delivered_twice_lists_once(world: Make) -> None:
    sim, pipeline = world(plugs(200), DevicesPerMessage=10)
    pipeline.invocation_clock = pages_cost(sim, budget_s=53)  # four steps of 3 pages
    # Given the first step handed on, and its message on the listing queue twice (SQS
    # delivers at least once)
    run_id = pipeline.schedule()["run_id"]
    (body,) = pipeline.take_messages(pipeline.listing_queue)
    for _ in range(2):
        pipeline.stack.client("sqs").send_message(QueueUrl=pipeline.listing_queue, MessageBody=body)
    # When the listing queue is consumed
    answers = pipeline.run_listing()
    # Then the copy did nothing: three more steps, every device in one message
    assert len(answers) == 4
    assert listing_of(pipeline, run_id).step == 3
    listed = Counter(d for message in take_enqueued(pipeline) for d in message.device_ids)
    assert sorted(listed) == [f"plug{i:05d}" for i in range(200)]
    assert set(listed.values()) == {1}
    assert sim.cloud.stats.by_api[LISTING_PAGES] == 11


def test_a_step_that_died_before_its_message_went_out_is_handed_on_by_its_retry(
    world: Make,
) -> None:
    sim, pipeline = world(plugs(200), DevicesPerMessage=10)
    pipeline.invocation_clock = pages_cost(sim, budget_s=53)
    # Given the listing queue refusing the first step's message, after the step handed on
    refused = failing_calls(pipeline.stack.client("sqs"), "SendMessage", "InternalError", 1)
    run_id = FIRST_RUN.strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(ClientError):
        pipeline.schedule(run_id)
    assert refused == [0]
    assert waiting(pipeline, pipeline.listing_queue) == 0
    # When Lambda invokes the scheduled invocation again
    retry = pipeline.schedule(run_id)
    pipeline.run_listing()
    # Then the retry enqueued nothing itself, sent the step on, and the run was listed once
    assert (retry["listing"], retry["devices"]) == ("handed on already", 0)
    assert listing_of(pipeline, run_id).finished
    listed = Counter(d for message in take_enqueued(pipeline) for d in message.device_ids)
    assert sorted(listed) == [f"plug{i:05d}" for i in range(200)]
    assert set(listed.values()) == {1}


def listing_write(fragment: str) -> Callable[[dict[str, Any]], bool]:
    """Picks the UpdateItem of a run's listing item whose expression has ``fragment``."""

    def wanted(params: dict[str, Any]) -> bool:
        key = params["Key"].get("sk")
        return key == {"S": "listing"} and fragment in params["UpdateExpression"]

    return wanted


def test_a_claim_sent_again_after_it_went_through_still_lists_the_run(world: Make) -> None:
    _, pipeline = world(plugs(300), DevicesPerMessage=10)
    # Given the scheduled invocation's claim of its run applied, its answer lost, and sent
    # again by the SDK (the second write finds the run claimed: by this invocation)
    repeated = calls_applied_twice(
        pipeline.stack.client("dynamodb"), "UpdateItem", listing_write("lease_owner = :me")
    )
    # When the schedule invokes the scheduler
    first = pipeline.schedule()
    # Then the invocation took the run as its own and enqueued the fleet
    assert repeated == [0]
    assert (first["listing"], first["devices"]) == ("finished", 300)
    assert listing_of(pipeline, first["run_id"]).finished
    assert waiting(pipeline, pipeline.check_queue) == 30


def test_a_hand_on_sent_again_after_it_went_through_still_sends_the_next_step(
    world: Make,
) -> None:
    sim, pipeline = world(plugs(200), DevicesPerMessage=10)
    pipeline.invocation_clock = pages_cost(sim, budget_s=53)  # four steps of 3 pages
    # Given the first step's hand-on applied, its answer lost, and sent again by the SDK
    # (the second write finds the step handed on: by this invocation)
    repeated = calls_applied_twice(
        pipeline.stack.client("dynamodb"), "UpdateItem", listing_write("step = :next")
    )
    # When the schedule invokes the scheduler, and the listing queue is consumed
    first = pipeline.schedule()
    pipeline.run_listing()
    # Then the first step handed on and sent the next step its message: the run was
    # listed to the end, every device in one message
    assert repeated == [0]
    assert first["listing"] == "handed on"
    assert listing_of(pipeline, first["run_id"]).finished
    listed = Counter(d for message in take_enqueued(pipeline) for d in message.device_ids)
    assert sorted(listed) == [f"plug{i:05d}" for i in range(200)]
    assert set(listed.values()) == {1}
