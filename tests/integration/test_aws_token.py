"""Two checker containers share one Tuya token through DynamoDB (moto) without a 1010 storm."""

from __future__ import annotations

import asyncio
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
        yield client, "control"


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
