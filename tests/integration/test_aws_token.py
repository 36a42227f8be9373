"""Two checker containers share one Tuya token through DynamoDB (moto) without a 1010 storm."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fwwatch.aws.dynamo import from_dynamo
from fwwatch.aws.token_dynamodb import DynamoTokenStore
from fwwatch.check import check_devices
from fwwatch.simulator import generate_fleet
from fwwatch.tuya import RetryPolicy, TuyaClient, TuyaSettings
from fwwatch.tuya.errors import TuyaError, TuyaTransientError
from fwwatch.tuya.tokens import Token
from tests.integration.fakes import calls_applied_twice

pytestmark = pytest.mark.integration


@pytest.fixture
def control_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-central-1")
        client.create_table(
            TableName="control",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield AtomicWrites(client), "control"


class AtomicWrites:
    """The DynamoDB client with one call at a time, as DynamoDB applies a conditional write.

    The stores call DynamoDB from worker threads; moto's in-process backend does not make a
    condition check and its update one step, so two threads could both take the lease.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    @property
    def raw(self) -> Any:
        """The client itself, one call at a time no longer (for botocore's hooks)."""
        return self._client

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self._client, name)
        if not callable(operation):
            return operation

        def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return operation(*args, **kwargs)

        return one_at_a_time


def container(sim: Any, table: tuple[Any, str]) -> TuyaClient:
    """What one checker container holds: its own client, the shared token store."""
    settings = TuyaSettings(
        access_id=sim.access_id, access_secret=sim.access_secret, endpoint=sim.url, qps=500
    )
    return TuyaClient(
        settings, token_store=DynamoTokenStore(*table, poll_s=0.05), retry=RetryPolicy(base_s=0.01)
    )


async def test_two_containers_share_one_grant(
    make_simulator: Callable[..., Any], control_table: tuple[Any, str]
) -> None:
    # Given a cloud that revokes every older token on a new grant, and two containers
    fleet = generate_fleet(120, seed=9, offline_ratio=0)
    sim = make_simulator(fleet=fleet, revoke_on_grant=True)
    sim.cloud.faults.set_latency(0.01)
    ids = [device.device_id for device in fleet.devices]
    # When both check half the fleet at the same time
    async with container(sim, control_table) as one, container(sim, control_table) as two:
        results = await asyncio.gather(
            check_devices(one, ids[:60], concurrency=8), check_devices(two, ids[60:], concurrency=8)
        )
    # Then every device is checked with a single grant, and no token was ever rejected
    stats = sim.cloud.stats.snapshot()
    assert all(result.ok for batch in results for result in batch)
    assert stats["grants"] == 1
    assert stats["by_code"].get("1010", 0) == 0


async def test_a_revoked_shared_token_is_renewed_once_for_both(
    make_simulator: Callable[..., Any], control_table: tuple[Any, str]
) -> None:
    fleet = generate_fleet(120, seed=10, offline_ratio=0)
    sim = make_simulator(fleet=fleet, revoke_on_grant=True)
    sim.cloud.faults.set_latency(0.01)
    ids = [device.device_id for device in fleet.devices]
    async with container(sim, control_table) as one, container(sim, control_table) as two:
        await one.get_firmware(ids[0])
        await two.get_firmware(ids[1])
        sim.cloud.revoke_tokens_after(30)  # the token dies while both are busy
        results = await asyncio.gather(
            check_devices(one, ids[:60], concurrency=8), check_devices(two, ids[60:], concurrency=8)
        )
    stats = sim.cloud.stats.snapshot()
    assert all(result.ok for batch in results for result in batch)
    assert stats["grants"] <= 3
    assert stats["by_code"].get("1010", 0) <= 16  # only the calls in flight when it died


async def test_a_failing_grant_is_tried_once_per_step_by_all_containers(
    make_simulator: Callable[..., Any], control_table: tuple[Any, str]
) -> None:
    # Given a token grant that answers 503 for longer than any call's budget, and three
    # containers that each check 40 devices at once
    fleet = generate_fleet(120, seed=11, offline_ratio=0)
    sim = make_simulator(fleet=fleet)
    sim.cloud.faults.inject_http_status(503, count=None, path_contains="/v1.0/token", for_s=60)
    ids = [device.device_id for device in fleet.devices]
    policy = RetryPolicy(attempts=4, budget_s=30, base_s=0.01, cap_s=0.05)
    settings = TuyaSettings(
        access_id=sim.access_id, access_secret=sim.access_secret, endpoint=sim.url, qps=500
    )

    def make() -> TuyaClient:
        store = DynamoTokenStore(*control_table, poll_s=0.05)
        return TuyaClient(settings, token_store=store, retry=policy)

    # When they all need a token at the same moment
    async with make() as one, make() as two, make() as three:
        results = await asyncio.gather(
            *(
                check_devices(client, ids[start : start + 40], concurrency=16)
                for client, start in ((one, 0), (two, 40), (three, 80))
            )
        )
    # Then every device is reported not checked with the grant's cause, and the grant was
    # asked for a few times in all: one attempt per shared step, not one per call or container
    outcomes = [result for batch in results for result in batch]
    assert all(not r.ok and not r.answered for r in outcomes)
    assert all("no access token" in str(r.error) for r in outcomes)
    grants = sim.cloud.stats.snapshot()["by_api"]["GET /v1.0/token"]
    assert grants <= policy.attempts + 1
    # And the failure is written where the next container sees it
    item = control_table[0].get_item(TableName=control_table[1], Key={"pk": {"S": "tuya-token"}})
    assert "HTTP 503" in item["Item"]["renew_error"]["S"]


def test_the_learned_rate_limit_is_kept_in_the_control_table(
    control_table: tuple[Any, str],
) -> None:
    from fwwatch.aws.rate_dynamodb import DynamoRateMemory

    def memory() -> DynamoRateMemory:
        return DynamoRateMemory(
            *control_table, endpoint="https://openapi.tuyaeu.com", access_id="id", share="checker"
        )

    # Given nothing learned yet
    first = memory()
    assert first.load() is None
    # When a run learns 19.5/s, it is written once; a change under 2 % is not written again
    assert first.save(19.5) is True
    assert first.save(19.6) is False
    # Then a new container starts from it
    assert memory().load() == 19.5
    items = control_table[0].scan(TableName=control_table[1])["Items"]
    assert [item["pk"]["S"].split("#")[0] for item in items] == ["rate"]
    assert "id" not in items[0]["pk"]["S"].split("#")[1]  # the Access ID is hashed


class CountingCalls:
    """The DynamoDB client, with the name of every operation called on it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self._client, name)


async def test_a_new_container_reads_the_token_and_its_learned_rate_in_one_request(
    make_simulator: Callable[..., Any], control_table: tuple[Any, str]
) -> None:
    from fwwatch.aws.settings import TuyaAccessSettings
    from fwwatch.aws.tuya_access import TuyaAccess

    sim = make_simulator(fleet=generate_fleet(3, seed=12, offline_ratio=0))
    settings = TuyaAccessSettings(
        tuya_endpoint=sim.url, tuya_secret_name="fwwatch/tuya", control_table=control_table[1]
    )
    secret = {"access_id": sim.access_id, "access_secret": sim.access_secret}

    def access(client: Any) -> TuyaAccess:
        return TuyaAccess(
            settings, qps=50, dynamodb=client, rate_share="checker", read_secret=lambda _: secret
        )

    device_id = sim.cloud.fleet.devices[0].device_id
    # Given a container that took the shared token and learned a rate
    first = access(control_table[0])
    async with first.client() as tuya:
        await tuya.get_firmware(device_id)
    assert first.rates is not None
    first.rates.save(42.0)
    # When a new container makes its client and checks a device
    counting = CountingCalls(control_table[0])
    second = access(counting)
    async with second.client() as tuya:
        await tuya.get_firmware(device_id)
    # Then it read the token and the rate in one request, started at that rate, and took
    # no grant of its own
    assert counting.calls == ["batch_get_item"]
    assert tuya.limiter.rate == pytest.approx(min(42.0 * 0.95, tuya.limiter.ceiling), rel=0.01)
    assert sim.cloud.stats.snapshot()["grants"] == 1


# ---------------------------------------------------------------- one renewal's requests


class DynamoCalls:
    """The DynamoDB operations a client sends, noted by botocore's ``before-call`` hook."""

    def __init__(self, client: Any) -> None:
        self.names: list[str] = []
        client.meta.events.register("before-call.dynamodb.*", self._note)

    def _note(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)


class Clock:
    """Epoch seconds that move only when a test moves them (or by ``step`` at each look)."""

    def __init__(self, now: float = 1_700_000_000.0, step: float = 0.0) -> None:
        self.now = now
        self.step = step

    def __call__(self) -> float:
        now = self.now
        self.now += self.step
        return now


class FakeRenewal:
    """A token renewal that notes the token it was given and hands out a new one each time."""

    def __init__(self, name: str, clock: Clock, fails_with: TuyaError | None = None) -> None:
        self.given: list[Token | None] = []
        self._name = name
        self._clock = clock
        self._fails_with = fails_with

    async def __call__(self, stored: Token | None) -> Token:
        self.given.append(stored)
        if self._fails_with is not None:
            raise self._fails_with
        return Token(
            access_token=f"access-{self._name}-{len(self.given)}",
            refresh_token=f"refresh-{self._name}-{len(self.given)}",
            expires_at=self._clock() + 7200,
        )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_store(control_table: tuple[Any, str], clock: Clock) -> Callable[..., DynamoTokenStore]:
    def make(**kwargs: Any) -> DynamoTokenStore:
        kwargs.setdefault("poll_s", 0.01)
        return DynamoTokenStore(*control_table, clock=clock, **kwargs)

    return make


def stored_item(table: tuple[Any, str]) -> dict[str, Any]:
    client, name = table
    return from_dynamo(client.get_item(TableName=name, Key={"pk": {"S": "tuya-token"}})["Item"])


async def yesterdays_token(make_store: Callable[..., DynamoTokenStore], clock: Clock) -> Token:
    """The item as a run of the day before left it: a token long expired."""
    token = await make_store().replace(None, FakeRenewal("yesterday", clock))
    clock.now += 86_000
    return token


async def two_containers_with_yesterdays_token(
    make_store: Callable[..., DynamoTokenStore], clock: Clock
) -> tuple[DynamoTokenStore, DynamoTokenStore, Token]:
    """Two containers that each read yesterday's token: the stores, and the stale token."""
    await yesterdays_token(make_store, clock)
    first, second = make_store(), make_store()
    stale = await first.load()
    assert stale is not None
    assert stale == await second.load()
    return first, second, stale


async def test_renewing_a_stale_token_is_two_updates_and_no_read(
    control_table: tuple[Any, str], make_store: Callable[..., DynamoTokenStore], clock: Clock
) -> None:
    # Given a container that read yesterday's token, long expired
    old = await yesterdays_token(make_store, clock)
    store = make_store()
    stale = await store.load()
    assert stale == old
    calls = DynamoCalls(control_table[0])
    renewal = FakeRenewal("today", clock)
    # When it renews the token, nobody else renewing
    token = await store.replace(stale, renewal)
    # Then the lease and the new token took one UpdateItem each, with no read in between
    assert calls.names == ["UpdateItem", "UpdateItem"]
    assert store.reads == 1
    assert store.renewals == 1
    # And the renewal refreshed the stored token, with the stored refresh token
    [given] = renewal.given
    assert given is not None
    assert (given.access_token, given.refresh_token) == (old.access_token, old.refresh_token)
    # And the item holds the new token, its lease released
    item = stored_item(control_table)
    assert item["access_token"] == token.access_token == "access-today-1"
    assert "lease_owner" not in item
    assert "lease_until" not in item
    assert await store.load() == token


async def test_the_first_token_of_an_empty_table_is_two_updates_and_no_read(
    control_table: tuple[Any, str], make_store: Callable[..., DynamoTokenStore], clock: Clock
) -> None:
    # Given a table without a token item, and a container that never read it
    store = make_store()
    calls = DynamoCalls(control_table[0])
    renewal = FakeRenewal("first", clock)
    # When it needs a token
    token = await store.replace(None, renewal)
    # Then it was granted one and stored it in two requests
    assert calls.names == ["UpdateItem", "UpdateItem"]
    assert renewal.given == [None]
    assert stored_item(control_table)["access_token"] == token.access_token


async def test_a_renewal_by_another_container_since_the_read_is_used_without_a_grant(
    control_table: tuple[Any, str], make_store: Callable[..., DynamoTokenStore], clock: Clock
) -> None:
    # Given two containers that read yesterday's token, and one of them renewed it since
    late, early, stale = await two_containers_with_yesterdays_token(make_store, clock)
    renewed = await early.replace(stale, FakeRenewal("early", clock))
    calls = DynamoCalls(control_table[0])
    renewal = FakeRenewal("late", clock)
    # When the other one renews the token it read
    token = await late.replace(stale, renewal)
    # Then its lease is refused, it reads the item and uses the token stored there
    assert token == renewed
    assert renewal.given == []
    assert calls.names == ["UpdateItem", "GetItem"]
    assert late.renewals == 0
    assert stored_item(control_table)["access_token"] == renewed.access_token


async def test_a_pending_shared_failure_is_raised_without_a_lease_or_a_grant(
    control_table: tuple[Any, str], make_store: Callable[..., DynamoTokenStore], clock: Clock
) -> None:
    # Given two containers that read yesterday's token, and a renewal by one that failed
    late, early, stale = await two_containers_with_yesterdays_token(make_store, clock)
    refused = TuyaTransientError("HTTP 503 from the token grant")
    with pytest.raises(TuyaTransientError, match="HTTP 503"):
        await early.replace(stale, FakeRenewal("early", clock, fails_with=refused))
    calls = DynamoCalls(control_table[0])
    renewal = FakeRenewal("late", clock)
    # When the other one renews before the shared backoff is over
    with pytest.raises(TuyaTransientError, match="HTTP 503") as raised:
        await late.replace(stale, renewal)
    # Then it gets the same failure, with the time of the next try, and asks for no token
    assert raised.value.retry_after_s is not None
    assert raised.value.retry_after_s > 0
    assert renewal.given == []
    assert calls.names == ["UpdateItem", "GetItem"]
    assert "lease_owner" not in stored_item(control_table)


async def test_a_failure_after_another_containers_failure_grows_the_shared_backoff(
    control_table: tuple[Any, str], make_store: Callable[..., DynamoTokenStore], clock: Clock
) -> None:
    # Given a container that read yesterday's token before another one's renewal failed
    late, early, stale = await two_containers_with_yesterdays_token(make_store, clock)
    refused = TuyaTransientError("HTTP 503 from the token grant")
    with pytest.raises(TuyaTransientError):
        await early.replace(stale, FakeRenewal("early", clock, fails_with=refused))
    assert stored_item(control_table)["renew_failures"] == 1
    # When, the backoff over, its own renewal fails too
    clock.now += 60
    renewal = FakeRenewal("late", clock, fails_with=refused)
    with pytest.raises(TuyaTransientError):
        await late.replace(stale, renewal)
    # Then it tried once, and the item counts two failures in a row (the next step is longer)
    assert len(renewal.given) == 1
    item = stored_item(control_table)
    assert item["renew_failures"] == 2
    assert "lease_owner" not in item


async def test_a_lease_held_by_another_container_is_waited_for_and_its_token_used(
    control_table: tuple[Any, str], make_store: Callable[..., DynamoTokenStore], clock: Clock
) -> None:
    # Given two containers that read yesterday's token
    holder, waiter, stale = await two_containers_with_yesterdays_token(make_store, clock)
    waiter_renewal = FakeRenewal("waiter", clock)
    holder_renewal = FakeRenewal("holder", clock)
    waiting: list[asyncio.Task[Token]] = []

    async def renew_once_the_other_waits(stored: Token | None) -> Token:
        # While this one holds the lease, the other renews and is refused it
        waiting.append(asyncio.create_task(waiter.replace(stale, waiter_renewal)))
        for _ in range(500):
            if waiter.reads > 1:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the waiting container never read the item")
        return await holder_renewal(stored)

    # When one renews the token while the other needs it too
    renewed = await holder.replace(stale, renew_once_the_other_waits)
    # Then the other waits for the lease's holder and uses its token: one renewal in all
    assert await waiting[0] == renewed
    assert waiter_renewal.given == []
    assert len(holder_renewal.given) == 1
    assert waiter.renewals == 0


async def test_a_lease_held_past_the_wait_ends_in_a_transient_error(
    control_table: tuple[Any, str], make_store: Callable[..., DynamoTokenStore], clock: Clock
) -> None:
    # Given yesterday's token, leased by a container that is still renewing it
    await yesterdays_token(make_store, clock)
    client, table = control_table
    client.update_item(
        TableName=table,
        Key={"pk": {"S": "tuya-token"}},
        UpdateExpression="SET lease_owner = :other, lease_until = :until",
        ExpressionAttributeValues={
            ":other": {"S": "another-container"},
            ":until": {"N": str(int(clock.now) + 60)},
        },
    )
    clock.step = 0.001
    store = make_store(wait_s=0)
    stale = await store.load()
    renewal = FakeRenewal("impatient", clock)
    # When a container needs a new token and the lease outlasts its wait
    with pytest.raises(TuyaTransientError, match="for another container to renew the token"):
        await store.replace(stale, renewal)
    # Then it asked for no token, and the other's lease stands
    assert renewal.given == []
    assert stored_item(control_table)["lease_owner"] == "another-container"


async def test_a_lease_taken_and_sent_again_after_its_answer_was_lost_is_the_renewers(
    control_table: tuple[Any, str], make_store: Callable[..., DynamoTokenStore], clock: Clock
) -> None:
    # Given a container that read yesterday's token
    await yesterdays_token(make_store, clock)
    clock.step = 0.001
    store = make_store(wait_s=1)
    stale = await store.load()
    # And its lease's UpdateItem applied, its answer lost and sent again by botocore (the
    # copy is refused: the item holds a live lease, this container's own)
    repeated = calls_applied_twice(
        control_table[0].raw,
        "UpdateItem",
        lambda params: "SET lease_owner = :me, lease_until" in params["UpdateExpression"],
    )
    renewal = FakeRenewal("today", clock)
    # When it renews the token
    token = await store.replace(stale, renewal)
    # Then it renewed under its own lease instead of waiting it out: one grant, stored, and
    # the lease released
    assert repeated == [0]
    assert len(renewal.given) == 1
    item = stored_item(control_table)
    assert item["access_token"] == token.access_token == "access-today-1"
    assert "lease_owner" not in item


async def test_a_lease_lost_during_the_renewal_ends_with_the_next_holders_token(
    control_table: tuple[Any, str], make_store: Callable[..., DynamoTokenStore], clock: Clock
) -> None:
    # Given two containers that read yesterday's token
    slow, quick, stale = await two_containers_with_yesterdays_token(make_store, clock)
    quick_renewal = FakeRenewal("quick", clock)

    async def renew_past_the_lease(stored: Token | None) -> Token:
        # So slow that the lease runs out and the other container renews meanwhile
        clock.now += 120
        await quick.replace(stale, quick_renewal)
        return await FakeRenewal("slow", clock)(stored)

    # When the slow one comes back with its token
    token = await slow.replace(stale, renew_past_the_lease)
    # Then its write is refused and it uses the token the other stored
    assert token.access_token == "access-quick-1"
    item = stored_item(control_table)
    assert item["access_token"] == "access-quick-1"
    assert "lease_owner" not in item


async def test_a_lease_lost_to_a_renewal_still_under_way_keeps_the_new_token_not_the_stale(
    control_table: tuple[Any, str], make_store: Callable[..., DynamoTokenStore], clock: Clock
) -> None:
    # Given two containers that read yesterday's token
    slow, quick, stale = await two_containers_with_yesterdays_token(make_store, clock)
    quick_holds_the_lease, quick_may_finish = asyncio.Event(), asyncio.Event()

    async def quick_renewal(stored: Token | None) -> Token:
        quick_holds_the_lease.set()
        await quick_may_finish.wait()
        return await FakeRenewal("quick", clock)(stored)

    async def renew_past_the_lease(stored: Token | None) -> Token:
        # So slow that the lease runs out, and the other container takes it and is still
        # renewing when this one comes back (the item still holds the stale token)
        clock.now += 120
        quick_task.append(asyncio.create_task(quick.replace(stale, quick_renewal)))
        await quick_holds_the_lease.wait()
        return await FakeRenewal("slow", clock)(stored)

    quick_task: list[asyncio.Task[Token]] = []
    # When the slow one comes back with its token, its write refused
    token = await slow.replace(stale, renew_past_the_lease)
    # Then it keeps the token it was given, not the stale one it knows was rejected
    assert token.access_token == "access-slow-1"
    assert stored_item(control_table)["access_token"] == stale.access_token
    # And the other container's renewal, once done, is what the item holds
    quick_may_finish.set()
    assert (await quick_task[0]).access_token == "access-quick-1"
    assert stored_item(control_table)["access_token"] == "access-quick-1"


async def test_a_token_the_table_expired_is_replaced_by_a_grant(
    control_table: tuple[Any, str], make_store: Callable[..., DynamoTokenStore], clock: Clock
) -> None:
    # Given a container that holds a token whose item the table's TTL has since removed
    await yesterdays_token(make_store, clock)
    store = make_store()
    stale = await store.load()
    client, table = control_table
    client.delete_item(TableName=table, Key={"pk": {"S": "tuya-token"}})
    calls = DynamoCalls(client)
    renewal = FakeRenewal("today", clock)
    # When it renews the token
    token = await store.replace(stale, renewal)
    # Then it learns the item is empty, takes the lease for a grant at once, and stores it
    assert renewal.given == [None]
    assert calls.names == ["UpdateItem", "GetItem", "UpdateItem", "UpdateItem"]
    assert stored_item(control_table)["access_token"] == token.access_token


async def test_a_daily_run_refreshes_the_expired_shared_token_in_two_requests(
    make_simulator: Callable[..., Any], control_table: tuple[Any, str]
) -> None:
    from fwwatch.aws.settings import TuyaAccessSettings
    from fwwatch.aws.tuya_access import TuyaAccess

    sim = make_simulator(fleet=generate_fleet(3, seed=13, offline_ratio=0))
    settings = TuyaAccessSettings(
        tuya_endpoint=sim.url, tuya_secret_name="fwwatch/tuya", control_table=control_table[1]
    )
    secret = {"access_id": sim.access_id, "access_secret": sim.access_secret}

    def access() -> TuyaAccess:
        return TuyaAccess(
            settings,
            qps=50,
            dynamodb=control_table[0],
            rate_share="checker",
            read_secret=lambda _: secret,
        )

    device_id = sim.cloud.fleet.devices[0].device_id
    # Given yesterday's run's token, stored with an expiry long past
    async with access().client() as tuya:
        await tuya.get_firmware(device_id)
    client, table = control_table
    client.update_item(
        TableName=table,
        Key={"pk": {"S": "tuya-token"}},
        UpdateExpression="SET token_expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    calls = DynamoCalls(client)
    # When today's run's container checks a device
    async with access().client() as tuya:
        await tuya.get_firmware(device_id)
    # Then it read the item once with the rate, then leased and wrote the token: one refresh
    # with the stored refresh token, no new grant
    assert calls.names == ["BatchGetItem", "UpdateItem", "UpdateItem"]
    stats = sim.cloud.stats.snapshot()
    assert (stats["grants"], stats["refreshes"]) == (1, 1)
