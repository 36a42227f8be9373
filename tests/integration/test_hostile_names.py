"""Hostile names from the cloud, through ``fwwatch run`` to real servers and the terminal.

Anyone who can name a device in Tuya's app writes part of every message. A simulated fleet
whose device, product and channel names try to ping a Slack channel, link away, clear the
terminal and add an e-mail recipient goes through a real run; what a Slack webhook and an
SMTP server on loopback receive, and what the console shows, is read back.
"""

from __future__ import annotations

import socket
import unicodedata
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from fwwatch.cli import main
from fwwatch.simulator import Fleet, FleetChannel, FleetDevice
from tests.integration.conftest import point_cli_at
from tests.integration.fakes import FakeSlack, serving_fake_slack

pytestmark = pytest.mark.integration

PRODUCT = "hostileprod01"
NAMES = {
    "host00": "<!channel>",
    "host01": "<https://evil.example|click>",
    "host02": "\x1b[2J\x1b[HWiped",
    "host03": "a\nBcc: x@y.example",
}
PRODUCT_NAME = "Plug & Co <!here>\r\nBcc: victim@evil.example"
CHANNEL_NAME = "Main\x1b[31m module\x1b]0;pwned\x07"
VERSION = "2.0\x1b[2J"


def hostile_fleet() -> Fleet:
    return Fleet(
        devices=[
            FleetDevice(
                device_id=device_id,
                name=name,
                product_id=PRODUCT,
                product_name=PRODUCT_NAME,
                category="cz",
                channels=[FleetChannel(channel=0, name=CHANNEL_NAME, current_version="1.0")],
            )
            for device_id, name in NAMES.items()
        ]
    )


class Inbox:
    """An SMTP server's mailbox: each message and the recipients it was sent to."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    mailbox = Inbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with serving_fake_slack("/services/T000/B000/hostilesecret") as fake:
        yield fake


@pytest.fixture
def released(
    make_simulator: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    slack: FakeSlack,
    inbox: tuple[Inbox, int],
    capsys: pytest.CaptureFixture[str],
) -> str:
    """A baseline run, a release, and the run that tells it: what that run printed."""
    simulator = make_simulator(fleet=hostile_fleet())
    point_cli_at(simulator, monkeypatch, tmp_path)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(inbox[1]))
    monkeypatch.setenv("SMTP_STARTTLS", "false")
    monkeypatch.setenv("NOTIFY_EMAIL_TO", "ops@example.com")
    assert main(["run"]) == 0
    simulator.cloud.publish_release(PRODUCT, 0, VERSION)
    capsys.readouterr()
    assert main(["run"]) == 0
    return capsys.readouterr().out


def controls(text: str) -> set[str]:
    """The control characters of ``text`` (line breaks included)."""
    return {char for char in text if unicodedata.category(char) == "Cc"}


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def test_slack_receives_every_name_escaped_so_that_nobody_is_pinged_or_linked(
    released: str, slack: FakeSlack
) -> None:
    (post,) = slack.received
    texts = list(strings_in(post))
    assert [text for text in texts if "<" in text or ">" in text] == []
    assert all(controls(text) <= {"\n"} for text in texts)
    assert "Plug &amp; Co &lt;!here&gt; Bcc: victim@evil.example" in post["text"]
    devices = post["blocks"][3]["text"]
    assert devices == {
        "type": "mrkdwn",
        "verbatim": True,
        "text": "• `host00` &lt;!channel&gt;\n"
        "• `host01` &lt;https://evil.example|click&gt;\n"
        "• `host02` Wiped\n"
        "• `host03` a Bcc: x@y.example",
    }


def test_the_mail_has_one_line_subject_no_added_recipient_and_a_clean_body(
    released: str, inbox: tuple[Inbox, int]
) -> None:
    ((recipients, message),) = inbox[0].messages
    assert recipients == ["ops@example.com"]
    assert message["Bcc"] is None
    subject = str(message["Subject"])
    assert controls(subject) == set()
    assert subject.startswith("fwwatch: 2.0 available - Plug & Co <!here> Bcc: victim@")
    body = message.get_content().replace("\r\n", "\n")  # SMTP's own line ends
    assert controls(body) <= {"\n"}
    assert not [line for line in body.splitlines() if line.startswith("Bcc")]
    assert "  - host02  Wiped  (was 1.0)" in body.splitlines()


def test_the_console_shows_the_names_without_moving_the_cursor(released: str) -> None:
    assert controls(released) <= {"\n"}
    lines = released.splitlines()
    assert not [line for line in lines if line.startswith("Bcc")]
    assert "    host03 (a Bcc: x@y.example)" in lines
    assert "    host02 (Wiped)" in lines


def test_status_and_check_tables_show_the_names_without_controls(
    released: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 0
    assert main(["check", "host02", "host03"]) == 0
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert controls(out) <= {"\n"}
    assert "Main module" in out
    assert not [line for line in out.splitlines() if line.startswith("Bcc")]
