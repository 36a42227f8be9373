"""A real Mosquitto broker on loopback, and a subscriber that sees what it holds and gets.

``Mosquitto(folder)`` writes a config (a listener on 127.0.0.1, a free port, no persistence)
and starts ``mosquitto -c``; ``stop()`` and ``start()`` again keep its port, so a broker can
be down for one run and up for the next. Users (a password file) and TLS are optional.

``Subscriber(broker)`` subscribes to every topic. :meth:`Subscriber.sync` returns what
arrived since the last call: it publishes a marker of its own and waits for it to come
back, and a broker delivers one subscription's messages in the order it took them, so
everything published before the marker has arrived by then (no sleeping, no timing).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

MISSING = (
    "mosquitto is not installed: `make debs` installs it (Debian's mosquitto package; "
    "`make test` does it too)"
)
#: Seconds a broker may take to listen, and a marker to come back: generous, never asserted.
PATIENCE_S = 20.0


def mosquitto_program(name: str = "mosquitto") -> str:
    """Path of a Mosquitto program; Debian puts the broker in /usr/sbin, off a user's PATH."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail(MISSING)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class BrokerTls:
    """A server certificate for the broker (PEM files)."""

    cafile: Path
    certfile: Path
    keyfile: Path


class Mosquitto:
    """One Mosquitto process on 127.0.0.1."""

    def __init__(
        self, folder: Path, *, users: dict[str, str] | None = None, tls: BrokerTls | None = None
    ) -> None:
        self.folder = folder
        self.port = free_port()
        self.users = users or {}
        self.tls = tls
        self.log = folder / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(self._config(), encoding="utf-8")

    @property
    def url(self) -> str:
        """``mqtt://`` (or ``mqtts://``) to this broker, without credentials."""
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def _config(self) -> str:
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_type all"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to 'mosquitto', who cannot read our files
        if self.users:
            passwords = self.folder / "passwords"
            passwords.write_text("", encoding="utf-8")
            for user, password in self.users.items():
                subprocess.run(
                    [mosquitto_program("mosquitto_passwd"), "-b", str(passwords), user, password],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            lines += [
                f"cafile {self.tls.cafile}",
                f"certfile {self.tls.certfile}",
                f"keyfile {self.tls.keyfile}",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Start the broker and wait until it listens."""
        assert self._process is None, "already running"
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [mosquitto_program(), "-c", str(self.config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + PATIENCE_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen: {self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        """Stop the broker (its retained messages go with it: no persistence)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=PATIENCE_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


@dataclass(frozen=True)
class Received:
    """One message as the subscriber got it."""

    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """Subscribed to every topic of a broker from the moment it is made."""

    def __init__(
        self,
        broker: Mosquitto,
        *,
        username: str | None = None,
        password: str | None = None,
        tls_ca: Path | None = None,
    ) -> None:
        self._marker_prefix = f"test/sync/{uuid.uuid4().hex}/"
        self._markers = 0
        self._arrived: list[Received] = []
        self._read = 0
        self._lock = threading.Lock()
        self._marker_seen = threading.Condition(self._lock)
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4()}")
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls_ca is not None:
            self._client.tls_set(ca_certs=str(tls_ca))
        self._client.on_message = self._on_message
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.connect("127.0.0.1", broker.port)
        self._client.loop_start()
        self._client.subscribe("#", qos=1)
        if not subscribed.wait(PATIENCE_S):
            raise RuntimeError("the broker never acknowledged the subscription")

    def _on_message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self._arrived.append(Received(message.topic, bytes(message.payload), message.retain))
            self._marker_seen.notify_all()

    def sync(self) -> list[Received]:
        """Every message that arrived since the last call (markers left out), in order."""
        self._markers += 1
        marker = f"{self._marker_prefix}{self._markers}"
        self._client.publish(marker, b"", qos=1)
        with self._lock:
            if not self._marker_seen.wait_for(
                lambda: any(m.topic == marker for m in self._arrived[self._read :]), PATIENCE_S
            ):
                raise RuntimeError("the broker never delivered the marker")
            new = self._arrived[self._read :]
            self._read = len(self._arrived)
        return [m for m in new if not m.topic.startswith(self._marker_prefix)]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
