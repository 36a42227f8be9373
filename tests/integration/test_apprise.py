"""``FWWATCH_APPRISE_URLS``: ``fwwatch run`` through Apprise to a JSON webhook on loopback.

Apprise's ``json://`` URL posts ``{"title", "message", "type"}`` to a real HTTP server here,
which records each post; the e-mail of the same news goes to a real SMTP server, so that the
two can be compared. The URL's path plays the part of a token: it must show nowhere.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from fwwatch.cli import main
from fwwatch.simulator import Fleet, FleetChannel, FleetDevice, RunningSimulator
from tests.integration.conftest import point_cli_at
from tests.integration.fakes import FakeSlack, serving_fake_slack

pytestmark = pytest.mark.integration

PRODUCTS = {"plugprod0001": "Smart plug", "lampprod0001": "Smart lamp"}
TOKEN = "t0kenInThePath9f3e"
HOOK = f"/hooks/{TOKEN}"


def fleet() -> Fleet:
    return Fleet(
        devices=[
            FleetDevice(
                device_id=f"{product[:4]}{i:02d}",
                name=f"{name} {i}",
                product_id=product,
                product_name=name,
                category="cz",
                channels=[FleetChannel(channel=0, current_version="1.0.0")],
            )
            for product, name in PRODUCTS.items()
            for i in range(2)
        ]
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def json_url(hook: FakeSlack) -> str:
    """The Apprise URL that posts JSON to the recording server."""
    return hook.url.replace("http://", "json://", 1)


@pytest.fixture
def cloud(
    make_simulator: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> RunningSimulator:
    simulator = make_simulator(fleet=fleet())
    point_cli_at(simulator, monkeypatch, tmp_path)
    return simulator


class Captured:
    """Everything the runs printed, to look for the token in."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self.printed = ""

    def run(self) -> tuple[int, dict[str, Any]]:
        """``fwwatch run --json``: the exit status and the report."""
        status = main(["run", "--json"])
        out, err = self._capsys.readouterr()
        self.printed += out + err
        return status, json.loads(out)

    def command(self, *args: str) -> tuple[int, str, str]:
        status = main(list(args))
        out, err = self._capsys.readouterr()
        self.printed += out + err
        return status, out, err


@pytest.fixture
def fwwatch(capsys: pytest.CaptureFixture[str]) -> Captured:
    return Captured(capsys)


def apprise_outcomes(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: o for n, o in report["notifications"].items() if n.startswith("apprise:")}


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """An SMTP server on loopback, configured as local mode's e-mail."""
    mailbox, port = Inbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_STARTTLS", "false")
    monkeypatch.setenv("NOTIFY_EMAIL_TO", "ops@example.com")
    yield mailbox
    controller.stop()


def test_each_piece_of_news_reaches_a_json_url_once_with_the_mails_subject_and_text(
    cloud: RunningSimulator,
    fwwatch: Captured,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    with serving_fake_slack(HOOK) as hook:
        # Given an Apprise json:// URL, and a baseline run (which tells nothing)
        monkeypatch.setenv("FWWATCH_APPRISE_URLS", json_url(hook))
        assert fwwatch.run()[0] == 0
        assert hook.received == []
        # When both products get a release, and two runs follow
        for product in PRODUCTS:
            cloud.cloud.publish_release(product, 0, "1.1.0")
        status, report = fwwatch.run()
        again, later = fwwatch.run()
    # Then each release was posted once, by the first of them
    assert (status, again) == (0, 0)
    ((name, outcome),) = apprise_outcomes(report).items()
    assert (outcome["sent"], outcome["failed"]) == (2, 0)
    assert apprise_outcomes(later)[name]["sent"] == 0
    assert len(hook.received) == 2
    # With the e-mail's subject as the title and its text as the message
    mails = {str(mail["Subject"]): mail.get_content() for mail in inbox.messages}
    posts = {post["title"]: post["message"] for post in hook.received}
    assert set(posts) == {
        f"fwwatch: 1.1.0 available - {product} Main module (2 devices)"
        for product in PRODUCTS.values()
    }
    assert posts == {
        subject: text.replace("\r\n", "\n").rstrip("\n") for subject, text in mails.items()
    }
    assert {post["type"] for post in hook.received} == {"info"}
    # And the URL's token shows nowhere: not in the notifier's name, output or state
    assert name.startswith("apprise:json:")
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("state.sqlite3*"))
    assert name.encode() in stored
    assert TOKEN not in name + fwwatch.printed
    assert TOKEN.encode() not in stored


def test_news_kept_while_the_server_is_down_goes_out_once_when_it_is_back(
    cloud: RunningSimulator, fwwatch: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an Apprise URL whose server is down, and a release after the baseline
    port = free_port()
    monkeypatch.setenv("FWWATCH_APPRISE_URLS", f"json://127.0.0.1:{port}{HOOK}")
    fwwatch.run()
    cloud.cloud.publish_release("plugprod0001", 0, "1.1.0")
    # When a run cannot deliver it
    down, report = fwwatch.run()
    # Then the run says so (exit 1) and keeps the news
    assert down == 1
    ((name, outcome),) = apprise_outcomes(report).items()
    assert (outcome["sent"], outcome["failed"]) == (0, 1)
    assert "Connection error" in outcome["error"]
    # And once the server is back, the next run delivers it, once
    with serving_fake_slack(HOOK, port=port) as hook:
        back, delivered = fwwatch.run()
        after, nothing = fwwatch.run()
    assert (back, after) == (0, 0)
    assert (apprise_outcomes(delivered)[name]["sent"], apprise_outcomes(nothing)[name]["sent"]) == (
        1,
        0,
    )
    assert len(hook.received) == 1
    assert TOKEN not in fwwatch.printed


def test_a_url_that_fails_holds_back_no_other(
    cloud: RunningSimulator, fwwatch: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving_fake_slack(HOOK) as failing, serving_fake_slack("/other") as working:
        # Given two URLs, separated by a comma, the first answering HTTP 500 once
        monkeypatch.setenv("FWWATCH_APPRISE_URLS", f"{json_url(failing)}, {json_url(working)}")
        fwwatch.run()
        failing.script = [(500, {})]
        cloud.cloud.publish_release("lampprod0001", 0, "1.1.0")
        # When two runs follow the release
        first, report = fwwatch.run()
        second, _ = fwwatch.run()
    # Then the working URL got it from the first, the failing one from the second: once each
    assert (first, second) == (1, 0)
    outcomes = apprise_outcomes(report)
    assert sorted((o["sent"], o["failed"]) for o in outcomes.values()) == [(0, 1), (1, 0)]
    assert (len(failing.received), len(working.received)) == (1, 1)
    (error,) = [o["error"] for o in outcomes.values() if o["failed"]]
    assert "Internal server error" in error
    assert TOKEN not in fwwatch.printed


def test_a_url_apprise_cannot_use_stops_the_run_naming_its_position_not_its_text(
    cloud: RunningSimulator, fwwatch: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FWWATCH_APPRISE_URLS", f"json://127.0.0.1:1/ok bogus://{TOKEN}")
    status, _, err = fwwatch.command("run")
    assert status == 2
    assert "FWWATCH_APPRISE_URLS: URL 2 of 2 has a scheme Apprise does not know" in err
    assert TOKEN not in err
    assert cloud.cloud.stats.snapshot()["requests"] == 0


def test_notify_test_posts_a_labelled_message_through_each_url(
    cloud: RunningSimulator, fwwatch: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving_fake_slack(HOOK) as hook:
        monkeypatch.setenv("FWWATCH_APPRISE_URLS", json_url(hook))
        status, out, _ = fwwatch.command("notify-test")
    assert status == 0
    (line,) = [line for line in out.splitlines() if line.startswith("apprise:")]
    assert line.startswith("apprise:json:")
    assert line.endswith(": ok")
    (post,) = hook.received
    assert post["title"] == "fwwatch test notification"
    assert TOKEN not in out


def test_with_a_digest_per_run_a_url_gets_one_message_for_the_whole_run(
    cloud: RunningSimulator, fwwatch: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving_fake_slack(HOOK) as hook:
        # Given FWWATCH_DIGEST_PER_RUN, as for e-mail
        monkeypatch.setenv("FWWATCH_APPRISE_URLS", json_url(hook))
        monkeypatch.setenv("FWWATCH_DIGEST_PER_RUN", "true")
        fwwatch.run()
        # When a run finds a release of each product
        for product in PRODUCTS:
            cloud.cloud.publish_release(product, 0, "1.1.0")
        status, report = fwwatch.run()
    # Then the URL got one message listing both releases
    assert status == 0
    assert [o["sent"] for o in apprise_outcomes(report).values()] == [1]
    (post,) = hook.received
    assert post["title"] == f"fwwatch: 2 releases, 4 devices - run {report['run_id']}"
    assert all(f"1.1.0 available - {name}" in post["message"] for name in PRODUCTS.values())


#: What chat services behind Apprise obey in a message's text: Discord's @everyone, @here,
#: <@user> and <@&role>, Mattermost's and Rocket.Chat's @channel and @all, Matrix's @room,
#: Zulip's @**all**, and Markdown's masked link [text](url) that hides where it goes.
MENTION = re.compile(r"@(?=[\w*&!])|\]\(")


def test_a_name_neither_pings_nor_links_on_a_chat_service_behind_apprise(
    make_simulator: Callable[..., Any],
    fwwatch: Captured,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Given devices named to ping everyone of a chat service, or to link away
    names = [
        "@channel",
        "@all Hi <@123456789> <@&987654321>",
        "@**all** @room @here",
        "[Update now](https://evil.example/fw)",
        "owner@example.com",
    ]
    simulator = make_simulator(
        fleet=Fleet(
            devices=[
                FleetDevice(
                    device_id=f"chat{i:02d}",
                    name=name,
                    product_id="plugprod0001",
                    product_name="@everyone plug",
                    category="cz",
                    channels=[FleetChannel(channel=0, current_version="1.0.0")],
                )
                for i, name in enumerate(names)
            ]
        )
    )
    point_cli_at(simulator, monkeypatch, tmp_path)
    # And Apprise's Mattermost URL (a Markdown chat, its webhook on loopback)
    with serving_fake_slack(HOOK) as hook:
        port = hook.url.split(":")[2].split("/")[0]
        monkeypatch.setenv("FWWATCH_APPRISE_URLS", f"mmost://127.0.0.1:{port}/{TOKEN}")
        fwwatch.run()
        simulator.cloud.publish_release("plugprod0001", 0, "1.1.0")
        # When a run tells the release
        status, _ = fwwatch.run()
    # Then the post shows every name, and none of them is a mention or a link
    assert status == 0
    (post,) = hook.received
    shown = post["text"].replace("\u200b", "")
    assert all(name in shown for name in names)
    assert MENTION.findall(post["text"]) == []
