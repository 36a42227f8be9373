"""Two checker containers share one Tuya token through DynamoDB (moto) without a 1010 storm."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fwwatch.aws.token_dynamodb import DynamoTokenStore
from fwwatch.check import check_devices
from fwwatch.simulator import generate_fleet
from fwwatch.tuya import RetryPolicy, TuyaClient, TuyaSettings

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
