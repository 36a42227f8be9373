"""Notifiers against real local servers: a Slack-like webhook and an SMTP server with STARTTLS."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from fwwatch.events import EventGroup, EventType, FirmwareEvent, group_events
from fwwatch.local.runner import deliver_pending
from fwwatch.local.store_sqlite import SqliteStore
from fwwatch.notify import (
    DeliveryUncertainError,
    EmailNotifier,
    JsonLinesNotifier,
    NotifyError,
    SlackNotifier,
    SmtpSettings,
)
from tests.integration.fakes import FakeSlack, serving_fake_slack

pytestmark = pytest.mark.integration

SMTP_PASSWORD = "smtp-pass-9c1e7f"


def a_group(devices: int = 3) -> EventGroup:
    events = [
        FirmwareEvent(
            type=EventType.UPDATE_AVAILABLE,
            device_id=f"dev{i:03d}",
            device_name=f"Plug {i}",
            channel=0,
            channel_name="Main module",
            product_id="p-plug",
            product_name="Smart plug",
            previous_version="1.0.0",
            current_version="1.0.0",
            target_version="1.1.0",
            occurred_at=datetime(2026, 11, 25, tzinfo=UTC),
        )
        for i in range(devices)
    ]
    (group,) = group_events(events)
    return group


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with serving_fake_slack("/services/T000/B000/secretpart") as fake:
        yield fake


async def test_slack_gets_blocks_and_a_text_fallback(slack: FakeSlack) -> None:
    await SlackNotifier(slack.url).send(a_group())
    (message,) = slack.received
    assert message["text"].startswith("Firmware 1.1.0 is available for 3 devices")
    assert [block["type"] for block in message["blocks"]][:2] == ["header", "section"]


async def test_slack_429_waits_as_told_then_delivers(slack: FakeSlack) -> None:
    slack.script = [(429, {"Retry-After": "1"})]
    await SlackNotifier(slack.url).send(a_group())
    assert len(slack.received) == 1
    assert slack.times[1] - slack.times[0] >= 0.95


async def test_slack_5xx_is_retried_a_bounded_number_of_times(slack: FakeSlack) -> None:
    slack.script = [(500, {})] * 3
    with pytest.raises(NotifyError, match="gave up after 2 attempts") as caught:
        await SlackNotifier(slack.url, max_attempts=2, max_wait_s=0.05).send(a_group())
    assert "secretpart" not in str(caught.value)
    assert type(caught.value) is NotifyError  # surely not posted: tried again next cycle
    assert slack.received == []


def slow_slack_notifier(slack: FakeSlack, **kwargs: Any) -> SlackNotifier:
    """A notifier whose timeouts are short (0.1 s, then 0.3 s for the retry of a post that
    may have arrived): a fake answering after 1 s is, to it, a webhook answering too late."""
    options: dict[str, Any] = {"timeout_s": 0.1, "retry_timeout_s": 0.3, "max_wait_s": 0.05}
    return SlackNotifier(slack.url, **{**options, **kwargs})


async def test_a_post_answered_too_late_twice_is_not_posted_a_third_time(
    slack: FakeSlack,
) -> None:
    # Given a webhook that posts each message but answers after the notifier's timeouts
    slack.delays = [1.0] * 4
    # When a message is sent
    with pytest.raises(DeliveryUncertainError) as caught:
        await slow_slack_notifier(slack).send(a_group())
    # Then it was tried once more only (of 4 attempts), and the error says it may have arrived
    assert len(slack.received) == 2
    assert "for the second time: the message may not have arrived" in str(caught.value)
    assert "secretpart" not in str(caught.value)


async def test_a_post_answered_too_late_once_is_retried_with_the_longer_timeout(
    slack: FakeSlack,
) -> None:
    # Given a webhook slow to answer the first post (1 s), in time for the retry's 10 s
    slack.delays = [1.0]
    # When a message is sent, then it is delivered: the one duplicate the rule allows
    await slow_slack_notifier(slack, retry_timeout_s=10).send(a_group())
    assert len(slack.received) == 2


async def test_5xx_after_a_post_answered_too_late_keep_their_retries_then_are_uncertain(
    slack: FakeSlack,
) -> None:
    # Given a first post answered too late, then 503s (which post nothing)
    slack.delays = [1.0]
    slack.script = [(200, {}), (503, {}), (503, {}), (503, {})]
    # When a message is sent
    with pytest.raises(DeliveryUncertainError, match="gave up after 4 attempts"):
        await slow_slack_notifier(slack).send(a_group())
    # Then the 503s were retried as before, and the message counts as maybe delivered,
    # for the first post may have arrived
    assert (len(slack.times), len(slack.received)) == (4, 1)


async def test_slack_refusing_the_payload_is_not_retried(slack: FakeSlack) -> None:
    slack.script = [(404, {})]
    with pytest.raises(NotifyError, match="HTTP 404"):
        await SlackNotifier(slack.url).send(a_group())
    assert len(slack.times) == 1


def test_a_plain_http_webhook_off_loopback_is_refused() -> None:
    with pytest.raises(ValueError, match="https"):
        SlackNotifier("http://hooks.slack.com/services/x")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 OK"


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


@pytest.fixture
def smtp_server(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls[0],
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    yield inbox, port
    controller.stop()


def smtp_settings(port: int, **changes: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "user": "fwwatch",
        "password": SMTP_PASSWORD,
        "sender": "fwwatch@example.com",
        "recipients": ("ops@example.com", "lead@example.com"),
    }
    values.update(changes)
    return SmtpSettings(**values)


async def test_email_goes_out_over_starttls_with_login(
    smtp_server: tuple[Inbox, int], tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    inbox, port = smtp_server
    await EmailNotifier(smtp_settings(port), tls_context=tls[1]).send(a_group(30))
    (message,) = inbox.messages
    assert message["Subject"].startswith("fwwatch: 1.1.0 available - Smart plug")
    assert message["To"] == "ops@example.com, lead@example.com"
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "30 devices" in body
    assert "and 10 more" in body


async def test_email_to_a_server_that_is_down_raises_without_the_password(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    notifier = EmailNotifier(smtp_settings(free_port(), timeout_s=2), tls_context=tls[1])
    with pytest.raises(NotifyError) as caught:
        await notifier.send(a_group())
    assert "failed" in str(caught.value)
    assert SMTP_PASSWORD not in str(caught.value) + repr(notifier)


async def test_jsonl_appends_one_line_per_group(tmp_path: Path) -> None:
    path = tmp_path / "news" / "fwwatch.jsonl"
    notifier = JsonLinesNotifier(path)
    await notifier.send(a_group(2))
    await notifier.send(a_group(1))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["device_count"] for line in lines] == [2, 1]


def queue_news(store: SqliteStore, group: EventGroup, *notifiers: str) -> None:
    store.save_batch(
        states=[],
        events=list(group.events),
        checks=[],
        notifiers=list(notifiers),
        run_id="r1",
        now=datetime(2026, 11, 25, tzinfo=UTC),
    )


async def test_news_refused_by_slack_429_is_delivered_next_cycle(
    slack: FakeSlack, tmp_path: Path
) -> None:
    # Given queued news and Slack asking to wait longer than a cycle will
    notifier = SlackNotifier(slack.url, max_wait_s=5)
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        queue_news(store, a_group(4), "slack")
        slack.script = [(429, {"Retry-After": "3600"})]
        first = await deliver_pending(store, [notifier])
        # When the next cycle comes
        second = await deliver_pending(store, [notifier])
        third = await deliver_pending(store, [notifier])
    # Then the news arrives once
    assert (first["slack"].failed, second["slack"].sent, third["slack"].sent) == (1, 1, 0)
    assert len(slack.received) == 1


async def test_news_whose_post_went_unanswered_twice_is_not_posted_by_later_cycles(
    slack: FakeSlack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given queued news, and a webhook that posts everything but answers too late
    slack.delays = [1.0] * 10
    notifier = slow_slack_notifier(slack)
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        queue_news(store, a_group(4), "slack")
        # When a cycle delivers it, and two more cycles come
        with caplog.at_level(logging.WARNING, logger="fwwatch.local"):
            first = await deliver_pending(store, [notifier])
        later = [await deliver_pending(store, [notifier]) for _ in range(2)]
    # Then the subscriber got it twice at most, and the later cycles did not post it again
    assert len(slack.received) == 2
    assert (first["slack"].uncertain, first["slack"].sent, first["slack"].failed) == (1, 0, 0)
    assert [(c["slack"].sent, c["slack"].failed, c["slack"].uncertain) for c in later] == [
        (0, 0, 0),
        (0, 0, 0),
    ]
    # And the delivery rows say so; a warning said the message may not have arrived
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:
        rows = db.execute("SELECT delivered_at, attempts, last_error FROM delivery").fetchall()
    assert len(rows) == 4
    assert all(at is not None and attempts == 1 for at, attempts, _ in rows)
    assert all(error.startswith("uncertain: Slack did not answer within") for *_, error in rows)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("slack: the message may not have arrived, and is not sent again")
    assert "secretpart" not in warning


async def test_news_not_sent_while_smtp_is_down_goes_out_when_it_is_back(
    tls: tuple[ssl.SSLContext, ssl.SSLContext], tmp_path: Path
) -> None:
    port = free_port()
    notifier = EmailNotifier(smtp_settings(port, timeout_s=2), tls_context=tls[1])
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        queue_news(store, a_group(2), "email")
        down = await deliver_pending(store, [notifier])
        inbox = Inbox()
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            tls_context=tls[0],
            require_starttls=True,
            authenticator=lambda *args: AuthResult(success=True),
            auth_require_tls=True,
        )
        controller.start()
        try:
            up = await deliver_pending(store, [notifier])
        finally:
            controller.stop()
    assert (down["email"].failed, up["email"].sent) == (1, 1)
    assert len(inbox.messages) == 1


def a_release_of(product_id: str, product_name: str, devices: int) -> EventGroup:
    """A group like ``a_group``'s, of another product and its own devices."""
    group = a_group(devices)
    events = [
        event.model_copy(
            update={
                "product_id": product_id,
                "product_name": product_name,
                "device_id": f"{product_id}-{n}",
            }
        )
        for n, event in enumerate(group.events)
    ]
    (other,) = group_events(events)
    return other


async def test_the_per_run_digest_sends_one_mail_listing_every_release_while_slack_gets_each(
    smtp_server: tuple[Inbox, int],
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
    slack: FakeSlack,
    tmp_path: Path,
) -> None:
    inbox, port = smtp_server
    email = EmailNotifier(smtp_settings(port), tls_context=tls[1])
    # Given a run's news of three releases, queued for e-mail and Slack
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        for group in (
            a_group(8),
            a_release_of("p-sensor", "Door sensor", 2),
            a_release_of("p-lock", "Smart lock", 1),
        ):
            queue_news(store, group, "email", "slack")
        # When it is delivered with the per-run digest, and a later cycle comes
        first = await deliver_pending(
            store, [email, SlackNotifier(slack.url)], run_id="r9", digest_per_run=True
        )
        later = await deliver_pending(
            store, [email, SlackNotifier(slack.url)], run_id="r10", digest_per_run=True
        )
    # Then e-mail got one message for the run, naming each release and the run
    (message,) = inbox.messages
    assert message["Subject"] == "fwwatch: 3 releases, 11 devices - run r9"
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    for subject in ("1.1.0 available - Smart plug", "Door sensor", "Smart lock"):
        assert subject in body
    assert "... and 3 more" in body  # 8 plugs, 5 listed
    # And Slack one post per release; nothing went out twice
    assert len(slack.received) == 3
    assert (first["email"].sent, first["slack"].sent) == (1, 3)
    assert (later["email"].sent, later["slack"].sent) == (0, 0)


async def test_a_per_run_digest_that_could_not_be_sent_keeps_all_its_news_for_the_next_cycle(
    tls: tuple[ssl.SSLContext, ssl.SSLContext], tmp_path: Path
) -> None:
    # Given two releases queued for e-mail, and the SMTP server down
    port = free_port()
    email = EmailNotifier(smtp_settings(port, timeout_s=2), tls_context=tls[1])
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        queue_news(store, a_group(2), "email")
        queue_news(store, a_release_of("p-lock", "Smart lock", 1), "email")
        down = await deliver_pending(store, [email], run_id="r1", digest_per_run=True)
        # When the server is back for the next cycle
        inbox = Inbox()
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            tls_context=tls[0],
            require_starttls=True,
            authenticator=lambda *args: AuthResult(success=True),
            auth_require_tls=True,
        )
        controller.start()
        try:
            up = await deliver_pending(store, [email], run_id="r2", digest_per_run=True)
        finally:
            controller.stop()
        left = store.pending("email")
    # Then the next cycle sent both releases in one message, and nothing is left
    assert (down["email"].failed, up["email"].sent, left) == (1, 1, [])
    (message,) = inbox.messages
    assert message["Subject"] == "fwwatch: 2 releases, 3 devices - run r2"
