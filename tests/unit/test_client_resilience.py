"""A bad moment never costs the fleet: shared grants, retry budgets, outages, churn, 1106.

The client against a scripted cloud in-process (httpx's MockTransport): no socket opened.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import logging
from typing import Any

import httpx
import pytest

from fwwatch.tuya import (
    RetryPolicy,
    TuyaClient,
    TuyaFatalError,
    TuyaSettings,
    TuyaTransientError,
)
from fwwatch.tuya.token_keeper import TokenKeeper
from fwwatch.tuya.transport import AnswerTooLargeError, read_bounded
from tests.unit.scripted_cloud import SECRET, ScriptedCloud, envelope, make_client

FIRMWARE = [{"type": 0, "current_version": "1.0.0", "version": "1.1.0", "upgrade_status": 1}]
FAST = RetryPolicy(attempts=4, budget_s=30, base_s=0.001, cap_s=0.01)


class FailingGrants(ScriptedCloud):
    """A cloud whose token grant answers ``grant`` the first ``times`` times (forever: -1)."""

    def __init__(self, grant: httpx.Response | dict[str, Any], times: int = -1) -> None:
        super().__init__(envelope(FIRMWARE))
        self.grant = grant
        self.times = times
        self.grant_requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1.0/token":
            self.grant_requests += 1
            if self.times < 0 or self.grant_requests <= self.times:
                answer = self.grant
                if isinstance(answer, httpx.Response):
                    return answer
                return httpx.Response(200, json=answer)
        return super().__call__(request)


async def check_all(tuya: TuyaClient, count: int) -> list[BaseException | Any]:
    return await asyncio.gather(
        *(tuya.get_firmware(f"dev{i}") for i in range(count)), return_exceptions=True
    )


async def test_calls_waiting_for_a_failing_grant_share_one_attempt_per_step() -> None:
    # Given a token grant that keeps failing, and 50 calls at once that all need a token
    cloud = FailingGrants(httpx.Response(503))
    # (steps of 50 ms: longer than the calls take to reach the token, even on a busy machine)
    steady = RetryPolicy(attempts=4, budget_s=30, base_s=0.05, cap_s=0.05)
    async with make_client(cloud, retry=steady) as tuya:
        outcomes = await check_all(tuya, 50)
    # Then each call fails as transient, and the grant was tried once per step, not per call
    # (that would be 200 grants)
    assert all(isinstance(o, TuyaTransientError) for o in outcomes)
    # (a call that reaches the token after a step failed may have steps of its own)
    assert cloud.grant_requests <= 2 * steady.attempts
    assert "no access token" in str(outcomes[0])


async def test_a_grant_that_recovers_serves_every_waiting_call() -> None:
    cloud = FailingGrants(httpx.Response(502), times=2)
    async with make_client(cloud, retry=FAST) as tuya:
        outcomes = await check_all(tuya, 30)
    assert all(not isinstance(o, BaseException) for o in outcomes)
    assert cloud.grant_requests == 3


async def test_once_the_cloud_is_down_for_a_whole_budget_calls_fail_at_once() -> None:
    # Given a cloud that answers nothing but 503, and many devices, checked 16 at a time
    cloud = ScriptedCloud(httpx.Response(503))
    async with make_client(cloud, retry=FAST) as tuya:
        semaphore = asyncio.Semaphore(16)

        async def one(i: int) -> BaseException | None:
            async with semaphore:
                try:
                    await tuya.get_firmware(f"dev{i}")
                except TuyaTransientError as exc:
                    return exc
            return None

        outcomes = await asyncio.gather(*(one(i) for i in range(2000)))
        requests = tuya.stats.requests
    # Then every device is reported not checked, and the cloud was not asked 2,000 x 4 times:
    # after the first calls spent their budget, the rest failed without a request
    assert all(isinstance(o, TuyaTransientError) for o in outcomes)
    assert requests < 100
    assert "the cloud has been failing" in str(outcomes[-1])


async def test_a_probe_finds_the_cloud_back_and_calls_resume() -> None:
    # Given an outage long enough to open the breaker
    answers: list[Any] = [httpx.Response(503)] * 8 + [envelope(FIRMWARE)]
    cloud = ScriptedCloud(*answers)
    probe = RetryPolicy(attempts=2, budget_s=30, base_s=0.001, cap_s=0.01)
    async with make_client(cloud, retry=probe) as tuya:
        tuya._breaker._probe_every_s = 0.05  # probe soon, for the test
        failed = [await _attempt(tuya, f"d{i}") for i in range(4)]
        assert tuya._breaker.is_open
        assert any("not sent" in str(f) for f in failed)  # some failed without a request
        await asyncio.sleep(0.1)
        # When the cloud answers again, the probe goes through and closes the breaker
        probes = 0
        for probes in range(1, 20):  # noqa: B007 - counted for the assertion
            if await _attempt(tuya, "probe") is None:
                break
            await asyncio.sleep(0.06)
        after = await _attempt(tuya, "after")
    assert 1 <= probes < 19
    assert all(isinstance(f, TuyaTransientError) for f in failed)
    assert after is None


async def _attempt(tuya: TuyaClient, device_id: str) -> BaseException | None:
    try:
        await tuya.get_firmware(device_id)
    except TuyaTransientError as exc:
        return exc
    return None


async def test_a_call_spends_its_time_budget_then_gives_up() -> None:
    cloud = ScriptedCloud(httpx.Response(503))
    slow = RetryPolicy(attempts=50, budget_s=0.3, base_s=0.1, cap_s=0.1)
    async with make_client(cloud, retry=slow, rng=lambda low, high: high) as tuya:
        with pytest.raises(TuyaTransientError, match="gave up after 4 attempts"):
            await tuya.get_firmware("dev1")
    # at 0, 0.1 and 0.2 s, then the last wait shortened to fit the budget (0.275 s)
    assert len(cloud.business) == 4


@pytest.mark.parametrize("code", [1106, 1100, 1104])
async def test_a_grant_refused_for_permission_is_one_fatal_error(code: int) -> None:
    # Given a project whose token grant is refused with a permission-family code
    cloud = FailingGrants(envelope(code=code, msg="permission deny"))
    async with make_client(cloud) as tuya:
        outcomes = await check_all(tuya, 10)
    # Then every call ends with the same fatal error, after one grant and no firmware call
    assert all(isinstance(o, TuyaFatalError) for o in outcomes)
    assert cloud.grant_requests == 1
    assert cloud.business == []
    assert "refuses this project a token" in str(outcomes[0])


async def test_permission_denied_on_the_listing_is_fatal_not_a_device_error() -> None:
    cloud = ScriptedCloud(envelope(code=1106, msg="permission deny"))
    async with make_client(cloud) as tuya:
        with pytest.raises(TuyaFatalError, match="lacks this API's permission"):
            [device async for device in tuya.list_devices()]


async def test_throttling_on_the_grant_is_retried() -> None:
    cloud = FailingGrants(envelope(code=1199, msg="your requests are too frequent"), times=2)
    async with make_client(cloud, retry=FAST) as tuya:
        firmware = await tuya.get_firmware("dev1")
    assert firmware.channels
    assert cloud.grant_requests == 3


async def test_fresh_tokens_rejected_again_and_again_slow_grants_and_warn_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a cloud where another process keeps taking the token: every token is rejected
    # on its first use, then accepted after the fifth grant
    class Churn(ScriptedCloud):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.startswith("/v2.0/") and self.grants <= 5:
                self.business.append(request)
                return httpx.Response(200, json=envelope(code=1010, msg="token invalid"))
            return super().__call__(request)

    cloud = Churn(envelope(FIRMWARE))
    policy = RetryPolicy(attempts=10, budget_s=30, base_s=0.05, cap_s=0.2)
    caplog.set_level(logging.WARNING, logger="fwwatch.tuya")
    grant_times: list[float] = []
    real_grant = TokenKeeper._grant

    async def timed_grant(self: TokenKeeper) -> Any:
        grant_times.append(asyncio.get_running_loop().time())
        return await real_grant(self)

    async with make_client(cloud, retry=policy, rng=lambda low, high: high) as tuya:
        tuya._keeper._grant = timed_grant.__get__(tuya._keeper)  # type: ignore[method-assign]
        outcomes = await check_all(tuya, 8)
    # Then every device is checked in the end, one grant per rejection round, one warning
    assert all(not isinstance(o, BaseException) for o in outcomes)
    assert cloud.grants == 6
    # and the grants were spaced more and more (0.05, 0.1, 0.2, 0.2 s after the first two)
    gaps = [later - earlier for earlier, later in itertools.pairwise(grant_times)]
    assert all(round(g, 2) >= want for g, want in zip(gaps[1:], (0.05, 0.1, 0.2, 0.2), strict=True))
    warnings = [r.getMessage() for r in caplog.records if "fresh access tokens" in r.getMessage()]
    assert len(warnings) == 1
    assert "same Access ID 'unit-id'" in warnings[0]


async def test_an_answer_that_never_ends_is_cut_at_the_whole_answer_deadline() -> None:
    # Given an answer that keeps dribbling in, each read well within the read timeout
    class Drip(httpx.AsyncByteStream):
        async def __aiter__(self) -> Any:
            while True:
                await asyncio.sleep(0.01)
                yield b" "

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1.0/token":
            return httpx.Response(200, json=envelope(ScriptedCloud._token("at-1")))
        return httpx.Response(200, stream=Drip())

    settings = TuyaSettings(
        access_id="unit-id",
        access_secret=SECRET,
        endpoint="https://openapi.tuyaeu.com",
        timeout_s=0.2,
    )
    one_try = RetryPolicy(attempts=1)
    async with TuyaClient(settings, transport=httpx.MockTransport(handler), retry=one_try) as t:
        with pytest.raises(TuyaTransientError, match=r"no whole answer within 0.2 s"):
            await t.get_firmware("dev1")


async def test_a_decompression_bomb_is_refused_past_the_cap() -> None:
    # Given a gzip answer of about 256 KiB that inflates to 256 MiB, streamed as a server would
    bomb = _bomb(2**28)
    assert len(bomb) < 2**19
    response = httpx.Response(
        200,
        headers={"Content-Encoding": "gzip"},
        stream=httpx.ByteStream(bomb),
        request=httpx.Request("GET", "https://x/y"),
    )
    # When it is read with a cap of 8 MiB, it is refused without inflating the rest
    with pytest.raises(AnswerTooLargeError):
        await read_bounded(response, 8 * 2**20)


async def test_a_compressed_answer_under_the_cap_is_decoded() -> None:
    body = b'{"success": true, "result": []}'
    response = httpx.Response(
        200,
        headers={"Content-Encoding": "gzip"},
        stream=httpx.ByteStream(gzip.compress(body)),
        request=httpx.Request("GET", "https://x/y"),
    )
    assert await read_bounded(response, 1024) == body


def _bomb(size: int) -> bytes:
    from fwwatch.simulator.faults import gzip_bomb

    return gzip_bomb(size)


async def test_a_token_renewed_ahead_of_expiry_is_still_used_when_renewing_fails() -> None:
    # Given a token that expires in two minutes (inside the refresh margin) and token
    # endpoints that answer 503
    now = [1_000_000.0]
    cloud = FailingGrants(envelope(FIRMWARE), times=1)
    async with make_client(cloud, retry=FAST, clock=lambda: now[0]) as tuya:
        await tuya.get_firmware("dev1")
        cloud.grant = httpx.Response(503)
        cloud.times = -1

        now[0] += 7200 - 120
        # When a call finds it due for renewal and the renewal fails
        firmware = await tuya.get_firmware("dev2")
    # Then the call goes on with the token it has
    assert firmware.channels


@pytest.mark.parametrize("token", ["t\u00f6ken", "a b", "x/../y", "", "z" * 600], ids=repr)
async def test_an_unusable_token_in_a_grant_is_an_unreadable_answer(token: str) -> None:
    cloud = FailingGrants(envelope({"access_token": token, "expire_time": 7200}))
    async with make_client(cloud, retry=FAST) as tuya:
        with pytest.raises(TuyaTransientError, match="usable access_token"):
            await tuya.get_firmware("dev1")
