"""FWWATCH_MQTT_*: the broker a URL names, refused clearly when it cannot work, never shown."""

from __future__ import annotations

import pytest

from fwwatch.local.config import LocalSettings
from fwwatch.tuya import ConfigError

SECRET = "mqtt-s3cr3t-that-must-not-leak"


def test_without_a_url_nothing_is_published() -> None:
    settings = LocalSettings.load({})
    assert settings.mqtt_broker is None
    assert settings.mqtt_discovery_prefix == "homeassistant"


@pytest.mark.parametrize(
    ("url", "address", "tls", "username"),
    [
        ("mqtt://broker.lan", "mqtt://broker.lan:1883", False, None),
        ("mqtts://broker.lan", "mqtts://broker.lan:8883", True, None),
        ("mqtt://ha@192.168.1.5:1884/", "mqtt://192.168.1.5:1884", False, "ha"),
        ("mqtts://[::1]:8884", "mqtts://[::1]:8884", True, None),
    ],
)
def test_the_url_names_the_broker(url: str, address: str, tls: bool, username: str | None) -> None:
    broker = LocalSettings.load({"FWWATCH_MQTT_URL": url}).mqtt_broker
    assert broker is not None
    assert (broker.address, broker.tls, broker.username, broker.password) == (
        address,
        tls,
        username,
        None,
    )


def test_a_password_in_the_url_is_decoded() -> None:
    broker = LocalSettings.load(
        {"FWWATCH_MQTT_URL": "mqtt://home%20assistant:p%40ss%2Fw0rd@broker.lan"}
    ).mqtt_broker
    assert broker is not None
    assert broker.password is not None
    assert (broker.username, broker.password.get_secret_value()) == ("home assistant", "p@ss/w0rd")


def test_the_password_may_come_apart_from_the_url() -> None:
    broker = LocalSettings.load(
        {"FWWATCH_MQTT_URL": "mqtts://ha@broker.lan", "FWWATCH_MQTT_PASSWORD": SECRET}
    ).mqtt_broker
    assert broker is not None
    assert broker.password is not None
    assert broker.password.get_secret_value() == SECRET


def test_a_custom_discovery_prefix_is_kept() -> None:
    settings = LocalSettings.load({"FWWATCH_MQTT_DISCOVERY_PREFIX": "ha/discovery"})
    assert settings.mqtt_discovery_prefix == "ha/discovery"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FWWATCH_MQTT_URL": f"http://ha:{SECRET}@broker"}, "must start with mqtt:// or mqtts://"),
        ({"FWWATCH_MQTT_URL": f"broker.lan:{SECRET}"}, "FWWATCH_MQTT_URL"),
        ({"FWWATCH_MQTT_URL": f"mqtt://ha:{SECRET}@"}, "names no host"),
        ({"FWWATCH_MQTT_URL": f"mqtt://ha:{SECRET}@broker:99999"}, "is not a URL"),
        ({"FWWATCH_MQTT_URL": f"mqtt://ha:{SECRET}@broker/ha"}, "FWWATCH_MQTT_DISCOVERY_PREFIX"),
        ({"FWWATCH_MQTT_URL": f"mqtt://:{SECRET}@broker"}, "names no user for the password"),
        (
            {"FWWATCH_MQTT_URL": "mqtt://broker", "FWWATCH_MQTT_PASSWORD": SECRET},
            "names no user for the password",
        ),
        (
            {"FWWATCH_MQTT_URL": "mqtt://ha:x@broker", "FWWATCH_MQTT_PASSWORD": SECRET},
            "FWWATCH_MQTT_PASSWORD is set too",
        ),
        ({"FWWATCH_MQTT_PASSWORD": SECRET}, "FWWATCH_MQTT_URL is not"),
        ({"FWWATCH_MQTT_DISCOVERY_PREFIX": "ha/#"}, "FWWATCH_MQTT_DISCOVERY_PREFIX: must not"),
    ],
)
def test_a_broker_that_cannot_work_is_refused_without_showing_the_secret(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        LocalSettings.load(env)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("password", ["pa#ss", "pa/ss", "pa?ss", "12/34", "12#34"])
def test_a_password_that_breaks_the_url_is_named_as_the_cause(password: str) -> None:
    # A generated password holding #, / or ? ends the URL's host part early
    with pytest.raises(ConfigError) as caught:
        LocalSettings.load({"FWWATCH_MQTT_URL": f"mqtt://ha:{SECRET}{password}@broker.lan"})
    message = str(caught.value)
    assert "percent-encoded (# as %23, / as %2F, ? as %3F)" in message
    assert "FWWATCH_MQTT_PASSWORD" in message
    assert SECRET not in message


def test_the_password_never_shows_in_a_repr() -> None:
    settings = LocalSettings.load({"FWWATCH_MQTT_URL": f"mqtts://ha:{SECRET}@broker.lan"})
    for shown in (repr(settings), str(settings), repr(settings.mqtt_broker)):
        assert SECRET not in shown
