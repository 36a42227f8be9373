"""The table of Tuya codes: every entry well formed, and the client doing what each one says."""

from __future__ import annotations

import pytest

from fwwatch.tuya import TuyaApiError, TuyaDeviceError, TuyaError, TuyaFatalError
from fwwatch.tuya.codes import CODES, GRANT_REFUSED, Kind, Meaning, meaning_of
from tests.unit.scripted_cloud import ScriptedCloud, envelope, make_client, unit_settings

FIRMWARE = [{"type": 0, "current_version": "1.0.0", "version": "1.1.0", "upgrade_status": 1}]
TUYA_SAYS = "tuya says no"

#: Meanings whose error ends the run: they must tell the user what to do.
RUN_ENDING = [
    *((code, m) for code, m in CODES.items() if m.kind in (Kind.FATAL, Kind.PERMISSION)),
    *((code, m) for code, m in CODES.items() if m.kind is Kind.CLOCK_SKEW),
    (1100, GRANT_REFUSED),
]


def codes_of(*kinds: Kind) -> list[int]:
    return sorted(code for code, meaning in CODES.items() if meaning.kind in kinds)


def worded(template: str, path: str) -> str:
    """A text of the table as the unit client words it for ``path``."""
    settings = unit_settings()
    return template.format(
        msg=TUYA_SAYS, path=path, access_id=settings.access_id, region=settings.region_label
    )


def expected_text(meaning: Meaning, path: str) -> str:
    return worded(f"{meaning.problem} {meaning.fix}", path)


@pytest.mark.parametrize(("code", "meaning"), RUN_ENDING)
def test_every_meaning_that_ends_the_run_names_its_fix(code: int, meaning: Meaning) -> None:
    assert meaning.fix.strip(), f"{code} ends the run without saying what to do"
    # The problem ends with its own punctuation, so the fix reads as a sentence of its own.
    assert meaning.problem.endswith((":", ";"))
    if meaning.kind is not Kind.CLOCK_SKEW:  # an unusable clock is ours, not Tuya's words
        assert "{msg}" in meaning.problem, f"{code} drops Tuya's own message"


def test_tuyas_message_is_quoted_not_formatted() -> None:
    text = CODES[1004].explain("{access_id} {0}", path="/p", access_id="me", region="eu")
    assert "({access_id} {0})" in text
    assert "'me'" in text


@pytest.mark.parametrize("code", codes_of(Kind.FATAL))
async def test_each_fatal_code_stops_the_run_with_the_tables_fix(code: int) -> None:
    cloud = ScriptedCloud(envelope(code=code, msg=TUYA_SAYS))
    async with make_client(cloud) as tuya:
        with pytest.raises(TuyaFatalError) as caught:
            await tuya.get_firmware("dev1")
        # and the client is over: the next call is refused without asking the cloud
        with pytest.raises(TuyaFatalError):
            await tuya.get_firmware("dev2")
    assert len(cloud.business) == 1
    assert (caught.value.code, caught.value.tid) == (code, "tid-1")
    assert caught.value.msg == expected_text(CODES[code], "/v2.0/cloud/thing/dev1/firmware")
    # what to do comes last, where a reader of a long log line finds it
    assert caught.value.msg.endswith(worded(CODES[code].fix, "/v2.0/cloud/thing/dev1/firmware"))


@pytest.mark.parametrize("code", codes_of(Kind.DEVICE, Kind.PERMISSION))
async def test_each_device_code_fails_that_device_with_the_tables_hint(code: int) -> None:
    meaning = CODES[code]
    cloud = ScriptedCloud(envelope(code=code, msg=TUYA_SAYS), envelope(FIRMWARE))
    async with make_client(cloud) as tuya:
        with pytest.raises(TuyaDeviceError) as caught:
            await tuya.get_firmware("dev7")
        # and only that device: the next one is checked
        assert (await tuya.get_firmware("dev8")).channels
    assert caught.value.code == code
    assert caught.value.device_id == "dev7"
    assert caught.value.permanent is meaning.permanent
    assert caught.value.msg == f"{TUYA_SAYS} ({meaning.hint})"


@pytest.mark.parametrize("code", codes_of(Kind.PERMISSION))
async def test_a_permission_code_off_a_device_call_stops_the_run(code: int) -> None:
    cloud = ScriptedCloud(envelope(code=code, msg=TUYA_SAYS))
    async with make_client(cloud) as tuya:
        with pytest.raises(TuyaFatalError) as caught:
            [device async for device in tuya.list_devices()]
    assert caught.value.msg == expected_text(CODES[code], "/v2.0/cloud/thing/device")


@pytest.mark.parametrize("code", codes_of(Kind.TOKEN_REJECTED))
async def test_each_token_code_takes_a_new_token_and_tries_again(code: int) -> None:
    cloud = ScriptedCloud(envelope(code=code), envelope(FIRMWARE))
    async with make_client(cloud) as tuya:
        assert (await tuya.get_firmware("dev1")).channels
        assert tuya.stats.retries["token"] == 1
    assert cloud.grants == 2


@pytest.mark.parametrize("code", codes_of(Kind.THROTTLED, Kind.BUSY))
async def test_each_throttled_or_busy_code_is_tried_again(code: int) -> None:
    cloud = ScriptedCloud(envelope(code=code), envelope(FIRMWARE))
    async with make_client(cloud) as tuya:
        rate_before = tuya.limiter.rate
        assert (await tuya.get_firmware("dev1")).channels
        assert tuya.stats.retries[f"code_{code}"] == 1
        # only throttling slows the client down; a busy cloud is just asked again
        assert (tuya.limiter.rate < rate_before) is (CODES[code].kind is Kind.THROTTLED)
    assert cloud.grants == 1


@pytest.mark.parametrize("code", codes_of(Kind.CLOCK_SKEW))
async def test_each_clock_code_corrects_the_clock_or_names_the_fix(code: int) -> None:
    skewed = envelope(code=code, t=envelope()["t"] + 600_000)
    untimed = {"success": False, "code": code, "msg": TUYA_SAYS, "tid": "tid-1"}
    cloud = ScriptedCloud(skewed, envelope(FIRMWARE), untimed)
    async with make_client(cloud) as tuya:
        assert (await tuya.get_firmware("dev1")).channels
        assert tuya.stats.clock_corrections == 1
        with pytest.raises(TuyaFatalError) as caught:
            await tuya.get_firmware("dev2")
    assert caught.value.msg == expected_text(CODES[code], "/v2.0/cloud/thing/dev2/firmware")


@pytest.mark.parametrize("code", [1003, 1108, 9999, 28841101])
async def test_a_code_missing_from_the_table_is_an_api_error(code: int) -> None:
    assert meaning_of(code).kind is Kind.UNLISTED
    cloud = ScriptedCloud(envelope(code=code, msg=TUYA_SAYS))
    async with make_client(cloud) as tuya:
        with pytest.raises(TuyaError) as caught:
            await tuya.get_firmware("dev1")
    assert type(caught.value) is TuyaApiError
    assert caught.value.code == code


def test_no_code_reads_as_unlisted() -> None:
    assert meaning_of(None).kind is Kind.UNLISTED
