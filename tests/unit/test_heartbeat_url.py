"""The heartbeat's URL: https (plain http to loopback only), ``/fail`` beside it, never shown."""

from __future__ import annotations

import pytest

from fwwatch.local.config import LocalSettings
from fwwatch.local.heartbeat import Heartbeat, failure_url, validate_heartbeat_url
from fwwatch.tuya import ConfigError

KEY = "5f0c2f9e-8a1b-4c3d-9e7f-0a1b2c3d4e5f"


@pytest.mark.parametrize(
    "url",
    [f"https://hc-ping.com/{KEY}", f"http://127.0.0.1:8000/ping/{KEY}", f"http://[::1]/{KEY}"],
)
def test_https_or_plain_http_to_this_machine_is_accepted(url: str) -> None:
    assert validate_heartbeat_url(f" {url} ") == url


@pytest.mark.parametrize(
    "url",
    [
        f"http://hc-ping.com/{KEY}",
        f"ftp://hc-ping.com/{KEY}",
        f"hc-ping.com/{KEY}",
        f"https://hc-ping.com:port/{KEY}",
        f"https:///{KEY}",
    ],
)
def test_any_other_url_is_refused_without_repeating_it(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LocalSettings.load({"FWWATCH_HEARTBEAT_URL": url})
    assert str(caught.value).startswith("FWWATCH_HEARTBEAT_URL must be an https URL")
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "failure"),
    [
        (f"https://hc-ping.com/{KEY}", f"https://hc-ping.com/{KEY}/fail"),
        (f"https://hc-ping.com/{KEY}/", f"https://hc-ping.com/{KEY}/fail"),
        (f"https://hc.example/ping/{KEY}?rid=7", f"https://hc.example/ping/{KEY}/fail?rid=7"),
    ],
)
def test_a_failure_is_told_at_the_url_and_fail(url: str, failure: str) -> None:
    assert failure_url(url) == failure


def test_the_heartbeat_shows_only_where_it_goes() -> None:
    local = LocalSettings.load({"FWWATCH_HEARTBEAT_URL": f"https://me:pw@hc-ping.com:8443/{KEY}"})
    heartbeat = local.heartbeat()
    assert heartbeat is not None
    assert heartbeat.where == "https://hc-ping.com:8443"
    assert KEY not in repr(heartbeat) + repr(local)
    assert LocalSettings.load({}).heartbeat() is None


def test_a_heartbeat_is_made_from_a_valid_url_only() -> None:
    with pytest.raises(ValueError, match="FWWATCH_HEARTBEAT_URL must be an https URL"):
        Heartbeat(f"http://hc-ping.com/{KEY}")
