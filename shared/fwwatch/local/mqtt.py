"""An MQTT broker to publish to: where it is, and one connection that publishes retained.

:class:`MqttBroker` is read from ``FWWATCH_MQTT_URL`` (``mqtt://[user:password@]host[:port]``,
``mqtts://`` for TLS); its password is a secret and never shown. :class:`MqttConnection` is
the one thing a publisher needs of a broker; :func:`aiomqtt_connection` is the real one
(aiomqtt, QoS 1, each message acknowledged before the call returns).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from ..tuya.transport import tls_context

if TYPE_CHECKING:
    import aiomqtt

__all__ = [
    "MAX_IN_FLIGHT",
    "Connect",
    "MqttBroker",
    "MqttConnection",
    "MqttPublishError",
    "aiomqtt_connection",
    "parse_mqtt_url",
]

logger = logging.getLogger("fwwatch.mqtt")

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
#: Seconds for connecting, and for each message's acknowledgement.
TIMEOUT_S = 10.0
#: Messages a publisher may have awaiting acknowledgement at once (aiomqtt warns past it).
MAX_IN_FLIGHT = 64
URL_FORM = "mqtt://[user:password@]host[:port] (mqtts:// for TLS)"


class MqttPublishError(Exception):
    """The broker could not be reached, refused us, or did not acknowledge a message."""


@dataclass(frozen=True, slots=True)
class MqttBroker:
    """Where to publish and as whom; the password is kept out of every repr."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """``mqtt(s)://host:port``: the broker, credentials left out (safe to show)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def parse_mqtt_url(url: str, password: SecretStr | None = None) -> MqttBroker:
    """The broker a ``FWWATCH_MQTT_URL`` names; ``password`` when it is set apart.

    Raises ``ValueError`` saying what is wrong, never repeating the URL (it may hold a
    password).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"is not a URL of the form {URL_FORM}{_password_hint(url)}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"must start with mqtt:// or mqtts://, as in {URL_FORM}")
    if not parts.hostname:
        raise ValueError(f"names no host; the form is {URL_FORM}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            f"must hold no path or query ({URL_FORM}); the discovery prefix is "
            f"FWWATCH_MQTT_DISCOVERY_PREFIX{_password_hint(url)}"
        )
    username = unquote(parts.username) if parts.username else None
    in_url = parts.password is not None
    if in_url and password is not None:
        raise ValueError("holds a password and FWWATCH_MQTT_PASSWORD is set too; keep one of them")
    if in_url:
        password = SecretStr(unquote(parts.password or ""))
    if password is not None and not username:
        raise ValueError(
            "names no user for the password; the form is mqtt://user:password@host, or "
            "mqtt://user@host with FWWATCH_MQTT_PASSWORD"
        )
    return MqttBroker(
        host=parts.hostname,
        port=port or DEFAULT_PORTS[parts.scheme],
        tls=parts.scheme == "mqtts",
        username=username,
        password=password,
    )


def _password_hint(url: str) -> str:
    """Why a URL with user info may not parse: its password's #, / or ? end the host part."""
    if "@" not in url.partition("://")[2]:
        return ""
    return (
        "; a password in the URL must be percent-encoded (# as %23, / as %2F, ? as %3F), "
        "or set apart in FWWATCH_MQTT_PASSWORD"
    )


class MqttConnection(Protocol):
    """An open connection to a broker."""

    async def publish_retained(self, topic: str, payload: str) -> None:
        """Publish a retained message at QoS 1; return once the broker acknowledged it, or
        raise :class:`MqttPublishError`."""
        ...


#: Opens a connection to a broker (raising :class:`MqttPublishError`), closed on exit.
Connect = Callable[[MqttBroker], AbstractAsyncContextManager[MqttConnection]]


class _AiomqttConnection:
    def __init__(self, client: aiomqtt.Client, broker: MqttBroker) -> None:
        self._client = client
        self._broker = broker

    async def publish_retained(self, topic: str, payload: str) -> None:
        import aiomqtt

        try:
            await self._client.publish(topic, payload.encode(), qos=1, retain=True)
        except aiomqtt.MqttError as exc:
            raise MqttPublishError(
                f"{self._broker.address} did not take a message ({exc})"
            ) from None


@asynccontextmanager
async def aiomqtt_connection(broker: MqttBroker) -> AsyncIterator[MqttConnection]:
    """A connection through aiomqtt (TLS verified against the system's or
    ``SSL_CERT_FILE``'s CAs), disconnected on exit."""
    # Imported here: paho-mqtt loads only for the runs that publish.
    import aiomqtt

    client = aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password.get_secret_value() if broker.password else None,
        identifier=f"fwwatch-{uuid.uuid4().hex[:12]}",
        tls_context=tls_context() if broker.tls else None,
        timeout=TIMEOUT_S,
        logger=logger,
    )
    client.pending_calls_threshold = MAX_IN_FLIGHT
    try:
        async with client:
            yield _AiomqttConnection(client, broker)
    except aiomqtt.MqttCodeError as exc:
        raise MqttPublishError(_refused(broker, exc)) from None
    except aiomqtt.MqttError as exc:
        raise MqttPublishError(
            f"cannot reach the MQTT broker {broker.address} ({exc}); check FWWATCH_MQTT_URL "
            "and that the broker is running"
        ) from None


def _refused(broker: MqttBroker, exc: Exception) -> str:
    text = str(exc)
    if any(word in text.lower() for word in ("password", "authori", "authenti")):
        fix = "check the user name and password in FWWATCH_MQTT_URL or FWWATCH_MQTT_PASSWORD"
    else:
        fix = "check FWWATCH_MQTT_URL"
    return f"the MQTT broker {broker.address} refused the connection ({text}); {fix}"
