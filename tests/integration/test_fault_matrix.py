"""The fault matrix: one row per fault, the whole flow, nothing lost, nothing said twice.

Every row runs the same story: a baseline cycle, a firmware release for the plugs, a cycle
under the fault, then (faults cleared) a recovery cycle. During the faulty cycle every
device ends checked or reported failed with its reason; over the whole story each plug's
news is delivered exactly once. Tuya-side faults run in both modes: local (SQLite, direct
notifiers) and AWS (the handlers on moto, from template.yaml). docs/reliability.md lists
the rows and what fwwatch guarantees under each.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fwwatch.cycle import DeviceRetryPolicy
from fwwatch.events import EventGroup
from fwwatch.local.runner import RunReport, run_cycle
from fwwatch.local.store_sqlite import SqliteStore
from fwwatch.simulator import Fleet, FleetChannel, FleetDevice
from fwwatch.tuya import RetryPolicy, TuyaClient, TuyaFatalError, TuyaSettings
from tests.integration.fakes import RecordingNotifier, failing_calls
from tests.integration.pipeline_harness import Pipeline

pytestmark = pytest.mark.integration

PLUG, SENSOR = "plugprod0001", "sensprod0001"
PLUGS = [f"plug{i:03d}" for i in range(16)]
SENSORS = [f"sens{i:03d}" for i in range(8)]


def fleet() -> Fleet:
    def device(
        device_id: str, product: str, channels: list[FleetChannel], **extra: Any
    ) -> FleetDevice:
        return FleetDevice(
            device_id=device_id,
            name=device_id.title(),
            product_id=product,
            product_name=product,
            category="cz",
            channels=channels,
            **extra,
        )

    plugs = [device(d, PLUG, [FleetChannel(channel=0, current_version="1.0.0")]) for d in PLUGS]
    sensors = [
        device(
            d,
            SENSOR,
            [
                FleetChannel(channel=3, current_version="2.0.0"),
                FleetChannel(channel=9, current_version="0.9"),
            ],
            shape="object" if i % 2 else "list",
            channel_key="channel" if i % 2 else "type",
        )
        for i, d in enumerate(SENSORS)
    ]
    return Fleet(devices=plugs + sensors)


class Recorder(RecordingNotifier):
    """A recording notifier that can say which plugs it was told of."""

    def __init__(self, name: str = "recorder") -> None:
        super().__init__(name)

    def plugs_told(self) -> list[str]:
        return sorted(e.device_id for g in self.groups for e in g.events if g.version == "1.1.0")


@dataclass
class Row:
    """A fault on the Tuya side, and how to clear it."""

    name: str
    inject: Callable[[Any], None]
    clear: Callable[[Any], None] = lambda sim: sim.cloud.faults.clear()
    fails: frozenset[str] = frozenset()  # devices the faulty cycle reports failed


def _device_errors(sim: Any, code: int, devices: Sequence[str]) -> None:
    for device_id in devices:
        sim.cloud.set_device_error(device_id, code)


def _clear_device_errors(sim: Any) -> None:
    for device_id in PLUGS + SENSORS:
        sim.cloud.set_device_error(device_id, None)


def _unknown_statuses(sim: Any) -> None:
    sim.cloud.mark_failed("sens001", 3, status=42)  # an upgrade_status nobody documented


TUYA_ROWS = [
    Row("token revoked mid-run", lambda sim: sim.cloud.revoke_tokens_after(5)),
    Row("token expired early", lambda sim: sim.cloud.expire_tokens()),
    Row("clock 7 minutes off", lambda sim: setattr(sim.cloud.faults, "clock_offset_s", 420)),
    Row(
        "bursts of 1110 and 1199",
        lambda sim: (
            sim.cloud.faults.inject_error(1110, count=6, path_contains="firmware"),
            sim.cloud.faults.inject_error(1199, count=6, path_contains="firmware"),
        ),
    ),
    Row(
        "rate limit enforced (10/s)",
        lambda sim: sim.cloud.set_rate_limit(10),
        lambda sim: sim.cloud.set_rate_limit(None),
    ),
    Row(
        "HTTP 500, 502, 503",
        lambda sim: [
            sim.cloud.faults.inject_http_status(status, count=3, path_contains="firmware")
            for status in (500, 502, 503)
        ],
    ),
    Row(
        "HTTP 429 with Retry-After",
        lambda sim: sim.cloud.faults.inject_http_status(429, count=3, retry_after=0.2),
    ),
    Row(
        "read timeouts",
        lambda sim: sim.cloud.faults.inject_hang(3.0, count=3, path_contains="firmware"),
    ),
    Row(
        "malformed JSON and missing fields",
        lambda sim: [
            sim.cloud.faults.inject_malformed(count=2, kind=kind, path_contains="firmware")
            for kind in ("truncated", "not_json", "missing_result")
        ],
    ),
    Row("unknown statuses, both response shapes", _unknown_statuses, lambda sim: None),
    Row(
        "the first 6 requests of any kind answer 503, the grant included",
        lambda sim: sim.cloud.faults.inject_http_status(503, count=6),
    ),
    Row(
        "the grant throttled (1199) 4 times",
        lambda sim: sim.cloud.faults.inject_error(1199, count=4, calls="token"),
    ),
    Row(
        "the listing answers 500 4 times",
        lambda sim: sim.cloud.faults.inject_http_status(
            500, count=4, path_contains="/v2.0/cloud/thing/device"
        ),
    ),
    Row(
        "tokens revoked every 13th request",
        lambda sim: sim.cloud.revoke_tokens_every(13),
        lambda sim: sim.cloud.revoke_tokens_every(None),
    ),
    Row(
        "1199 every 9th request, 502 every 17th",
        lambda sim: (
            sim.cloud.faults.inject_error(1199, count=None, every=9, for_s=600, calls="any"),
            sim.cloud.faults.inject_http_status(502, count=None, every=17, for_s=600),
        ),
    ),
    Row(
        "a slow-drip answer",
        lambda sim: sim.cloud.faults.inject_drip(0.05, count=1, path_contains="firmware"),
    ),
    Row(
        "a decompression bomb (256 MiB)",
        lambda sim: sim.cloud.faults.inject_bomb(2**28, count=1, path_contains="firmware"),
    ),
    Row(
        "the listing in snake_case",
        lambda sim: sim.cloud.set_listing_fields("snake_case"),
        lambda sim: sim.cloud.set_listing_fields("camelCase"),
    ),
    Row(
        "device errors 2001, 1106, 2010",
        lambda sim: (
            _device_errors(sim, 2001, PLUGS[:2]),
            _device_errors(sim, 1106, PLUGS[2:3]),
            _device_errors(sim, 2010, SENSORS[:1]),
        ),
        _clear_device_errors,
        frozenset(PLUGS[:3] + SENSORS[:1]),
    ),
]


#: The devices' retry rule of every row, in both modes: three checks, no wait between them
#: (AWS mode: RETRY_DELAY_S=0).
NO_WAIT = DeviceRetryPolicy(max_attempts=3, delay_s=0)


# ---------------------------------------------------------------------- local mode


async def local_cycle(
    sim: Any, store: SqliteStore, notifiers: Sequence[Any], **client: Any
) -> RunReport:
    settings = TuyaSettings(
        access_id=sim.access_id,
        access_secret=sim.access_secret,
        endpoint=sim.url,
        qps=200,
        timeout_s=1.0,
    )
    retry = RetryPolicy(base_s=0.01, attempts=client.pop("attempts", 8))
    async with TuyaClient(settings, retry=retry, **client) as tuya:
        return await run_cycle(tuya, store, list(notifiers), batch_size=10, retry=NO_WAIT)


def assert_accounted(report: RunReport, expected_failures: frozenset[str]) -> None:
    """Every device checked or reported failed with its reason."""
    assert report.checked + len(report.failed) == report.devices == len(PLUGS + SENSORS)
    assert {r.device_id for r in report.failed} == expected_failures
    assert all(r.error is not None and r.error.msg for r in report.failed)


async def test_local_mode_when_the_refresh_token_is_rejected(
    make_simulator: Callable[..., Any], tmp_path: Path
) -> None:
    # Given a client that renews its token a moment after each grant, and a cloud that has
    # revoked the refresh token meanwhile (another process took a grant)
    sim = make_simulator(fleet=fleet())
    recorder = Recorder()
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        await local_cycle(sim, store, [recorder])
        sim.cloud.publish_release(PLUG, 0, "1.1.0")
        settings = TuyaSettings(
            access_id=sim.access_id, access_secret=sim.access_secret, endpoint=sim.url
        )
        async with TuyaClient(settings, refresh_margin_s=7200 - 0.3) as tuya:
            await tuya.get_firmware(PLUGS[0])
            sim.cloud.revoke_tokens()
            await asyncio.sleep(0.4)
            report = await run_cycle(tuya, store, [recorder], retry=NO_WAIT)
            stats = tuya.stats
    assert_accounted(report, frozenset())
    assert stats.grants >= 2
    assert recorder.plugs_told() == PLUGS


@pytest.mark.parametrize(("code", "words"), [(1004, "TUYA_ACCESS_SECRET"), (28841004, "quota")])
async def test_local_mode_stops_fast_on_a_fatal_answer(
    code: int, words: str, make_simulator: Callable[..., Any], tmp_path: Path
) -> None:
    sim = make_simulator(fleet=fleet())
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        await local_cycle(sim, store, [Recorder()])
        before = store.load_all()
        sim.cloud.publish_release(PLUG, 0, "1.1.0")
        sim.cloud.stats.reset()
        sim.cloud.faults.inject_error(code, count=10_000)
        with pytest.raises(TuyaFatalError, match=words):
            await local_cycle(sim, store, [Recorder()])
        assert store.load_all() == before  # no device marked as changed
    assert sim.cloud.stats.snapshot()["requests"] <= 2  # the listing and the token: no storm


async def test_local_mode_stops_fast_when_the_grant_is_refused_with_1106(
    make_simulator: Callable[..., Any], tmp_path: Path
) -> None:
    sim = make_simulator(fleet=fleet())
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        await local_cycle(sim, store, [Recorder()])
        before = store.load_all()
        sim.cloud.revoke_tokens()
        sim.cloud.stats.reset()
        sim.cloud.faults.inject_error(1106, count=None, calls="token", for_s=60)
        with pytest.raises(TuyaFatalError, match="refuses this project a token"):
            await local_cycle(sim, store, [Recorder()])
        assert store.load_all() == before
    assert sim.cloud.stats.snapshot()["by_api"] == {"GET /v1.0/token": 1}


@pytest.fixture
def dead_ends() -> Iterator[dict[str, str]]:
    """Loopback addresses where nobody answers: one refuses, one never completes a connect."""
    with socket.socket() as refusing, socket.socket() as silent:
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)  # a full backlog that is never accepted: connects time out
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(silent.getsockname())
            fillers.append(filler)
        yield {
            "connection refused": f"http://127.0.0.1:{refusing.getsockname()[1]}",
            "connect timeout": f"http://127.0.0.1:{silent.getsockname()[1]}",
        }
        for filler in fillers:
            filler.close()


@pytest.mark.parametrize("fault", ["connection refused", "connect timeout"])
async def test_local_mode_when_the_cloud_cannot_be_reached(
    fault: str, dead_ends: dict[str, str], tmp_path: Path
) -> None:
    settings = TuyaSettings(
        access_id="id", access_secret="secret", endpoint=dead_ends[fault], timeout_s=0.3
    )
    async with TuyaClient(settings, retry=RetryPolicy(attempts=3, base_s=0.01)) as tuya:
        with SqliteStore(tmp_path / "s.sqlite3") as store:
            report = await run_cycle(tuya, store, [Recorder()], device_ids=PLUGS[:3], retry=NO_WAIT)
            assert [s for s in store.load_all() if s.channel >= 0] == []
    assert report.checked == 0
    assert [r.device_id for r in report.failed] == PLUGS[:3]
    reason = "cannot connect" if fault == "connection refused" else "timed out"
    assert all(r.error is not None and reason in r.error.msg for r in report.failed)


# ---------------------------------------------------------------------- AWS mode


@pytest.fixture
def aws(
    make_simulator: Callable[..., Any], make_aws_stack: Callable[..., Any]
) -> tuple[Any, Pipeline]:
    sim = make_simulator(fleet=fleet())
    stack = make_aws_stack(
        parameters={"TuyaEndpoint": sim.url, "DevicesPerMessage": 5, "DigestDelaySeconds": 0},
        tuya_secret={"access_id": sim.access_id, "access_secret": sim.access_secret},
    )
    # The same client timeout as local mode's rows (production: 10 s)
    overrides = {"RETRY_DELAY_S": "0", "TUYA_QPS": "200", "TUYA_TIMEOUT_S": "1"}
    return sim, Pipeline(stack, overrides=overrides)


def aws_cycle(pipeline: Pipeline) -> list[dict[str, Any]]:
    """A run through schedule, checks, the stream and the run's digest: what was published."""
    return pipeline.cycle()


def plugs_told(envelopes: list[dict[str, Any]]) -> list[str]:
    told = []
    for envelope in envelopes:
        body = json.loads(envelope["Message"])
        if body["version"] == "1.1.0":
            told += [d["device_id"] for d in body["devices"]]
    return sorted(told)


def stored_errors(pipeline: Pipeline) -> dict[str, int | None]:
    items = pipeline.stack.client("dynamodb").scan(
        TableName=pipeline.stack.table_name("StateTable")
    )["Items"]
    return {
        item["device_id"]["S"]: int(item["last_error"]["M"]["code"]["N"])
        if "code" in item["last_error"]["M"]
        else None
        for item in items
        if item["channel"]["N"] == "-1" and "last_error" in item
    }


@pytest.mark.parametrize(("code", "words"), [(1004, "TUYA_ACCESS_SECRET"), (28841004, "quota")])
def test_aws_mode_stops_fast_on_a_fatal_answer(
    code: int, words: str, aws: tuple[Any, Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, pipeline = aws
    logged: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("fwwatch").addHandler(handler)  # the functions' Powertools logger
    monkeypatch.setattr(handler, "level", logging.ERROR)
    aws_cycle(pipeline)
    table = pipeline.stack.table_name("StateTable")
    before = pipeline.stack.client("dynamodb").scan(TableName=table)["Items"]
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    # The scheduler's discovery meets it first: the run stops there, one clear error
    sim.cloud.stats.reset()
    sim.cloud.faults.inject_error(code, count=1)
    with pytest.raises(TuyaFatalError, match=words):
        pipeline.schedule()
    assert sim.cloud.stats.snapshot()["requests"] <= 2
    # A checker meeting it fails its records fast (they return to the queue, then the DLQ)
    sim.cloud.stats.reset()
    sim.cloud.faults.inject_error(code, count=10_000, path_contains="firmware")
    pipeline.schedule()
    answers = pipeline.run_checkers(max_rounds=1)
    after = pipeline.stack.client("dynamodb").scan(TableName=table)["Items"]
    assert sorted(map(str, after)) == sorted(map(str, before))  # no device marked as changed
    assert len(answers[0]["batchItemFailures"]) == 5
    # No retry storm: only the calls already in flight when the first answer came back
    assert sim.cloud.stats.snapshot()["by_code"][str(code)] <= 16
    logging.getLogger("fwwatch").removeHandler(handler)
    stopped = [line for line in logged if line.startswith("stopped: ")]
    assert stopped
    assert all(words in line for line in stopped)


def test_aws_mode_stops_fast_when_the_grant_is_refused_with_1106(
    aws: tuple[Any, Pipeline],
) -> None:
    sim, pipeline = aws
    aws_cycle(pipeline)
    # Given the shared token revoked, and the project now refused any token (1106)
    sim.cloud.revoke_tokens()
    sim.cloud.stats.reset()
    sim.cloud.faults.inject_error(1106, count=None, calls="token", for_s=60)
    # When the scheduler lists the devices, its token is rejected and the grant refused
    with pytest.raises(TuyaFatalError, match="refuses this project a token"):
        pipeline.schedule()
    # Then the run stops there: one listing call, one grant, nothing else
    assert sim.cloud.stats.snapshot()["by_api"] == {
        "GET /v2.0/cloud/thing/device": 1,
        "GET /v1.0/token": 1,
    }


def test_aws_mode_when_sns_publish_fails_for_a_while(aws: tuple[Any, Pipeline]) -> None:
    sim, pipeline = aws
    aws_cycle(pipeline)
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    sim.cloud.publish_release(SENSOR, 3, "2.1.0")
    sns = pipeline.stack.client("sns")
    # Given SNS failing twice: the first release's publish, then the second's
    left = failing_calls(sns, "Publish", "InternalError", times=2)
    pipeline.schedule()
    pipeline.run_checkers()
    pipeline.run_differ()
    # When the digest runs: its request fails, comes back, and is retried until it goes
    answers = pipeline.run_digest()
    told = pipeline.notifications()
    assert left == [0]
    assert [len(a["batchItemFailures"]) for a in answers] == [1, 0]
    # Then each release was published once, none of them again
    assert plugs_told(told) == PLUGS
    assert len(told) == 2  # the plugs' and the sensors' news, each once
    assert pipeline.dead_letters(pipeline.digest_dlq) == []


def test_aws_mode_when_recording_what_was_published_fails_for_a_while(
    aws: tuple[Any, Pipeline],
) -> None:
    sim, pipeline = aws
    aws_cycle(pipeline)
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    pipeline.schedule()
    pipeline.run_checkers()
    pipeline.run_differ()
    # Given the writes that record a published message failing (the ledger's, then the
    # release's record) a few times each, after SNS took the message
    dynamodb = pipeline.stack.client("dynamodb")
    ledger = failing_calls(dynamodb, "BatchWriteItem", "ProvisionedThroughputExceededException", 2)
    record = failing_calls(dynamodb, "UpdateItem", "ThrottlingException", times=0)
    sns = pipeline.stack.client("sns")
    published: list[int] = []

    def count_then_fail_the_next_update(**_: Any) -> None:
        published.append(1)
        record[0] = 2

    sns.meta.events.register("after-call.sns.Publish", count_then_fail_the_next_update)
    # When the digest runs
    pipeline.run_digest()
    told = pipeline.notifications()
    # Then the marks were tried again, and the message was published once
    assert (ledger, record) == ([0], [0])
    assert len(published) == 1
    assert len(told) == 1
    assert plugs_told(told) == PLUGS


def test_aws_mode_when_dynamodb_throttles(aws: tuple[Any, Pipeline]) -> None:
    sim, pipeline = aws
    aws_cycle(pipeline)
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    dynamodb = pipeline.stack.client("dynamodb")
    reads = failing_calls(
        dynamodb, "BatchGetItem", "ProvisionedThroughputExceededException", times=2
    )
    writes = failing_calls(dynamodb, "PutItem", "ThrottlingException", times=2)
    told = aws_cycle(pipeline)
    assert (reads, writes) == ([0], [0])
    assert pipeline.dead_letters() == []
    assert plugs_told(told) == PLUGS


def test_aws_mode_with_a_poison_message(aws: tuple[Any, Pipeline]) -> None:
    sim, pipeline = aws
    aws_cycle(pipeline)
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    pipeline.send_raw('{"run_id": "x", "device_ids": ["../v1.0/token"]}')
    told = aws_cycle(pipeline)
    assert pipeline.dead_letters() == ['{"run_id": "x", "device_ids": ["../v1.0/token"]}']
    assert plugs_told(told) == PLUGS


def test_aws_mode_with_duplicated_deliveries(aws: tuple[Any, Pipeline]) -> None:
    sim, pipeline = aws
    aws_cycle(pipeline)
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    pipeline.schedule()
    # Every message delivered twice (SQS is at-least-once)
    bodies = pipeline.take_messages(pipeline.check_queue)
    for body in bodies + bodies:
        pipeline.send_raw(body)
    pipeline.run_checkers()
    records = pipeline.stream_records()
    pipeline.run_differ(records)
    pipeline.run_differ(records)  # and the stream redelivers too
    pipeline.run_digest()
    told = pipeline.notifications()
    assert plugs_told(told) == PLUGS
    assert len(told) == 1


class LambdaTimeout(BaseException):
    """What a Lambda timeout is to the code: the invocation ends mid-way, no answer."""


def test_aws_mode_when_the_checker_times_out_mid_batch(aws: tuple[Any, Pipeline]) -> None:
    sim, pipeline = aws
    aws_cycle(pipeline)
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    store = pipeline.checker.store
    writes = [0]
    original = store.put_items

    def put_then_die(states: Any) -> None:
        original(states)
        writes[0] += 1
        if writes[0] == 2:
            raise LambdaTimeout

    store.put_items = put_then_die  # type: ignore[method-assign]
    pipeline.visibility_timeout = 0  # the received batch is visible again at once
    # Something else of the container's that waits on its loop, and is none of the batch's
    bystander = pipeline.loop.create_task(asyncio.sleep(3600))
    pipeline.schedule()
    with pytest.raises(LambdaTimeout):
        pipeline.run_checkers()
    # The other records' checks, cut short, do not linger into the next invocation; what is
    # not the batch's is left alone
    assert pipeline.pending_tasks() == [bystander]
    store.put_items = original  # type: ignore[method-assign]
    # Lambda gives no partial answer on a timeout: the whole batch comes back, and is redone
    pipeline.run_checkers()
    pipeline.run_differ()
    pipeline.run_digest()
    told = pipeline.notifications()
    assert plugs_told(told) == PLUGS
    assert len(told) == 1


async def test_the_checker_refuses_to_run_inside_a_running_event_loop(
    aws: tuple[Any, Pipeline],
) -> None:
    # Given a running event loop (the checker's batch processor runs one of its own)
    _, pipeline = aws
    # When the checker is called from it
    with pytest.raises(RuntimeError, match="synchronous code"):
        pipeline.checker.handle({"Records": []})
    # Then it says so at once, and no batch was started on the running loop
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []


# ---------------------------------------------------------------------- notifiers, crashes


async def test_local_mode_when_a_notifier_fails_then_recovers(
    make_simulator: Callable[..., Any], tmp_path: Path
) -> None:
    sim = make_simulator(fleet=fleet())
    flaky, steady = Recorder("slack"), Recorder("email")
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        await local_cycle(sim, store, [flaky, steady])
        sim.cloud.publish_release(PLUG, 0, "1.1.0")
        flaky.failures_left = 1
        report = await local_cycle(sim, store, [flaky, steady])
        await local_cycle(sim, store, [flaky, steady])
    assert report.notifications["slack"].failed == 1
    assert flaky.plugs_told() == steady.plugs_told() == PLUGS


class Crash(BaseException):
    """The process dies."""


async def test_local_mode_after_a_crash_between_storing_and_notifying(
    make_simulator: Callable[..., Any], tmp_path: Path
) -> None:
    sim = make_simulator(fleet=fleet())
    recorder = Recorder()

    class DiesBeforeNotifying(Recorder):
        async def send(self, group: EventGroup) -> None:
            raise Crash

    with SqliteStore(tmp_path / "state.sqlite3") as store:
        await local_cycle(sim, store, [recorder])
        sim.cloud.publish_release(PLUG, 0, "1.1.0")
        with pytest.raises(Crash):
            await local_cycle(sim, store, [DiesBeforeNotifying("recorder")])
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        await local_cycle(sim, store, [recorder])
        await local_cycle(sim, store, [recorder])
    assert recorder.plugs_told() == PLUGS


def test_aws_mode_keeps_the_rate_limit_it_learned_for_the_next_containers(
    aws: tuple[Any, Pipeline],
) -> None:
    # Given a cloud that allows 10 requests a second, unannounced
    sim, pipeline = aws
    sim.cloud.set_rate_limit(10)
    # When a run meets the limit
    aws_cycle(pipeline)
    # Then the limit the checker learned is in the control table, under its share
    dynamodb = pipeline.stack.client("dynamodb")
    items = dynamodb.scan(TableName=pipeline.stack.table_name("ControlTable"))["Items"]
    rates = {i["pk"]["S"].rsplit("#", 1)[1]: float(i["rps"]["N"]) for i in items if "rps" in i}
    share = f"checker-of-{pipeline.checker.settings.checker_max_concurrency}"
    assert 5 <= rates[share] <= 12
    # And a new container starts just under it instead of slow-starting
    pipeline.checker.tuya.rates = None
    client = pipeline.checker.tuya.client()
    asyncio.run(client.aclose())
    assert client.limiter.rate == pytest.approx(
        min(rates[share] * 0.95, client.limiter.ceiling), rel=0.01
    )


# ---------------------------------------------------------------------- both modes, one story

Outcomes = dict[str, str]
Told = tuple[str, str, int]


class LocalStory:
    """Local mode: cycles of `run_cycle` on one SQLite state, told to a recorder."""

    def __init__(self, sim: Any, tmp_path: Path, **client: Any) -> None:
        self.sim, self.client = sim, client
        self.store = SqliteStore(tmp_path / "state.sqlite3")
        self.recorder = Recorder()

    def cycle(self) -> Outcomes:
        report = asyncio.run(local_cycle(self.sim, self.store, [self.recorder], **self.client))
        checked = {r.device_id for r in report.failed}
        outcomes = {r.device_id: r.outcome for r in report.failed}
        for state in self.store.load_all():
            if state.device_id not in checked:
                outcomes.setdefault(state.device_id, "checked")
        return outcomes

    def plugs_told(self) -> list[str]:
        return self.recorder.plugs_told()

    def messages(self) -> list[Told]:
        """Every message the subscriber got so far: (event, version, devices)."""
        return [(g.type.value, g.version, len(g.events)) for g in self.recorder.groups]


class AwsStory:
    """AWS mode: scheduler, checkers, differ and digest on moto; what the topic's subscriber
    got."""

    def __init__(self, sim: Any, stack: Any, **overrides: str) -> None:
        self.pipeline = Pipeline(
            stack,
            overrides={"RETRY_DELAY_S": "0", "TUYA_QPS": "200", "TUYA_TIMEOUT_S": "1", **overrides},
        )
        self.told: list[dict[str, Any]] = []

    def cycle(self) -> Outcomes:
        self.told += aws_cycle(self.pipeline)
        gave_up = {
            device_id
            for body in self.pipeline.dead_letters()
            for device_id in json.loads(body).get("device_ids", [])
        }
        items = self.pipeline.stack.client("dynamodb").scan(
            TableName=self.pipeline.stack.table_name("StateTable")
        )["Items"]
        outcomes: Outcomes = {}
        for item in items:
            if item["channel"]["N"] != "-1":
                continue
            device_id = item["device_id"]["S"]
            if device_id in gave_up:
                outcomes[device_id] = "not_checked"
            else:
                outcomes[device_id] = "device_error" if "last_error" in item else "checked"
        return outcomes

    def plugs_told(self) -> list[str]:
        # One message per run for the plugs' release, not one per stream batch
        runs = [
            e["MessageAttributes"]["run_id"]["Value"]
            for e in self.told
            if json.loads(e["Message"])["version"] == "1.1.0"
        ]
        assert len(runs) == len(set(runs)), runs
        return plugs_told(self.told)

    def messages(self) -> list[Told]:
        """Every message the topic's subscriber got so far: (event, version, devices)."""
        bodies = [json.loads(envelope["Message"]) for envelope in self.told]
        return [(body["type"], body["version"], len(body["devices"])) for body in bodies]


MODES = ("local", "aws")


@pytest.fixture
def story(
    request: pytest.FixtureRequest,
    make_simulator: Callable[..., Any],
    make_aws_stack: Callable[..., Any],
    tmp_path: Path,
) -> Callable[..., tuple[Any, LocalStory | AwsStory]]:
    """``story(fleet, attempts=N)``: a simulator and the mode's cycles against it."""

    def make(
        fleet_of: Fleet | None = None, *, attempts: int = 8
    ) -> tuple[Any, LocalStory | AwsStory]:
        sim = make_simulator(fleet=fleet_of or fleet())
        if request.param == "local":
            return sim, LocalStory(sim, tmp_path, attempts=attempts)
        stack = make_aws_stack(
            parameters={"TuyaEndpoint": sim.url, "DevicesPerMessage": 5, "DigestDelaySeconds": 0},
            tuya_secret={"access_id": sim.access_id, "access_secret": sim.access_secret},
        )
        return sim, AwsStory(sim, stack, TUYA_RETRY_ATTEMPTS=str(attempts))

    return make


@pytest.mark.parametrize("story", MODES, indirect=True)
@pytest.mark.parametrize("row", TUYA_ROWS, ids=lambda row: row.name)
def test_every_device_has_the_same_outcome_in_both_modes_under(
    row: Row, story: Callable[..., tuple[Any, LocalStory | AwsStory]]
) -> None:
    # Given a baseline cycle, then a release for the plugs
    sim, mode = story()
    mode.cycle()
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    # When a cycle runs under the fault, then one more with the fault cleared
    row.inject(sim)
    outcomes = mode.cycle()
    row.clear(sim)
    mode.cycle()
    # Then every device was checked, or answered its device error, in the faulty cycle
    expected = {
        device_id: "device_error" if device_id in row.fails else "checked"
        for device_id in PLUGS + SENSORS
    }
    assert outcomes == expected
    # And each plug's news reached the subscriber once: none missed, none twice
    assert mode.plugs_told() == PLUGS


def fleet_listing_an_invalid_id() -> Fleet:
    """The story's fleet, with an ID in Tuya's own listing that is no device ID ('..')."""
    odd = FleetDevice(
        device_id="..",
        name="odd",
        product_id=PLUG,
        product_name=PLUG,
        category="cz",
        channels=[FleetChannel(channel=0, current_version="1.0.0")],
    )
    return Fleet(devices=[*fleet().devices, odd])


class Warnings(logging.Handler):
    """The warnings the core cycle logs (the functions' logger does not propagate)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.parametrize("story", MODES, indirect=True)
@pytest.mark.parametrize(
    "scenario", ["a device failing transiently twice, then answering", "an invalid listed ID"]
)
def test_the_cycle_settles_devices_by_one_rule_in_both_modes(
    scenario: str, story: Callable[..., tuple[Any, LocalStory | AwsStory]]
) -> None:
    warnings = Warnings()
    logging.getLogger("fwwatch.cycle").addHandler(warnings)
    try:
        if scenario == "an invalid listed ID":
            # Given Tuya's listing holding ".." beside the fleet
            sim, mode = story(fleet_listing_an_invalid_id())
        else:
            # Given one try per call, and plug003's firmware failing on two calls in a row
            sim, mode = story(attempts=1)
            sim.cloud.faults.inject_http_status(503, count=2, path_contains="plug003/firmware")
        # When a cycle runs
        outcomes = mode.cycle()
    finally:
        logging.getLogger("fwwatch.cycle").removeHandler(warnings)
    # Then every device of the fleet is checked (plug003 on its third check), and ".." is
    # skipped with a warning that names it, never requested
    assert outcomes == dict.fromkeys(PLUGS + SENSORS, "checked")
    requested = sim.cloud.stats.snapshot()["by_api"]["GET /v2.0/cloud/thing/{device_id}/firmware"]
    if scenario == "an invalid listed ID":
        assert any("skipped a listed device" in line and "'..'" in line for line in warnings.lines)
        assert requested == len(PLUGS + SENSORS)
    else:
        assert requested == len(PLUGS + SENSORS) + 2


@pytest.mark.parametrize("story", MODES, indirect=True)
def test_every_transition_of_a_rollback_story_is_told_once_in_both_modes(
    story: Callable[..., tuple[Any, LocalStory | AwsStory]],
) -> None:
    # Given the plugs on 1.0.0
    sim, mode = story()
    mode.cycle()

    def everywhere(step: Callable[[str], object]) -> Callable[[], None]:
        return lambda: [step(plug) for plug in PLUGS] and None

    steps: list[tuple[Callable[[], object], Told]] = [
        (lambda: sim.cloud.publish_release(PLUG, 0, "1.1.0"), ("update_available", "1.1.0", 16)),
        (everywhere(lambda d: sim.cloud.mark_installed(d, 0)), ("update_installed", "1.1.0", 16)),
        (lambda: sim.cloud.publish_release(PLUG, 0, "1.2.0"), ("update_available", "1.2.0", 16)),
        (everywhere(lambda d: sim.cloud.mark_failed(d, 0)), ("update_failed", "1.2.0", 16)),
        (
            everywhere(lambda d: sim.cloud.roll_back(d, 0, "1.0.0")),
            ("update_installed", "1.0.0", 16),
        ),
    ]
    # When 1.1.0 is offered and installed, 1.2.0 offered and failed, all rolled back to 1.0.0,
    # and the same happens again, a cycle after each step
    told: list[list[Told]] = []
    for step, _ in [*steps, *steps[:4]]:
        before = len(mode.messages())
        step()
        mode.cycle()
        told.append(mode.messages()[before:])
    # Then every transition was told, once, in the cycle that saw it: the second offer and
    # install of 1.1.0 and the second offer and failure of 1.2.0 as well
    assert told == [[expected] for _, expected in [*steps, *steps[:4]]]
