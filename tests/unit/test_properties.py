"""Properties that hold for every input: parsers and the diff only raise the project's errors.

Hypothesis generates the inputs (no network; the unit socket guard stays on). Each bug a
property found has an example of its own below, so that its fix is confirmed on its own.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fwwatch.aws.dynamo import to_dynamo
from fwwatch.aws.store_dynamodb import StateImageError, state_from_image
from fwwatch.events import EventType, FirmwareEvent, diff, group_events
from fwwatch.news import news_from_changes
from fwwatch.state import ChannelState, StoredError
from fwwatch.tuya import (
    InvalidDeviceIdError,
    RetryPolicy,
    TuyaClient,
    TuyaError,
    TuyaResponseError,
    TuyaSettings,
    parse_firmware,
    validate_device_id,
)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------- JSON-like values

# Numbers as large as JSON can carry (json.loads refuses more than 4300 digits).
HUGE_INTS = st.integers(min_value=-(10**400), max_value=10**400)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

#: Every field the firmware endpoint documents (and the aliases the parser reads).
CHANNEL_FIELDS = (
    "type",
    "channel",
    "upgrade_status",
    "current_version",
    "version",
    "target_version",
    "type_desc",
    "desc",
    "upgrading_desc",
    "downloading_desc",
    "waiting_desc",
    "dev_type",
    "timeout",
    "upgrade_type",
    "control_type",
    "can_upgrade",
    "remind",
    "url",
    "md5",
    "sign",
    "file_size",
    "last_upgrade_time",
    "firmware_deploy_time",
)
#: A value of a random type for a documented field: right types, wrong types, edge values.
FIELD_VALUES = (
    JSON_VALUES
    | HUGE_INTS
    | st.sampled_from(["", " ", "1.2.3", "-1", "0x10", "1e400", "NaN", "٣"])
    | st.integers(min_value=-(2**70), max_value=2**70)
)
CHANNEL_DICTS = st.dictionaries(st.sampled_from(CHANNEL_FIELDS), FIELD_VALUES, max_size=8)
FIRMWARE_RESULTS = JSON_VALUES | CHANNEL_DICTS | st.lists(CHANNEL_DICTS | JSON_VALUES, max_size=4)


@FAST
@given(result=FIRMWARE_RESULTS)
def test_parse_firmware_raises_nothing_but_tuya_response_error_whatever_the_result(
    result: Any,
) -> None:
    # Given any JSON-like result, of any shape, with any type in any documented field
    # When it is parsed as a firmware answer
    # Then it is read, or refused with the client's own TuyaResponseError
    try:
        firmware = parse_firmware("dev1", result)
    except TuyaResponseError:
        return
    assert firmware.device_id == "dev1"


# ---------------------------------------------------------------------- the client's envelope

TUYA_CODES = st.sampled_from(
    [1001, 1004, 1005, 1010, 1011, 1013, 1106, 1110, 2001, 2009, 2406, 28841002, 500, 9999]
)
CODES = TUYA_CODES | JSON_VALUES | HUGE_INTS | st.sampled_from(["1010", "x", float("inf")])
ENVELOPES = st.fixed_dictionaries(
    {},
    optional={
        "success": st.booleans() | JSON_VALUES,
        "result": FIRMWARE_RESULTS | JSON_VALUES,
        "code": CODES,
        "error_code": CODES,
        "msg": JSON_VALUES,
        "error_msg": JSON_VALUES,
        "t": st.integers(min_value=0, max_value=2**64) | JSON_VALUES | HUGE_INTS,
        "tid": JSON_VALUES,
    },
)
LISTING_RESULTS = st.fixed_dictionaries(
    {},
    optional={
        "list": st.lists(st.dictionaries(st.sampled_from(["id", "name"]), JSON_VALUES))
        | JSON_VALUES,
        "has_more": JSON_VALUES,
        "last_row_key": JSON_VALUES,
    },
)


def _dump(value: Any) -> bytes:
    # json.dumps writes NaN and Infinity, as a broken server might; ints of any size.
    return json.dumps(value).encode()


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


BODIES = (
    st.binary(max_size=64)
    | JSON_VALUES.map(_dump)
    | ENVELOPES.map(_dump)
    | st.builds(lambda result: _dump({"success": True, "result": result}), LISTING_RESULTS)
    | st.sampled_from([1, 50, 999, 100_000]).map(_nested)
    | st.integers(min_value=4000, max_value=5000).map(lambda digits: b"9" * digits)
    | st.sampled_from(
        [
            b'{"success": false, "code": Infinity}',
            b'{"success": false, "code": 1013, "t": 1e999}',
            b"\xff\xfe{",
            '{"success": true, "result": "\u00e9"}'.encode("utf-16"),
        ]
    )
)
STATUSES = st.sampled_from([200, 200, 200, 400, 401, 404, 429, 500, 503])
OPERATIONS = st.sampled_from(["firmware", "list_thing", "list_iot03"])

TOKEN_ANSWER = {
    "success": True,
    "result": {"access_token": "at", "refresh_token": "rt", "expire_time": 7200, "uid": "u"},
}
BUSINESS_CALL_LIMIT = 20


def _scripted(
    business: list[tuple[int, bytes]], token: tuple[int, bytes] | None
) -> Callable[[httpx.Request], httpx.Response]:
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        if request.url.path.startswith("/v1.0/token"):
            if token is not None:
                return httpx.Response(token[0], content=token[1])
            return httpx.Response(200, json=TOKEN_ANSWER)
        calls += 1
        if calls > BUSINESS_CALL_LIMIT:
            # Keeps a paging loop finite; the loop itself is tested on its own below.
            return httpx.Response(200, json={"success": False, "code": 9999, "msg": "enough"})
        status, body = business[(calls - 1) % len(business)]
        return httpx.Response(status, content=body)

    return answer


async def _exercise(operation: str, transport: httpx.MockTransport) -> None:
    settings_ = TuyaSettings(
        access_id="prop-id",
        access_secret="prop-secret",
        endpoint="https://openapi.tuyaeu.com",
        qps=1000,
        device_listing="iot-03" if operation == "list_iot03" else "thing",
    )
    client = TuyaClient(
        settings_,
        transport=transport,
        retry=RetryPolicy(attempts=2, base_s=0.0),
        rng=lambda low, high: 0.0,
    )
    async with client:
        if operation == "firmware":
            await client.get_firmware("dev1")
        else:
            async for _ in client.list_devices():
                pass


def _outcome(operation: str, transport: httpx.MockTransport) -> BaseException | None:
    async def bounded() -> None:
        await asyncio.wait_for(_exercise(operation, transport), timeout=5)

    try:
        asyncio.run(bounded())
    except Exception as exc:
        return exc
    return None


@FAST
@given(
    operation=OPERATIONS,
    business=st.lists(st.tuples(STATUSES, BODIES), min_size=1, max_size=3),
    token=st.none() | st.tuples(STATUSES, BODIES),
)
@example(operation="firmware", business=[(200, _nested(100_000))], token=None)
def test_the_client_raises_only_tuya_errors_whatever_the_cloud_answers(
    operation: str, business: list[tuple[int, bytes]], token: tuple[int, bytes] | None
) -> None:
    # Given a cloud that answers token and business calls with arbitrary bytes or JSON
    transport = httpx.MockTransport(_scripted(business, token))
    # When the client fetches firmware or lists devices
    error = _outcome(operation, transport)
    # Then it succeeds or raises one of the client's typed errors, never anything else
    assert error is None or isinstance(error, TuyaError), repr(error)


# One example per distinct bug the property finds, so that each fix is confirmed on its own.

NOT_READABLE = [
    pytest.param(
        200,
        _nested(100_000),
        id="json-nested-100000-deep",
    ),
    pytest.param(
        200,
        b"9" * 5000,
        id="json-integer-of-5000-digits",
    ),
    pytest.param(
        200,
        b'{"success": false, "code": Infinity, "msg": "x"}',
        id="error-code-infinity",
    ),
    pytest.param(
        200,
        b'{"success": false, "code": 1013, "t": 1' + b"0" * 400 + b"}",
        id="clock-answer-with-a-400-digit-time",
    ),
]


@pytest.mark.parametrize(("status", "body"), NOT_READABLE)
def test_an_unreadable_firmware_answer_is_a_tuya_error(status: int, body: bytes) -> None:
    # Given a cloud whose firmware answer is pathological JSON
    transport = httpx.MockTransport(_scripted([(status, body)], None))
    # When the client asks for a device's firmware
    error = _outcome("firmware", transport)
    # Then the client raises one of its own errors
    assert isinstance(error, TuyaError), repr(error)


def test_a_token_answer_with_an_absurd_lifetime_is_a_tuya_error_or_a_token() -> None:
    # Given a token answer whose expire_time is an integer too large for a float
    token = b'{"success": true, "result": {"access_token": "a", "expire_time": 1' + b"0" * 400
    transport = httpx.MockTransport(
        _scripted([(200, _dump({"success": True, "result": []}))], (200, token + b"}}"))
    )
    # When the client takes a token to fetch firmware
    error = _outcome("firmware", transport)
    # Then it either works (the lifetime is clamped) or fails with a typed error
    assert error is None or isinstance(error, TuyaError), repr(error)


def test_an_iot03_page_with_an_unhashable_row_key_is_a_tuya_error_or_the_end() -> None:
    # Given an iot-03 listing whose last_row_key is a JSON array
    page = _dump({"success": True, "result": {"list": [], "has_more": True, "last_row_key": [1]}})
    transport = httpx.MockTransport(_scripted([(200, page)], None))
    # When the client lists devices
    error = _outcome("list_iot03", transport)
    # Then the listing ends, or fails with a typed error
    assert error is None or isinstance(error, TuyaError), repr(error)


def test_an_iot03_listing_that_repeats_a_numeric_row_key_stops_at_the_repeat() -> None:
    # Given an iot-03 listing that always says "more after row key 5"
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v1.0/token"):
            return httpx.Response(200, json=TOKEN_ANSWER)
        requests.append(request)
        if len(requests) > BUSINESS_CALL_LIMIT:
            return httpx.Response(200, json={"success": False, "code": 9999, "msg": "enough"})
        page = {"list": [{"id": f"dev{len(requests)}"}], "has_more": True, "last_row_key": 5}
        return httpx.Response(200, json={"success": True, "result": page})

    # When the client lists devices
    _outcome("list_iot03", httpx.MockTransport(answer))
    # Then it stops when the row key repeats (two pages), as it does for a string row key
    assert len(requests) == 2


# ---------------------------------------------------------------------- stream images and diff

DEVICE_IDS = st.from_regex(r"[A-Za-z0-9_-]{1,24}", fullmatch=True)
VERSIONS = (
    st.none() | st.sampled_from(["1.0.0", "1.1.0", "2.0.0", "2.0.0-beta"]) | st.text(max_size=6)
)
TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
STORED_ERRORS = st.builds(
    StoredError,
    code=st.none() | st.integers(-(2**40), 2**40),
    msg=st.text(max_size=20),
    tid=st.none() | st.text(max_size=10),
    permanent=st.booleans(),
)
STATES = st.builds(
    ChannelState,
    device_id=DEVICE_IDS,
    channel=st.integers(min_value=-1, max_value=20),
    channel_name=st.text(max_size=12),
    device_name=st.none() | st.text(max_size=12),
    product_id=st.none() | st.text(max_size=12),
    product_name=st.none() | st.text(max_size=12),
    current_version=VERSIONS,
    target_version=VERSIONS,
    upgrade_status=st.sampled_from([0, 1, 2, 3, 4, 5, 7]) | st.integers(-5, 100),
    update_available=st.booleans(),
    first_seen=TIMES,
    last_changed=TIMES,
    last_error=st.none() | STORED_ERRORS,
    digest=st.none() | st.text(max_size=20),
)

# DynamoDB JSON as a stream record carries it: numbers are strings DynamoDB accepts.
DYNAMO_NUMBERS = st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1).map(str) | st.decimals(
    min_value=-(10**20), max_value=10**20, allow_nan=False, places=6
).map(str)
DYNAMO_SCALARS = (
    st.builds(lambda text: {"S": text}, st.text(max_size=12))
    | st.builds(lambda number: {"N": number}, DYNAMO_NUMBERS)
    | st.builds(lambda flag: {"BOOL": flag}, st.booleans())
    | st.just({"NULL": True})
)
DYNAMO_VALUES = st.recursive(
    DYNAMO_SCALARS,
    lambda inner: (
        st.builds(
            lambda members: {"M": members}, st.dictionaries(st.text(max_size=8), inner, max_size=3)
        )
        | st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3))
    ),
    max_leaves=8,
)
STATE_FIELDS = tuple(ChannelState.model_fields)
ARBITRARY_IMAGES = st.dictionaries(
    st.sampled_from(STATE_FIELDS) | st.text(max_size=8), DYNAMO_VALUES, max_size=10
)
#: Real images of valid states, then the same with one attribute replaced or dropped.
REAL_IMAGES = STATES.map(lambda state: to_dynamo(state.to_item()))


@st.composite
def damaged_images(draw: st.DrawFn) -> dict[str, Any]:
    image = dict(draw(REAL_IMAGES))
    name = draw(st.sampled_from(sorted(image)))
    if draw(st.booleans()):
        del image[name]
    else:
        image[name] = draw(DYNAMO_VALUES)
    return image


IMAGES = st.none() | ARBITRARY_IMAGES | REAL_IMAGES | damaged_images()


def _typed_errors() -> tuple[type[BaseException], ...]:
    """The project's own errors a stream image may raise."""
    return (TuyaError, StateImageError)


@FAST
@given(old=IMAGES, new=IMAGES)
@example(old=None, new={"device_id": {"S": "dev1"}})
def test_a_stream_image_pair_becomes_news_or_a_typed_error(
    old: dict[str, Any] | None, new: dict[str, Any] | None
) -> None:
    # Given any pair of DynamoDB-JSON images, real, damaged or arbitrary
    # When the differ reads them and diffs them
    try:
        new_state = state_from_image(new)
        if new_state is None:
            return
        news_from_changes([(state_from_image(old), new_state)], notify_first_seen=True)
    # Then nothing but the project's own typed errors comes out
    except _typed_errors():
        return


@FAST
@given(state=STATES)
def test_a_state_survives_the_trip_through_a_stream_image_unchanged(state: ChannelState) -> None:
    # Given a channel state
    # When it is written as a DynamoDB item and read back from a stream image
    read = state_from_image(to_dynamo(state.to_item()))
    # Then it is the same state
    assert read == state


@FAST
@given(state=STATES, notify_first_seen=st.booleans())
def test_a_state_diffed_with_itself_makes_no_news(
    state: ChannelState, notify_first_seen: bool
) -> None:
    # Given a state, and the same state again
    # When they are diffed
    events = diff(state, state, notify_first_seen=notify_first_seen)
    # Then there is no news
    assert events == []


@FAST
@given(pairs=st.lists(st.tuples(st.none() | STATES, STATES), max_size=6), first=st.booleans())
def test_valid_state_pairs_always_diff_into_events_of_the_new_state(
    pairs: list[tuple[ChannelState | None, ChannelState]], first: bool
) -> None:
    # Given any valid (old, new) state pairs
    # When the differ turns them into news
    events = news_from_changes(pairs, notify_first_seen=first)
    # Then it does not raise, and each event is about the device channel of some new state
    keys = {(new.device_id, new.channel) for _, new in pairs}
    assert all((event.device_id, event.channel) in keys for event in events)


EVENTS = st.builds(
    FirmwareEvent,
    type=st.sampled_from(list(EventType)),
    device_id=st.sampled_from(["dev1", "dev2", "dev3", "dev4"]),
    channel=st.integers(0, 2),
    product_id=st.sampled_from([None, "", "prodA", "prodB"]),
    previous_version=st.none() | st.sampled_from(["1.0.0", "1.1.0"]),
    current_version=st.none() | st.sampled_from(["1.0.0", "1.1.0", "2.0.0"]),
    target_version=st.none() | st.sampled_from(["1.1.0", "2.0.0"]),
    occurred_at=TIMES,
)


def _bucket(kind: str, product_id: str | None, channel: int, version: str) -> tuple[Any, ...]:
    return (kind, product_id or "", channel, version)


@FAST
@given(events=st.lists(EVENTS, max_size=30))
def test_grouping_keeps_every_events_device_exactly_once(events: list[FirmwareEvent]) -> None:
    # Given any events, duplicates and near-duplicates included
    # When they are grouped into messages
    groups = group_events(events)
    # Then each (message kind, device) of the input is in exactly one group, once
    wanted = {
        (*_bucket(e.type.value, e.product_id, e.channel, e.version), e.device_id) for e in events
    }
    listed = [
        (*_bucket(g.type.value, g.product_id, g.channel, g.version), e.device_id)
        for g in groups
        for e in g.events
    ]
    assert sorted(listed) == sorted(wanted)


# ---------------------------------------------------------------------- device IDs

ALLOWED = frozenset(string.ascii_letters + string.digits + "_-")


def is_tuya_device_id(text: str) -> bool:
    """The rule, written independently of the product's regular expression."""
    return 1 <= len(text) <= 64 and all(char in ALLOWED for char in text)


HOSTILE_CHARS = st.sampled_from(list("/\\.%?#;&=+ :@\t\r\n\x00\x1b\u200b\u00e9\uff46\u0660"))


@st.composite
def near_ids(draw: st.DrawFn) -> str:
    """A valid ID with one hostile character put somewhere in it."""
    base = draw(st.from_regex(r"[A-Za-z0-9_-]{0,64}", fullmatch=True))
    at = draw(st.integers(0, len(base)))
    return base[:at] + draw(HOSTILE_CHARS) + base[at:]


CANDIDATE_IDS = (
    st.text(max_size=80)
    | st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
    | st.from_regex(r"[A-Za-z0-9_-]{65,200}", fullmatch=True)
    | near_ids()
    | st.from_regex(r"[A-Za-z0-9_-]{1,63}\n", fullmatch=True)
)


@FAST
@given(candidate=CANDIDATE_IDS)
@example(candidate="")
@example(candidate="a" * 64)
@example(candidate="a" * 65)
@example(candidate="abc\n")
def test_a_device_id_is_accepted_exactly_when_it_is_1_to_64_letters_digits_or_dashes(
    candidate: str,
) -> None:
    # Given any string
    # When it is validated as a device ID
    try:
        accepted = validate_device_id(candidate) == candidate
    except InvalidDeviceIdError:
        accepted = False
    # Then it is accepted (unchanged) exactly when it matches [A-Za-z0-9_-]{1,64}
    assert accepted == is_tuya_device_id(candidate)


@FAST
@given(candidate=JSON_VALUES.filter(lambda value: not isinstance(value, str)) | st.binary())
def test_a_device_id_that_is_not_a_string_is_refused_with_invalid_device_id_error(
    candidate: object,
) -> None:
    # Given a value that is not a string (a number, bytes, a list...)
    # When it is validated as a device ID
    # Then it is refused with the project's own error
    with pytest.raises(InvalidDeviceIdError):
        validate_device_id(candidate)


@FAST
@given(candidate=st.text(min_size=65, max_size=2000) | near_ids())
@example(candidate="\U000e0001" * 100_000)
def test_a_refused_device_id_gets_a_short_message_whatever_its_length(candidate: str) -> None:
    # Given a hostile or huge device ID
    # When it is refused
    with pytest.raises(InvalidDeviceIdError) as refused:
        validate_device_id(candidate)
    # Then the message stays short enough for a terminal line or a log entry
    assert len(str(refused.value)) < 512
