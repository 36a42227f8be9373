"""``fwwatch run`` with FWWATCH_MQTT_URL: what a real Mosquitto broker's subscriber receives.

Each run publishes, retained at QoS 1, a Home Assistant discovery config and a JSON state
for every device channel, only what changed, and clears the entities of a device that
left the project. The subscriber connects like Home Assistant does: a late one sees what
is retained, a connected one sees each message as it comes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trustme

from fwwatch.cli import main
from fwwatch.simulator import RunningSimulator
from tests.homeassistant_schema import config_problems, discovery_parts, state_problems
from tests.integration.conftest import MakeMosquitto, Subscribe, point_cli_at
from tests.integration.mosquitto import BrokerTls, Mosquitto, Received

pytestmark = pytest.mark.integration

PREFIX = "homeassistant"
PLUG_PRODUCT = "keyjup78v54myhan"  # demo: Smart Plug 16A, three devices online
PLUGS = ["bf3a61c0e2d94f5b8a01c7", "bf3a61c0e2d94f5b8a02d1", "bf3a61c0e2d94f5b8a03e9"]
HALLWAY = "bf7c19e4a0b2c3d4e5f601"  # demo: sensor, channels 3 (offered 1.0.9) and 9


@pytest.fixture
def fleet_env(
    simulator: RunningSimulator,
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> RunningSimulator:
    """The CLI pointed at the demo fleet's simulator, publishing to the broker."""
    point_cli_at(simulator, monkeypatch, tmp_path)
    monkeypatch.setenv("FWWATCH_MQTT_URL", mosquitto.url)
    return simulator


def run(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    """``fwwatch run --json``: its exit status, its report, its stderr."""
    status = main(["run", "--json"])
    captured = capsys.readouterr()
    return status, json.loads(captured.out), captured.err


def channels_of(simulator: RunningSimulator) -> dict[tuple[str, int], str]:
    """Every channel the devices that answer report, with its installed version (a device
    answering in Tuya's one-object shape reports its first channel only)."""
    return {
        (device.device_id, channel.channel): channel.current_version
        for device in simulator.cloud.fleet.devices
        if device.error is None
        for channel in (device.channels if device.shape == "list" else device.channels[:1])
    }


#: The demo fleet's channels that answer, and the messages they make (a config, a state).
CHANNELS = 16
MESSAGES = 2 * CHANNELS


def retained(messages: list[Received]) -> dict[str, Received]:
    """What a late subscriber got, by topic (only retained messages)."""
    assert all(message.retain for message in messages)
    return {message.topic: message for message in messages}


def configs_and_states(held: dict[str, Received]) -> tuple[dict[str, Any], dict[str, Any]]:
    configs = {t: m.json() for t, m in held.items() if t.endswith("/config")}
    states = {t: m.json() for t, m in held.items() if t.startswith("fwwatch/")}
    return configs, states


def test_home_assistant_sees_a_valid_update_entity_for_every_channel_of_the_demo_fleet(
    fleet_env: RunningSimulator,
    mosquitto: Mosquitto,
    subscribe: Subscribe,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the demo fleet (12 devices, one offline)
    expected = channels_of(fleet_env)

    # When a first run checks it
    status, report, _ = run(capsys)

    # Then a subscriber connecting afterwards finds one config and one state per channel
    held = retained(subscribe(mosquitto).sync())
    configs, states = configs_and_states(held)
    assert status == 0
    assert report["home_assistant"] == {
        "published": 2 * len(expected),
        "cleared": 0,
        "pending": 0,
        "error": None,
    }
    assert len(configs) == len(states) == len(expected) == CHANNELS
    seen = {}
    for topic, config in configs.items():
        parts = discovery_parts(topic, PREFIX)
        assert parts is not None, topic
        assert parts["component"] == "update", topic
        # ... that Home Assistant's update schema accepts, whose state is there and valid
        assert config_problems(config) == [], topic
        state = states[config["state_topic"]]
        assert state_problems(state) == [], config["state_topic"]
        device_id, channel = parts["object_id"].rsplit("_", 1)
        assert config["device"]["identifiers"] == [f"fwwatch_{device_id}"]
        seen[(device_id, int(channel))] = state["installed_version"]
    assert seen == expected
    # ... unique IDs, a device block per device, with the product as its model
    assert len({config["unique_id"] for config in configs.values()}) == CHANNELS
    kitchen = configs[f"{PREFIX}/update/fwwatch/{PLUGS[0]}_0/config"]
    assert (kitchen["device"]["name"], kitchen["device"]["model"]) == (
        "Kitchen plug",
        "Smart Plug 16A",
    )
    # ... and the hallway sensor's Zigbee offer is an update Home Assistant shows
    zigbee = states[f"fwwatch/{HALLWAY}/3/state"]
    assert (zigbee["installed_version"], zigbee["latest_version"]) == ("1.0.7", "1.0.9")


def test_a_release_in_the_simulator_changes_the_state_of_the_devices_offered_it(
    fleet_env: RunningSimulator,
    mosquitto: Mosquitto,
    subscribe: Subscribe,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a first run published, and Home Assistant connected
    run(capsys)
    home_assistant = subscribe(mosquitto)
    home_assistant.sync()

    # When the simulator publishes 1.2.1 for the plugs, and the next run sees it
    fleet_env.cloud.publish_release(PLUG_PRODUCT, 0, "1.2.1")
    status, report, _ = run(capsys)

    # Then exactly the three plugs' states arrive, with 1.2.1 as the latest version
    arrived = home_assistant.sync()
    assert status == 0
    assert sorted(m.topic for m in arrived) == sorted(f"fwwatch/{plug}/0/state" for plug in PLUGS)
    assert {m.json()["latest_version"] for m in arrived} == {"1.2.1"}
    assert {m.json()["installed_version"] for m in arrived} == {"1.2.0", "1.1.5"}
    assert report["home_assistant"]["published"] == 3
    # ... and a subscriber connecting later finds the new state retained
    late = retained(subscribe(mosquitto).sync())
    assert late[f"fwwatch/{PLUGS[0]}/0/state"].json()["latest_version"] == "1.2.1"


def test_an_ignored_offer_stays_the_latest_version_with_a_summary_that_says_it_is_ignored(
    fleet_env: RunningSimulator,
    mosquitto: Mosquitto,
    subscribe: Subscribe,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a first run published, and the plugs' 1.2.1 ignored before it is offered
    run(capsys)
    assert main(["ignore", PLUG_PRODUCT, "1.2.1"]) == 0
    capsys.readouterr()
    home_assistant = subscribe(mosquitto)
    home_assistant.sync()
    # When the simulator offers it, and the next run sees it
    fleet_env.cloud.publish_release(PLUG_PRODUCT, 0, "1.2.1")
    run(capsys)
    # Then Home Assistant still learns of the offer (its own skip is the user's), and the
    # summary says fwwatch ignores it
    states = [m.json() for m in home_assistant.sync()]
    assert len(states) == len(PLUGS)
    assert {state["latest_version"] for state in states} == {"1.2.1"}
    assert all("fwwatch ignores 1.2.1" in state["release_summary"] for state in states)
    # And removing the ignore changes the summary back
    assert main(["ignore", "--remove", PLUG_PRODUCT, "1.2.1"]) == 0
    capsys.readouterr()
    run(capsys)
    states = [m.json() for m in home_assistant.sync()]
    assert len(states) == len(PLUGS)
    assert not any("ignores" in state["release_summary"] for state in states)


def test_an_unchanged_run_publishes_nothing(
    fleet_env: RunningSimulator,
    mosquitto: Mosquitto,
    subscribe: Subscribe,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a first run published, and Home Assistant connected
    run(capsys)
    home_assistant = subscribe(mosquitto)
    assert len(home_assistant.sync()) == MESSAGES

    # When a second run finds the fleet as it was
    status, report, _ = run(capsys)

    # Then nothing arrives
    assert status == 0
    assert home_assistant.sync() == []
    assert report["home_assistant"]["published"] == 0


def test_a_device_that_leaves_the_project_has_its_entities_cleared(
    fleet_env: RunningSimulator,
    mosquitto: Mosquitto,
    subscribe: Subscribe,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a first run published, and Home Assistant connected
    run(capsys)
    home_assistant = subscribe(mosquitto)
    home_assistant.sync()

    # When the hallway sensor leaves the project, and the next run lists the project
    fleet_env.cloud.remove_device(HALLWAY)
    status, report, _ = run(capsys)

    # Then its two configs and states are cleared with empty payloads, and nothing else
    arrived = home_assistant.sync()
    assert status == 0
    assert sorted((m.topic, m.payload) for m in arrived) == sorted(
        [
            (f"{PREFIX}/update/fwwatch/{HALLWAY}_3/config", b""),
            (f"{PREFIX}/update/fwwatch/{HALLWAY}_9/config", b""),
            (f"fwwatch/{HALLWAY}/3/state", b""),
            (f"fwwatch/{HALLWAY}/9/state", b""),
        ]
    )
    assert report["home_assistant"]["cleared"] == 4
    # ... so the broker retains nothing of it, and the other devices' entities stay
    late = retained(subscribe(mosquitto).sync())
    assert not [topic for topic in late if HALLWAY in topic]
    assert len(late) == MESSAGES - 4


def test_a_broker_that_is_down_fails_the_run_and_the_next_run_publishes(
    simulator: RunningSimulator,
    make_mosquitto: MakeMosquitto,
    subscribe: Subscribe,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a broker that is down
    broker = make_mosquitto(start=False)
    point_cli_at(simulator, monkeypatch, tmp_path)
    monkeypatch.setenv("FWWATCH_MQTT_URL", broker.url)

    # When a run checks the fleet
    status, report, _ = run(capsys)

    # Then the run did the rest (state kept), says why Home Assistant got nothing, exits 1
    assert status == 1
    assert report["checked"] == 11
    outcome = report["home_assistant"]
    assert (outcome["published"], outcome["pending"]) == (0, MESSAGES)
    assert f"cannot reach the MQTT broker mqtt://127.0.0.1:{broker.port}" in outcome["error"]
    assert "32 of 32 MQTT messages not published (kept for the next cycle)" in caplog.text

    # When the broker is up again and the next run finds nothing new
    broker.start()
    status, report, _ = run(capsys)

    # Then that run publishes every entity
    assert status == 0
    assert report["events"] == []
    assert report["home_assistant"]["published"] == MESSAGES
    assert len(retained(subscribe(broker).sync())) == MESSAGES


def test_the_summary_line_counts_what_went_to_home_assistant(
    fleet_env: RunningSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["run"])
    out = capsys.readouterr().out
    assert status == 0
    assert f"{MESSAGES} MQTT messages published" in out.splitlines()[-1]


# ---------------------------------------------------------------------- credentials and TLS

USER, PASSWORD = "fwwatch", "mqtt-s3cr3t/pa ss@word"


@pytest.mark.parametrize("where", ["url", "variable"])
def test_a_broker_with_users_gets_the_password_which_is_never_shown(
    where: str,
    simulator: RunningSimulator,
    make_mosquitto: MakeMosquitto,
    subscribe: Subscribe,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a broker that only takes a user with a password, given in the URL or apart
    broker = make_mosquitto(users={USER: PASSWORD})
    point_cli_at(simulator, monkeypatch, tmp_path)
    if where == "url":
        encoded = PASSWORD.replace("/", "%2F").replace(" ", "%20").replace("@", "%40")
        monkeypatch.setenv("FWWATCH_MQTT_URL", f"mqtt://{USER}:{encoded}@127.0.0.1:{broker.port}")
    else:
        monkeypatch.setenv("FWWATCH_MQTT_URL", f"mqtt://{USER}@127.0.0.1:{broker.port}")
        monkeypatch.setenv("FWWATCH_MQTT_PASSWORD", PASSWORD)
    caplog.set_level(logging.DEBUG)

    # When a run publishes, with every logger at DEBUG
    status = main(["-vv", "run", "--json"])
    captured = capsys.readouterr()

    # Then the broker took it all
    assert status == 0, captured.err
    assert json.loads(captured.out)["home_assistant"]["published"] == MESSAGES
    held = subscribe(broker, username=USER, password=PASSWORD).sync()
    assert len(held) == MESSAGES
    # ... and the password is nowhere: output, logs, the state file and its WAL
    state = b"".join(path.read_bytes() for path in tmp_path.glob("state.sqlite3*"))
    for text in (captured.out, captured.err, caplog.text):
        assert PASSWORD not in text
        assert "s3cr3t" not in text
    assert b"s3cr3t" not in state


def test_a_wrong_password_is_named_as_the_cause(
    simulator: RunningSimulator,
    make_mosquitto: MakeMosquitto,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a broker that does not know this password
    broker = make_mosquitto(users={USER: PASSWORD})
    point_cli_at(simulator, monkeypatch, tmp_path)
    monkeypatch.setenv("FWWATCH_MQTT_URL", f"mqtt://{USER}:wrong-guess@127.0.0.1:{broker.port}")

    # When a run publishes
    status, report, err = run(capsys)

    # Then it exits 1, naming the refusal and what to check; the password is not shown
    error = report["home_assistant"]["error"]
    assert status == 1
    assert "refused the connection" in error
    assert "FWWATCH_MQTT_PASSWORD" in error
    assert "wrong-guess" not in error + err


def test_mqtts_publishes_over_tls_verified_against_ssl_cert_file(
    simulator: RunningSimulator,
    make_mosquitto: MakeMosquitto,
    subscribe: Subscribe,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a broker with a certificate from a company CA, and that CA in SSL_CERT_FILE
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    files = BrokerTls(tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key")
    ca.cert_pem.write_to_path(str(files.cafile))
    server.cert_chain_pems[0].write_to_path(str(files.certfile))
    server.private_key_pem.write_to_path(str(files.keyfile))
    broker = make_mosquitto(tls=files)
    point_cli_at(simulator, monkeypatch, tmp_path)
    monkeypatch.setenv("FWWATCH_MQTT_URL", broker.url)
    monkeypatch.setenv("SSL_CERT_FILE", str(files.cafile))

    # When a run publishes over mqtts://
    status, report, _ = run(capsys)

    # Then the broker took it all
    assert broker.url.startswith("mqtts://")
    assert status == 0, report["home_assistant"]
    assert len(retained(subscribe(broker, tls_ca=files.cafile).sync())) == MESSAGES


def test_mqtts_refuses_a_broker_whose_certificate_it_cannot_verify(
    simulator: RunningSimulator,
    make_mosquitto: MakeMosquitto,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a broker whose CA this machine does not trust
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    files = BrokerTls(tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key")
    ca.cert_pem.write_to_path(str(files.cafile))
    server.cert_chain_pems[0].write_to_path(str(files.certfile))
    server.private_key_pem.write_to_path(str(files.keyfile))
    broker = make_mosquitto(tls=files)
    point_cli_at(simulator, monkeypatch, tmp_path)
    monkeypatch.setenv("FWWATCH_MQTT_URL", broker.url)

    # When a run publishes
    status, report, _ = run(capsys)

    # Then nothing is published, and the run says it could not reach the broker
    assert status == 1
    assert "certificate verify failed" in report["home_assistant"]["error"]
    db = sqlite3.connect(tmp_path / "state.sqlite3")
    assert db.execute("SELECT count(*) FROM mqtt_retained").fetchone() == (0,)
