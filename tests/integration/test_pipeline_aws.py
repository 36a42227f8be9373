"""The serverless pipeline end to end: template.yaml in moto, real handlers, the simulator.

schedule -> check queue -> checker -> state table -> stream -> differ -> run table ->
digest queue -> digest -> SNS -> subscribers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fwwatch.simulator import Fleet, FleetChannel, FleetDevice
from tests.integration.pipeline_harness import Pipeline

pytestmark = pytest.mark.integration

PLUG, SENSOR = "plugprod0001", "sensprod0001"


def fleet() -> Fleet:
    plugs = [
        FleetDevice(
            device_id=f"plug{i:03d}",
            name=f"Plug {i}",
            product_id=PLUG,
            product_name="Smart plug",
            category="cz",
            channels=[FleetChannel(channel=0, current_version="1.0.0")],
        )
        for i in range(30)
    ]
    sensors = [
        FleetDevice(
            device_id=f"sens{i:03d}",
            name=f"Sensor {i}",
            product_id=SENSOR,
            product_name="Zigbee sensor",
            category="wsdcg",
            channels=[
                FleetChannel(channel=3, current_version="2.0.0"),
                FleetChannel(channel=9, current_version="0.9.0"),
            ],
        )
        for i in range(12)
    ]
    return Fleet(devices=plugs + sensors)


@pytest.fixture
def world(
    make_simulator: Callable[..., Any], make_aws_stack: Callable[..., Any]
) -> tuple[Any, Pipeline]:
    sim = make_simulator(fleet=fleet())
    stack = make_aws_stack(
        parameters={"TuyaEndpoint": sim.url, "DevicesPerMessage": 10, "DigestDelaySeconds": 0},
        tuya_secret={"access_id": sim.access_id, "access_secret": sim.access_secret},
        slack_webhook_url="http://127.0.0.1:9/services/T/B/x",
    )
    # Three tries per call: a device that fails on purpose costs seconds, not half a minute
    overrides = {"RETRY_DELAY_S": "0", "TUYA_QPS": "500", "TUYA_RETRY_ATTEMPTS": "3"}
    pipeline = Pipeline(stack, overrides=overrides)
    return sim, pipeline


def full_cycle(pipeline: Pipeline) -> list[dict[str, Any]]:
    return pipeline.cycle()


def test_the_first_run_is_silent(world: tuple[Any, Pipeline]) -> None:
    _, pipeline = world
    scheduled = pipeline.schedule()
    pipeline.run_checkers()
    records = pipeline.stream_records()
    pipeline.run_differ(records)
    assert scheduled["devices"] == 42
    assert scheduled["messages"] == 5
    assert (
        len([r for r in records if r["eventName"] == "INSERT"]) == 30 + 24 + 42
    )  # channels + device items
    assert pipeline.notifications() == []


def test_a_release_makes_one_grouped_notification_naming_exactly_its_devices(
    world: tuple[Any, Pipeline],
) -> None:
    sim, pipeline = world
    full_cycle(pipeline)
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    (envelope,) = full_cycle(pipeline)
    body = json.loads(envelope["Message"])
    assert envelope["Subject"] == "fwwatch: 1.1.0 available - Smart plug Main module (30 devices)"
    assert (body["type"], body["product_id"], body["channel"], body["version"]) == (
        "update_available",
        PLUG,
        0,
        "1.1.0",
    )
    assert sorted(d["device_id"] for d in body["devices"]) == [f"plug{i:03d}" for i in range(30)]
    attributes = envelope["MessageAttributes"]
    assert attributes["event_type"]["Value"] == "update_available"
    assert attributes["product_id"]["Value"] == PLUG


def test_an_unchanged_run_writes_nothing_and_publishes_nothing(world: tuple[Any, Pipeline]) -> None:
    _, pipeline = world
    full_cycle(pipeline)
    pipeline.schedule()
    pipeline.run_checkers()
    assert pipeline.stream_records() == []
    assert pipeline.notifications() == []


def test_an_installed_update_is_update_installed(world: tuple[Any, Pipeline]) -> None:
    sim, pipeline = world
    full_cycle(pipeline)
    sim.cloud.publish_release(SENSOR, 3, "2.1.0")
    full_cycle(pipeline)
    sim.cloud.mark_installed("sens000", 3)
    sim.cloud.mark_installed("sens001", 3)
    (envelope,) = full_cycle(pipeline)
    body = json.loads(envelope["Message"])
    assert (body["type"], body["version"], body["previous_versions"]) == (
        "update_installed",
        "2.1.0",
        ["2.0.0"],
    )
    assert [d["device_id"] for d in body["devices"]] == ["sens000", "sens001"]


def test_a_replayed_stream_batch_publishes_nothing_new(world: tuple[Any, Pipeline]) -> None:
    sim, pipeline = world
    full_cycle(pipeline)
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    pipeline.schedule()
    pipeline.run_checkers()
    records = pipeline.stream_records()
    pipeline.run_differ(records)
    pipeline.run_digest()
    assert len(pipeline.notifications()) == 1
    # When the same batch is delivered again (a retry after a partial failure, a redelivery)
    pipeline.run_differ(records)
    pipeline.run_differ(records, batch_size=7)
    pipeline.run_digest()
    assert pipeline.notifications() == []


def test_a_poison_message_and_a_failing_device_end_in_the_dead_letter_queue(
    world: tuple[Any, Pipeline],
) -> None:
    sim, pipeline = world
    # Given a device whose every call fails (HTTP 500) and a message that is not JSON
    sim.cloud.faults.inject_http_status(500, count=10_000, path_contains="plug007")
    pipeline.send_raw("this is not a check message")
    pipeline.schedule()
    answers = pipeline.run_checkers()
    dead = pipeline.dead_letters()
    # Then the rest of the fleet was checked, and both ended in the DLQ with their reason
    assert sum(len(a["batchItemFailures"]) for a in answers) >= 1
    assert "this is not a check message" in dead
    (gave_up,) = [json.loads(body) for body in dead if body.startswith("{")]
    assert gave_up["device_ids"] == ["plug007"]
    assert "HTTP 500" in gave_up["errors"]["plug007"]["msg"]
    stored = pipeline.stack.client("dynamodb").scan(
        TableName=pipeline.stack.table_name("StateTable")
    )["Items"]
    channels = {item["device_id"]["S"] for item in stored if int(item["channel"]["N"]) >= 0}
    assert len(channels) == 41


def test_slack_429_with_retry_after_is_honoured(world: tuple[Any, Pipeline]) -> None:
    sim, pipeline = world
    calls: list[httpx.Request] = []

    def slack(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "1"}, text="rate_limited")
        return httpx.Response(200, text="ok")

    full_cycle(pipeline)
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    envelopes = full_cycle(pipeline)
    service = pipeline.slack_service(transport=httpx.MockTransport(slack))
    answer = pipeline.deliver_to_slack(envelopes, service)
    assert answer == {"posted": 1, "uncertain": 0}
    assert len(calls) == 2
    posted = json.loads(calls[1].content)
    assert posted["text"].startswith("Firmware 1.1.0 is available for 30 devices")
