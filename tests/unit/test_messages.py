"""What crosses a queue or a topic: each model read back as its producer wrote it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fwwatch.aws.publish_sns import sns_message
from fwwatch.events import EventGroup, EventType, FirmwareEvent, group_events
from fwwatch.messages import CheckMessage, DeadLetter, NewsMessage, SnsDelivery
from fwwatch.render import render_json
from fwwatch.state import DeviceInfo
from fwwatch.tuya import TuyaTransientError

T0 = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)


def release(devices: int = 3) -> EventGroup:
    """A group whose devices differ in every field a message carries."""
    events = [
        FirmwareEvent(
            type=EventType.UPDATE_FAILED,
            device_id=f"dev{i:03d}",
            device_name=f"Plug {i}" if i % 2 else None,
            channel=9,
            channel_name="MCU",
            product_id="prod01",
            product_name="Smart plug",
            previous_version=f"1.{i}",
            current_version=f"1.{i}",
            target_version="2.0",
            upgrade_status=4 if i % 2 else 7,
            occurred_at=T0 + timedelta(minutes=i),
        )
        for i in range(devices)
    ]
    (group,) = group_events(events)
    return group


def test_a_check_message_reads_back_as_planned() -> None:
    infos = {"dev001": DeviceInfo(device_name="Plug", product_id="p", product_name="P")}
    (message,) = CheckMessage.plan("run1", ["dev000", "dev001"], per_message=10, infos=infos)
    again = CheckMessage.model_validate_json(message.model_dump_json(exclude_defaults=True))
    assert again == message


def test_a_retry_message_is_the_next_attempt_of_only_the_devices_to_retry() -> None:
    infos = {d: DeviceInfo(device_name=d.upper()) for d in ("dev000", "dev001", "dev002")}
    (message,) = CheckMessage.plan("run1", list(infos), per_message=10, infos=infos)
    retry = CheckMessage.model_validate_json(message.retry(["dev002"]).model_dump_json())
    assert (retry.run_id, retry.device_ids, retry.attempt) == ("run1", ("dev002",), 2)
    assert retry.infos == {"dev002": infos["dev002"]}


def test_a_dead_letter_reads_back_with_every_error() -> None:
    (message,) = CheckMessage.plan("run1", ["dev000", "dev001"], per_message=10)
    errors = {
        "dev001": TuyaTransientError("HTTP 503; gave up after 8 attempts", code=None),
        "dev000": TuyaTransientError("busy", code=1112, tid="t-1"),
    }
    letter = DeadLetter.of(message.retry(["dev000", "dev001"]), errors)
    again = DeadLetter.model_validate_json(letter.model_dump_json())
    assert again == letter
    assert again.device_ids == ("dev000", "dev001")
    assert again.attempt == 2
    assert (again.errors["dev000"].code, again.errors["dev000"].tid) == (1112, "t-1")


def test_a_news_message_gives_back_the_group_it_was_made_from() -> None:
    group = release()
    body = json.loads(json.dumps(render_json(group)))
    assert NewsMessage.model_validate(body).to_group() == group


def test_what_sns_hands_the_slack_function_is_the_group_the_differ_published() -> None:
    # Given the differ's Publish call for a group (one JSON body per protocol)
    group = release(devices=30)
    published = json.loads(sns_message(group)["Message"])
    # When SNS delivers it to a subscribed function
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": published["lambda"]}}]}
    (delivered,) = SnsDelivery.model_validate(event).messages
    # Then the function reads the same group: every device, status and time
    assert delivered.to_group() == group
    assert delivered.summary.startswith("The update to 2.0 failed on 30 devices")


def test_the_news_body_keeps_isoformat_timestamps() -> None:
    body = render_json(release(devices=1))
    assert body["occurred_at"] == T0.isoformat()
    assert body["devices"][0]["occurred_at"] == T0.isoformat()
