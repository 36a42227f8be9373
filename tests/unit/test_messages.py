"""What crosses a queue or a topic: each model read back as its producer wrote it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fwwatch.aws.publish_sns import SAFE_LIMIT, SnsPublisher, run_message, sns_message
from fwwatch.events import EventGroup, EventType, FirmwareEvent, group_events
from fwwatch.messages import (
    CheckMessage,
    DeadLetter,
    DigestReason,
    DigestRequest,
    NewsDevice,
    NewsMessage,
    ReleasePart,
    ReleaseSummary,
    RunDigestMessage,
    SnsDelivery,
)
from fwwatch.render import render_json, render_subject, render_text
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


def test_a_run_is_planned_as_numbered_parts_that_retries_keep() -> None:
    # Given a run of 25 devices, 10 to a message
    messages = CheckMessage.plan("run1", [f"dev{i:03d}" for i in range(25)], per_message=10)
    # Then it is three parts, each knowing its number and how many there are
    assert [(m.part, m.parts, m.progress_key) for m in messages] == [
        (0, 3, "0.1"),
        (1, 3, "1.1"),
        (2, 3, "2.1"),
    ]
    again = CheckMessage.model_validate_json(messages[1].model_dump_json(exclude_defaults=True))
    assert again == messages[1]
    # And a retry is the same part's next attempt, counted apart from the first
    assert messages[1].retry(["dev012"]).progress_key == "1.2"
    # And a message sent without a plan is not counted
    assert CheckMessage(run_id="x", device_ids=("dev000",)).progress_key is None


def test_a_digest_request_reads_back_as_sent() -> None:
    request = DigestRequest(run_id="2026-11-25T06:00:00Z", reason=DigestReason.DEADLINE)
    request = request.model_copy(update={"not_before": 1_800_000_000, "news_seq": 7})
    assert DigestRequest.model_validate_json(request.model_dump_json()) == request


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
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": published["default"]}}]}
    (delivered,) = SnsDelivery.model_validate(event).messages
    # Then the function reads the same group: every device, status and time
    assert delivered.to_group() == group
    assert delivered.summary.startswith("The update to 2.0 failed on 30 devices")


def test_the_news_body_keeps_isoformat_timestamps() -> None:
    body = render_json(release(devices=1))
    assert body["occurred_at"] == T0.isoformat()
    assert body["devices"][0]["occurred_at"] == T0.isoformat()


def test_a_part_of_a_release_reads_back_with_the_whole_release_count() -> None:
    # Given the second part of a follow-up of 30 devices, with 10 devices in it
    group = release(devices=30)
    (_, second, _) = group.split(10)
    told = ReleasePart.of(
        second, release_devices=30, part=2, parts=3, follow_up=True, run_id="run7"
    )
    # When its JSON body is read by a subscriber
    body = json.loads(json.dumps(render_json(told)))
    again = NewsMessage.model_validate(body)
    # Then it has this part's devices, the release's count and its place, as published
    assert (again.device_count, again.release_device_count, again.part, again.parts) == (
        10,
        30,
        2,
        3,
    )
    assert again.to_group() == told
    # And people read the whole release's count, the part, and that it is a follow-up
    assert render_subject(told).endswith("(30 more devices) part 2 of 3")
    text = render_text(told)
    assert "Devices:   30" in text
    assert "Part:      2 of 3 (10 devices in it)" in text
    assert "Follow-up:" in text


def test_a_release_goes_out_as_one_message_of_each_kind_for_machines_and_people() -> None:
    # Given the Publish call for a release of 30 devices
    arguments = sns_message(ReleasePart.of(release(devices=30), run_id="run7"))
    bodies = json.loads(arguments["Message"])
    # Then e-mail gets the text, every other protocol the one JSON body, once
    assert set(bodies) == {"default", "email"}
    assert bodies["email"].startswith("The update to 2.0 failed on 30 devices")
    assert len(json.loads(bodies["default"])["devices"]) == 30
    attributes = {k: v["StringValue"] for k, v in arguments["MessageAttributes"].items()}
    assert attributes["kind"] == "release"
    assert attributes["run_id"] == "run7"


def test_a_release_too_big_for_one_message_is_split_into_parts_that_fit() -> None:
    # Given a release of 3,000 devices (well over SNS's 256 KiB as one message)
    group = release(devices=3000)
    # When it is cut as the publisher cuts it
    per_part = SnsPublisher.devices_per_message(group)
    parts = group.split(per_part)
    # Then every part fits, and there are few of them
    assert 1 < len(parts) <= 5
    for number, part in enumerate(parts, 1):
        told = ReleasePart.of(part, release_devices=3000, part=number, parts=len(parts))
        assert len(sns_message(told)["Message"].encode()) <= SAFE_LIMIT


def test_a_run_digest_message_reads_back_and_lists_every_release() -> None:
    group = release(devices=3)
    summary = ReleaseSummary(
        type=group.type,
        product_id=group.product_id,
        product_name=group.product_name,
        channel=group.channel,
        channel_name=group.channel_name,
        version=group.version,
        device_count=3,
        subject=render_subject(group),
        summary="The update to 2.0 failed on 3 devices of Smart plug.",
        first_devices=[NewsDevice(device_id="dev000")],
    )
    digest = RunDigestMessage(run_id="run7", releases=[summary, summary])
    arguments = run_message(digest)
    body = json.loads(json.loads(arguments["Message"])["default"])
    assert RunDigestMessage.model_validate(body) == digest
    assert arguments["Subject"] == "fwwatch: 2 releases, 6 devices - run run7"
    assert arguments["MessageAttributes"]["kind"]["StringValue"] == "run"


def test_the_digest_sample_event_carries_a_digest_request() -> None:
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "events" / "digest.json"
    (record,) = json.loads(sample.read_text())["Records"]
    request = DigestRequest.model_validate_json(record["body"])
    assert request.reason is DigestReason.COMPLETE
