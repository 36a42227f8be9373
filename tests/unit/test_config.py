"""Configuration: validated before any request, errors name the variable, secrets hidden."""

import pytest

from fwwatch.tuya import TuyaConfigError, TuyaSettings

SECRET = "s3cr3t-value-that-must-not-leak"
BASE = {"TUYA_ACCESS_ID": "abcd1234", "TUYA_ACCESS_SECRET": SECRET}


def test_region_resolves_to_its_data_centre() -> None:
    settings = TuyaSettings.from_env({**BASE, "TUYA_REGION": "eu-w"})
    assert settings.base_url == "https://openapi-weaz.tuyaeu.com"


def test_endpoint_wins_and_is_normalised() -> None:
    settings = TuyaSettings.from_env({**BASE, "TUYA_ENDPOINT": "https://openapi.tuyaus.com/"})
    assert settings.base_url == "https://openapi.tuyaus.com"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "TUYA_ACCESS_ID"),
        ({"TUYA_ACCESS_ID": "x"}, "TUYA_ACCESS_SECRET"),
        (BASE, "TUYA_REGION"),
        ({**BASE, "TUYA_REGION": "mars"}, "TUYA_REGION"),
        ({**BASE, "TUYA_ENDPOINT": "openapi.tuyaeu.com"}, "TUYA_ENDPOINT"),
        ({**BASE, "TUYA_ENDPOINT": "https://x.example/v1.0"}, "TUYA_ENDPOINT"),
        ({**BASE, "TUYA_REGION": "eu", "TUYA_QPS": "fast"}, "TUYA_QPS"),
        ({**BASE, "TUYA_REGION": "eu", "TUYA_QPS": "0"}, "TUYA_QPS"),
        ({**BASE, "TUYA_REGION": "eu", "TUYA_DEVICE_LISTING": "all"}, "TUYA_DEVICE_LISTING"),
    ],
)
def test_bad_configuration_names_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(TuyaConfigError) as caught:
        TuyaSettings.from_env(env)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    "url", ["http://openapi.tuyaeu.com", "http://10.0.0.5:8080", "http://[2001:db8::1]"]
)
def test_plain_http_is_refused_off_loopback(url: str) -> None:
    with pytest.raises(TuyaConfigError, match="loopback"):
        TuyaSettings.from_env({**BASE, "TUYA_ENDPOINT": url})


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"])
def test_plain_http_is_accepted_on_loopback(url: str) -> None:
    assert TuyaSettings.from_env({**BASE, "TUYA_ENDPOINT": url}).base_url == url


def test_secret_never_shows_in_repr_or_errors() -> None:
    settings = TuyaSettings.from_env({**BASE, "TUYA_REGION": "eu"})
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    with pytest.raises(TuyaConfigError) as caught:
        TuyaSettings.from_env({**BASE, "TUYA_REGION": "eu", "TUYA_QPS": "-1"})
    assert SECRET not in str(caught.value)
