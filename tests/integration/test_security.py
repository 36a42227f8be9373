"""Security guarantees, end to end: secrets never leak, hostile input never reaches a URL,
and TLS cannot be switched off.

Everything runs on loopback: the Tuya simulator, a fake Slack, a closed SMTP port, moto.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import os
import socket
import ssl
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
import trustme
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from fwwatch.cli import main
from fwwatch.local.config import LocalSettings
from fwwatch.notify import EmailNotifier, NotifyError, SlackNotifier, SmtpSettings
from fwwatch.simulator import (
    Fleet,
    FleetChannel,
    FleetDevice,
    FleetFileError,
    SimulatedCloud,
    load_fleet,
    running_simulator,
)
from fwwatch.tuya import (
    ConfigError,
    InvalidDeviceIdError,
    RetryPolicy,
    Token,
    TuyaClient,
    TuyaConfigError,
    TuyaFatalError,
    TuyaSettings,
    TuyaTransientError,
)
from tests.aws.provision import provision_stack
from tests.integration.fakes import serving_fake_slack
from tests.integration.pipeline_harness import Pipeline

#: The module-scoped scenarios below run once: the suite's workers (pytest -n) keep this
#: module's tests on one of them.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("secrets scenarios")]

SECRET = "k3Jd9Qx2LmP8vR4tYw6Zb1Nc7Hf5Gs0A"
WRONG_SECRET = "Vb7Rt2Lq9Xw4Mz8Kp3Nd6Hs1Gf5Jc0Y"
ACCESS_ID = "fwwsecaccessid000001"
SMTP_PASSWORD = "pW9-smtp-Qz4Lm7Rt2Xv8Kc"
SLACK_TOKEN = "Xy7Kq2Lm9Pv4Rt8Wz3Nb6Hc1"
SLACK_PATH = f"/services/T0A1B2C3D/B4E5F6G7H/{SLACK_TOKEN}"
APPRISE_TOKEN = "Ap9Rk4Tz7Lq2Wm8Xc3Vb6Nd1"
APPRISE_PASSWORD = "aPw-7Hq2Zx9Lm4Rt8Kc"
APPRISE_PATH = f"/apprise/{APPRISE_TOKEN}"
PLUG = "secplug00000001"


def fleet() -> Fleet:
    def device(device_id: str, name: str, **extra: Any) -> FleetDevice:
        return FleetDevice(
            device_id=device_id,
            name=name,
            product_id=PLUG,
            product_name="Secure plug",
            category="cz",
            channels=[FleetChannel(channel=0, current_version="1.0.0")],
            **extra,
        )

    return Fleet(
        devices=[
            device("secdev01", "Kitchen plug"),
            device("secdev02", "Desk plug"),
            device("secdev03", "Garage plug", online=False, error=2001),
        ]
    )


# ---------------------------------------------------------------------- finding secrets


def disguises(secret: str) -> set[str]:
    """The secret as text could carry it: plain, percent-encoded, base64 (any alignment), hex."""
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote_plus(secret), raw.hex(), raw.hex().upper()}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for shift in range(3):
            encoded = encode(b"\0" * shift + raw).decode()
            # Keep only the characters that come from the secret alone, wherever it started.
            forms.add(encoded[4 if shift else 0 : -4])
    return {form for form in forms if len(form) >= 12}


def leaks(haystack: str | bytes, secrets: Mapping[str, str]) -> list[str]:
    """Which secrets (by name, in which disguise) occur in ``haystack``."""
    found = []
    for name, secret in secrets.items():
        for form in disguises(secret):
            needle: str | bytes = form.encode() if isinstance(haystack, bytes) else form
            at = haystack.find(needle)  # type: ignore[arg-type]
            if at >= 0:
                context = haystack[max(0, at - 60) : at + len(form) + 20]
                found.append(f"{name} as {form!r} in ...{context!r}...")
    return found


def test_the_leak_finder_sees_a_secret_in_every_disguise() -> None:
    # Given a secret hidden plainly, percent-encoded, hex'd, and base64'd at every alignment
    secret = "p@ss/word+with=odd&chars?"
    raw = secret.encode()
    hidden = [
        f"x {secret} y",
        "url=" + quote(secret, safe=""),
        "form=" + quote_plus(secret),
        raw.hex(),
        *(base64.b64encode(prefix + raw).decode() for prefix in (b"", b"u", b"us", b"user:")),
        *(base64.urlsafe_b64encode(prefix + raw).decode() for prefix in (b"", b"u", b"us")),
    ]
    # When the leak finder looks at each text, as str and as bytes, and at texts without it
    # Then it finds the secret every time, and only then
    assert [text for text in hidden if not leaks(text, {"s": secret})] == []
    assert [text for text in hidden if not leaks(text.encode(), {"s": secret})] == []
    assert leaks("nothing to see here", {"s": secret}) == []
    assert leaks(base64.b64encode(b"p@ss/word+with=odd").decode(), {"s": secret}) == []


# ---------------------------------------------------------------------- shared fixtures


class TokenTap:
    """Records every access and refresh token the simulator hands out (its public ``handle``)."""

    def __init__(self, sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sim = sim
        self.granted: set[str] = set()
        original = sim.cloud.handle

        def handle(method: str, path: str, query: Any, headers: Any, body: bytes) -> Any:
            answer = original(method, path, query, headers, body)
            if path.startswith("/v1.0/token"):
                try:
                    result = json.loads(answer.body).get("result") or {}
                except (ValueError, AttributeError):
                    return answer
                for key in ("access_token", "refresh_token"):
                    if isinstance(result, dict) and result.get(key):
                        self.granted.add(str(result[key]))
            return answer

        monkeypatch.setattr(sim.cloud, "handle", handle)

    def tokens(self) -> dict[str, str]:
        live = self.sim.cloud.live_tokens()
        every = self.granted | {p.access_token for p in live} | {p.refresh_token for p in live}
        return {f"tuya token #{n}": token for n, token in enumerate(sorted(every))}


def secrets_with(tokens: Mapping[str, str]) -> dict[str, str]:
    return {
        "TUYA_ACCESS_SECRET": SECRET,
        "wrong TUYA_ACCESS_SECRET": WRONG_SECRET,
        "SMTP_PASSWORD": SMTP_PASSWORD,
        "Slack webhook token": SLACK_TOKEN,
        "Slack webhook path": SLACK_PATH,
        "Apprise URL token": APPRISE_TOKEN,
        "Apprise URL password": APPRISE_PASSWORD,
        **tokens,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LogTap(logging.Handler):
    """Every record of every logger, with httpx, httpcore, botocore... all at DEBUG."""

    LOGGERS = (
        *("", "httpx", "httpcore", "fwwatch", "aws_lambda_powertools", "aiohttp", "botocore"),
        *("apprise", "urllib3"),
    )

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self, keep: Callable[[str], bool] = lambda name: True) -> str:
        """Each record formatted, with its message, its arguments and extra fields (all of
        ``vars(record)``) and its exception's full traceback."""
        parts = []
        for record in self.records:
            if not keep(record.name):
                continue
            parts += [self.format(record), record.getMessage(), repr(vars(record))]
            if record.exc_info and record.exc_info[1] is not None:
                parts.append("".join(traceback.format_exception(record.exc_info[1])))
        return "\n".join(parts)

    def names(self) -> set[str]:
        return {record.name for record in self.records}


@contextmanager
def tapped_logs() -> Iterator[LogTap]:
    tap = LogTap()
    loggers = [logging.getLogger(name) for name in LogTap.LOGGERS]
    levels = [logger.level for logger in loggers]
    # The root sees what propagates; loggers that do not propagate get the tap themselves,
    # as do the loggers above, which may stop propagating later (Apprise's, once imported).
    isolated = [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    isolated += [logger for logger in loggers[1:] if logger not in isolated]
    for logger in [logging.getLogger(), *isolated]:
        logger.addHandler(tap)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    try:
        yield tap
    finally:
        for logger in [logging.getLogger(), *isolated]:
            logger.removeHandler(tap)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@pytest.fixture
def http_requests(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Every request any httpx transport sends in the test (they still go out).

    Recorded where every request passes: the transports, which both httpx's clients and the
    Tuya client's connections send through.
    """
    sent: list[httpx.Request] = []
    send_async = httpx.AsyncHTTPTransport.handle_async_request
    send_sync = httpx.HTTPTransport.handle_request

    async def record_async(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> Any:
        sent.append(request)
        return await send_async(self, request)

    def record_sync(self: httpx.HTTPTransport, request: httpx.Request) -> Any:
        sent.append(request)
        return send_sync(self, request)

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", record_async)
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", record_sync)
    return sent


def clean_environment(monkeypatch: pytest.MonkeyPatch, cwd: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("TUYA_", "SMTP_", "SLACK_", "FWWATCH_", "NOTIFY_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(cwd)  # no stray .env file


# ---------------------------------------------------------------------- 1. secrets, local mode


@dataclass
class LocalScenario:
    """What a series of CLI runs with real-looking secrets left behind."""

    statuses: dict[str, int]
    out: str
    err: str
    reports: list[dict[str, Any]]
    logs: str
    state_files: dict[str, bytes]
    jsonl: bytes
    secrets: dict[str, str]
    slack_posts: int
    apprise_posts: int
    refreshes: int
    log_names: set[str]


@pytest.fixture(scope="module")
def local_scenario(tmp_path_factory: pytest.TempPathFactory) -> LocalScenario:
    """Runs once for the module: every test below judges one of its outputs."""
    work = tmp_path_factory.mktemp("secrets-local")
    # A token lifetime under the client's refresh margin: every call refreshes its token, so
    # refresh tokens travel in URLs (/v1.0/token/{refresh_token}) all through the run.
    cloud = SimulatedCloud(fleet(), access_id=ACCESS_ID, access_secret=SECRET, token_ttl_s=250)
    with ExitStack() as contexts:
        sim = contexts.enter_context(running_simulator(cloud))
        slack = contexts.enter_context(serving_fake_slack(SLACK_PATH))
        apprise = contexts.enter_context(serving_fake_slack(APPRISE_PATH))
        apprise_url = apprise.url.replace("http://", f"json://fwwatch:{APPRISE_PASSWORD}@")
        env = contexts.enter_context(pytest.MonkeyPatch.context())
        tap = TokenTap(sim, env)
        clean_environment(env, work)
        for name, value in {
            "TUYA_ENDPOINT": sim.url,
            "TUYA_ACCESS_ID": ACCESS_ID,
            "TUYA_ACCESS_SECRET": SECRET,
            "FWWATCH_STATE": str(work / "state.sqlite3"),
            "FWWATCH_JSONL": str(work / "news.jsonl"),
            "SLACK_WEBHOOK_URL": slack.url,
            # Nothing listens there: delivery fails and the error path runs, after the
            # password has been handed to the notifier.
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(free_port()),
            "SMTP_USER": "fwwatch",
            "SMTP_PASSWORD": SMTP_PASSWORD,
            "NOTIFY_EMAIL_TO": "ops@example.com",
            # One that works, one where nothing listens (its failure is reported).
            "FWWATCH_APPRISE_URLS": f"{apprise_url} "
            f"json://fwwatch:{APPRISE_PASSWORD}@127.0.0.1:{free_port()}{APPRISE_PATH}",
            # Few tries: the refused tokens below are retried briefly, not for half a minute.
            "TUYA_RETRY_ATTEMPTS": "3",
            # Devices not checked are checked again at once, not after 30 s and 60 s.
            "FWWATCH_RETRY_DELAY_S": "0",
        }.items():
            env.setenv(name, value)
        logs = contexts.enter_context(tapped_logs())
        statuses: dict[str, int] = {}
        out, err, reports = [], [], []

        def cli(label: str, *args: str) -> None:
            stdout, stderr = io.StringIO(), io.StringIO()
            with redirect_stdout(stdout), redirect_stderr(stderr):
                statuses[label] = main(["-vv", *args])
            out.append(stdout.getvalue())
            err.append(stderr.getvalue())
            if args[0] == "run" and "--json" in args and statuses[label] != 2:
                reports.append(json.loads(stdout.getvalue()))

        cli("baseline", "run", "--json")
        sim.cloud.publish_release(PLUG, 0, "1.1.0")
        cli("news", "run")
        cli("check", "check", "--json", "secdev01", "secdev03")
        cli("devices", "devices", "--json")
        cli("status", "status")
        cli("status json", "status", "--json")
        cli("notify-test", "notify-test")
        sim.cloud.revoke_tokens_after(1)  # the token dies mid-run: a new grant, then on
        sim.cloud.mark_installed("secdev01")
        cli("revoked", "run", "--json")
        sim.cloud.faults.inject_error(1010, count=50)  # every fresh token refused: not checked
        cli("refused tokens", "run")
        sim.cloud.faults.clear()
        env.setenv("TUYA_ACCESS_SECRET", WRONG_SECRET)
        cli("wrong secret run", "run", "--json")
        cli("wrong secret check", "check", "secdev01")
        return LocalScenario(
            statuses=statuses,
            out="".join(out),
            err="".join(err),
            reports=reports,
            logs=logs.text(),
            state_files={p.name: p.read_bytes() for p in work.glob("state.sqlite3*")},
            jsonl=(work / "news.jsonl").read_bytes(),
            secrets=secrets_with(tap.tokens()),
            slack_posts=len(slack.received),
            apprise_posts=len(apprise.received),
            refreshes=sim.cloud.stats.snapshot()["refreshes"],
            log_names=logs.names(),
        )


def test_the_local_scenario_really_handles_every_secret(local_scenario: LocalScenario) -> None:
    # Given the CLI runs of the scenario (baseline, news, check, status, notify-test,
    # a revoked token, refused tokens, a wrong secret)
    s = local_scenario
    # Then every secret was in play: tokens granted and refreshed, Slack posted to, e-mail
    # tried and failed, the wrong secret refused, and debug logs of httpx captured
    assert len([name for name in s.secrets if name.startswith("tuya token")]) >= 10
    assert s.refreshes >= 3
    assert s.slack_posts >= 2
    assert s.apprise_posts >= 2
    assert "Connection error" in s.out
    assert "email: FAILED: e-mail via 127.0.0.1" in s.out
    assert s.statuses["refused tokens"] == 1  # transient: reported, never fatal
    assert s.statuses["wrong secret run"] == 2
    assert "sign invalid" in s.err
    assert {"httpx", "httpcore.connection", "fwwatch.tuya", "apprise"} <= s.log_names
    assert "urllib3.connectionpool" in s.log_names
    assert "/v1.0/token/<redacted>" in s.logs
    assert s.jsonl
    assert s.state_files["state.sqlite3"]


def test_no_command_prints_a_secret_on_stdout_or_stderr(local_scenario: LocalScenario) -> None:
    # Given the scenario's CLI runs, successful and failing
    # When their stdout and stderr are searched for every secret, in every disguise
    found = leaks(local_scenario.out + local_scenario.err, local_scenario.secrets)
    # Then none is there
    assert found == []


def test_no_log_record_holds_a_secret_even_at_debug_level(local_scenario: LocalScenario) -> None:
    # Given every log record of the scenario, every logger at DEBUG (httpx and httpcore too)
    # When they are searched for every secret
    found = leaks(local_scenario.logs, local_scenario.secrets)
    # Then none is there (the refresh token in the refresh URL is redacted)
    assert found == []


def test_the_sqlite_state_file_holds_no_secret(local_scenario: LocalScenario) -> None:
    # Given the bytes of the state file (and its WAL)
    # When they are searched for every secret
    found = [
        f"{name}: {leak}"
        for name, data in local_scenario.state_files.items()
        for leak in leaks(data, local_scenario.secrets)
    ]
    # Then none is there
    assert found == []


def test_the_json_lines_file_holds_no_secret(local_scenario: LocalScenario) -> None:
    # Given the JSON-lines notifier's file
    # When it is searched for every secret
    # Then none is there
    assert leaks(local_scenario.jsonl, local_scenario.secrets) == []


def test_run_reports_hold_no_secret(local_scenario: LocalScenario) -> None:
    # Given the reports `fwwatch run --json` printed (a failed notifier among them)
    reports = json.dumps(local_scenario.reports)
    # When they are searched for every secret
    # Then none is there
    assert any(r["notifications"]["email"]["error"] for r in local_scenario.reports)
    assert leaks(reports, local_scenario.secrets) == []


# ---------------------------------------------------------------------- 1. secrets, in process


def full_text(error: BaseException) -> str:
    """str, repr and the formatted traceback of an error and of every error chained to it."""
    parts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


async def test_a_wrong_secret_error_never_shows_either_secret(
    make_simulator: Callable[..., Any],
) -> None:
    # Given a cloud whose project secret is SECRET, and a client configured with another one
    sim = make_simulator(fleet=fleet(), access_id=ACCESS_ID, access_secret=SECRET)
    settings = TuyaSettings(access_id=ACCESS_ID, access_secret=WRONG_SECRET, endpoint=sim.url)
    # When the client asks for firmware
    async with TuyaClient(settings) as tuya:
        with pytest.raises(TuyaFatalError) as refused:
            await tuya.get_firmware("secdev01")
    # Then the error says what to fix, and shows neither secret in str, repr or traceback
    assert "TUYA_ACCESS_SECRET" in str(refused.value)
    assert leaks(full_text(refused.value), secrets_with({})) == []


async def test_a_failed_refresh_never_shows_its_token_in_the_error_or_the_logs(
    make_simulator: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a client whose token must be refreshed on every call and lives only seconds (so
    # that it cannot serve on while renewing fails), and a cloud that then answers every
    # token call (refresh and new grant) with HTTP 503
    sim = make_simulator(fleet=fleet(), access_id=ACCESS_ID, access_secret=SECRET, token_ttl_s=4)
    tap = TokenTap(sim, monkeypatch)
    settings = TuyaSettings(access_id=ACCESS_ID, access_secret=SECRET, endpoint=sim.url)
    with tapped_logs() as logs:
        async with TuyaClient(settings, retry=RetryPolicy(attempts=2, base_s=0.001)) as tuya:
            await tuya.get_firmware("secdev01")
            sim.cloud.faults.inject_http_status(503, count=20, path_contains="/v1.0/token")
            # When the next call needs a refresh, which fails, then a grant, which fails too
            with pytest.raises(TuyaTransientError) as failed:
                await tuya.get_firmware("secdev02")
    # Then the refresh call is logged without its token, and neither the error nor any log
    # record holds a token
    logged = logs.text()
    assert "/v1.0/token/<redacted>" in logged
    assert leaks(full_text(failed.value) + logged, secrets_with(tap.tokens())) == []


def test_settings_client_and_token_reprs_hide_the_secrets() -> None:
    # Given settings, a client and a token built from real-looking secrets
    settings = TuyaSettings(
        access_id=ACCESS_ID, access_secret=SECRET, endpoint="https://openapi.tuyaeu.com"
    )
    client = TuyaClient(settings)
    tokens = {
        "access token": "9c1f4e2ab7d03856e1f2a4b6c8d0e2f4",
        "refresh token": "5d8e0a3c6f9b2d4e7a1c3e5f7b9d1f3a",
    }
    token = Token(
        access_token=tokens["access token"],
        refresh_token=tokens["refresh token"],
        expires_at=1.0,
    )
    # When they are shown (repr, str, and the settings as a dict and as JSON)
    shown = "\n".join(
        [
            repr(settings),
            str(settings),
            str(settings.model_dump()),
            settings.model_dump_json(),
            repr(client),
            repr(token),
            str(token),
        ]
    )
    # Then no secret is visible
    assert leaks(shown, secrets_with(tokens)) == []


async def test_a_failing_slack_webhook_never_shows_its_url() -> None:
    # Given a Slack webhook that answers 500, then drops the connection
    answers = iter([httpx.Response(500, text="oops")])

    def slack(request: httpx.Request) -> httpx.Response:
        answer = next(answers, None)
        if answer is None:
            raise httpx.ConnectError("connection reset", request=request)
        return answer

    notifier = SlackNotifier(
        f"https://hooks.slack.com{SLACK_PATH}",
        transport=httpx.MockTransport(slack),
        max_attempts=2,
        max_wait_s=0.01,
    )
    # When a message cannot be delivered
    with pytest.raises(NotifyError) as failed:
        await notifier.send_test()
    # Then the error and the notifier's repr never show the webhook's secret path
    assert "Slack" in str(failed.value)
    assert leaks(full_text(failed.value) + repr(notifier), secrets_with({})) == []


async def test_a_failing_smtp_server_never_shows_the_password() -> None:
    # Given e-mail settings with a password, pointing at a port where nothing listens
    settings = SmtpSettings(
        host="127.0.0.1",
        port=free_port(),
        user="fwwatch",
        password=SMTP_PASSWORD,
        sender="fwwatch@example.com",
        recipients=("ops@example.com",),
    )
    notifier = EmailNotifier(settings)
    # When a message cannot be delivered
    with pytest.raises(NotifyError) as failed:
        await notifier.send_test()
    # Then neither the error nor the notifier nor its settings show the password
    shown = full_text(failed.value) + repr(notifier) + repr(settings) + settings.model_dump_json()
    assert leaks(shown, secrets_with({})) == []


def test_local_settings_never_show_the_slack_url_or_the_smtp_password() -> None:
    # Given local settings read from an environment holding both secrets
    settings = LocalSettings.load(
        {
            "SLACK_WEBHOOK_URL": f"https://hooks.slack.com{SLACK_PATH}",
            "SMTP_HOST": "smtp.example.com",
            "SMTP_USER": "fwwatch",
            "SMTP_PASSWORD": SMTP_PASSWORD,
            "NOTIFY_EMAIL_TO": "ops@example.com",
        }
    )
    # When they are shown
    shown = repr(settings) + str(settings.model_dump()) + settings.model_dump_json()
    # Then no secret is visible
    assert leaks(shown, secrets_with({})) == []


# ---------------------------------------------------------------------- 1. secrets, on AWS


@contextmanager
def powertools_output(env: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The functions' Powertools Logger output (JSON lines), at DEBUG.

    Powertools reads POWERTOOLS_LOG_LEVEL and binds its handler to sys.stdout when
    fwwatch.aws.observability is first imported, before any test runs: so the variable is
    set for form, and the level and the stream are set here, then put back.
    """
    from fwwatch.aws.observability import logger

    env.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    buffer = io.StringIO()
    target = logging.getLogger(logger.name)
    handlers = [h for h in target.handlers if isinstance(h, logging.StreamHandler)]
    assert handlers, "Powertools' stdout handler not found"
    streams = [handler.setStream(buffer) for handler in handlers]
    level = target.level
    logger.setLevel("DEBUG")
    try:
        yield buffer
    finally:
        target.setLevel(level)
        for handler, stream in zip(handlers, streams, strict=True):
            handler.setStream(stream)


def is_botocore(name: str) -> bool:
    return name == "botocore" or name.startswith("botocore.")


@dataclass
class AwsScenario:
    powertools: str
    logs: str
    botocore_logs: str
    out: str
    answers: str
    notifications: str
    dead_letters: str
    state_items: str
    control_items: str
    run_items: str
    secrets: dict[str, str]
    slack_calls: int
    fatal: str


@pytest.fixture(scope="module")
def aws_scenario() -> AwsScenario:
    """Runs once for the module, in moto: every test below judges one of its outputs."""
    with ExitStack() as contexts:
        env = contexts.enter_context(pytest.MonkeyPatch.context())
        cloud = SimulatedCloud(fleet(), access_id=ACCESS_ID, access_secret=SECRET)
        sim = contexts.enter_context(running_simulator(cloud))
        tap = TokenTap(sim, env)
        contexts.enter_context(mock_aws())
        stack = provision_stack(
            parameters={
                "TuyaEndpoint": sim.url,
                "DevicesPerMessage": 2,
                "LogLevel": "DEBUG",
                "DigestDelaySeconds": 0,
            },
            tuya_secret={"access_id": ACCESS_ID, "access_secret": SECRET},
            slack_webhook_url=f"https://hooks.slack.com{SLACK_PATH}",
        )
        powertools = contexts.enter_context(powertools_output(env))
        stdout, stderr = io.StringIO(), io.StringIO()
        contexts.enter_context(redirect_stdout(stdout))
        contexts.enter_context(redirect_stderr(stderr))
        # Only what the functions log is judged: the test's own provisioning calls (which
        # hand the secrets to moto) happen before the tap, or while it is set aside.
        logs = contexts.enter_context(tapped_logs())
        return run_aws_scenario(sim, tap, stack, powertools, logs, stdout, stderr)


def run_aws_scenario(
    sim: Any,
    tap: TokenTap,
    stack: Any,
    powertools: io.StringIO,
    tapped: LogTap,
    stdout: io.StringIO,
    stderr: io.StringIO,
) -> AwsScenario:
    overrides = {"RETRY_DELAY_S": "0", "TUYA_QPS": "500", "POWERTOOLS_LOG_LEVEL": "DEBUG"}
    pipeline = Pipeline(stack, overrides=overrides)
    logs, botocore_logs = [], []

    def keep_logs() -> None:
        logs.append(tapped.text(lambda name: not is_botocore(name)))
        botocore_logs.append(tapped.text(is_botocore))
        tapped.records.clear()

    answers: list[Any] = []
    envelopes: list[dict[str, Any]] = []

    def cycle(p: Pipeline) -> None:
        answers.append(p.schedule())
        answers.extend(p.run_checkers())
        answers.extend(p.run_differ())
        answers.extend(p.run_digest())
        envelopes.extend(p.notifications())

    cycle(pipeline)
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    sim.cloud.faults.inject_http_status(503, count=1, path_contains="secdev02")  # a DEBUG retry
    cycle(pipeline)
    slack_calls: list[httpx.Request] = []

    def slack(request: httpx.Request) -> httpx.Response:
        slack_calls.append(request)
        return httpx.Response(500 if len(slack_calls) == 1 else 200, text="oops")

    service = pipeline.slack_service(transport=httpx.MockTransport(slack), max_wait_s=0.01)
    answers.append(pipeline.deliver_to_slack(envelopes, service))
    keep_logs()
    # Then the secret is replaced by a wrong one: the scheduler stops, the checker fails.
    secret_name = pipeline.env("CheckerFunction")["TUYA_SECRET_NAME"]
    stack.client("secretsmanager").put_secret_value(
        SecretId=secret_name,
        SecretString=json.dumps({"access_id": ACCESS_ID, "access_secret": WRONG_SECRET}),
    )
    parameters.clear_caches()
    broken = Pipeline(stack, overrides=overrides)
    tapped.records.clear()
    with pytest.raises(TuyaFatalError) as stopped:
        broken.schedule(by_hand=True)  # a new run (the scheduled ones were listed already)
    broken.send_raw(json.dumps({"run_id": "wrongsecret1", "device_ids": ["secdev01"]}))
    answers.extend(broken.run_checkers())
    keep_logs()
    dynamodb = stack.client("dynamodb")
    state = dynamodb.scan(TableName=stack.table_name("StateTable"))["Items"]
    control = dynamodb.scan(TableName=stack.table_name("ControlTable"))["Items"]
    runs = dynamodb.scan(TableName=stack.table_name("RunTable"))["Items"]
    # The shared token item necessarily holds the access token: that is the token's storage
    # (encrypted with the stack's KMS key), not a log or a message, so it is left out.
    control_without_token = [item for item in control if item["pk"]["S"] != "tuya-token"]
    assert len(control_without_token) == len(control) - 1
    return AwsScenario(
        powertools=powertools.getvalue(),
        logs="\n".join(logs),
        botocore_logs="\n".join(botocore_logs),
        out=stdout.getvalue() + stderr.getvalue(),
        answers=json.dumps(answers, default=str),
        notifications=json.dumps(envelopes),
        dead_letters=json.dumps(broken.dead_letters()),
        state_items=json.dumps(state),
        control_items=json.dumps(control_without_token),
        run_items=json.dumps(runs),
        secrets=secrets_with(tap.tokens()),
        slack_calls=len(slack_calls),
        fatal=full_text(stopped.value),
    )


def test_the_aws_scenario_really_handles_every_secret(aws_scenario: AwsScenario) -> None:
    # Given two cycles (one call retried), a Slack delivery that failed once, a wrong secret
    s = aws_scenario
    # Then tokens were granted, Powertools logged at DEBUG, Slack was retried, the wrong
    # secret stopped the scheduler and the checker's records failed
    assert any(name.startswith("tuya token") for name in s.secrets)
    assert '"level":"DEBUG"' in s.powertools
    assert '"message":"run scheduled"' in s.powertools
    assert "botocore." in s.botocore_logs  # botocore's records were captured
    assert s.slack_calls == 2
    assert "sign invalid" in s.fatal
    assert "batchItemFailures" in s.answers
    assert "Firmware 1.1.0 is available" in s.notifications
    assert '"news#' in s.run_items  # the run's news was kept there before its digest


@pytest.mark.parametrize(
    "sink",
    [
        "powertools",
        "logs",
        pytest.param(
            "botocore_logs",
        ),
        "out",
        "answers",
        "notifications",
        "dead_letters",
        "state_items",
        "control_items",
        "run_items",
        "fatal",
    ],
)
def test_no_lambda_output_holds_a_secret(aws_scenario: AwsScenario, sink: str) -> None:
    # Given one output of the functions: Powertools' JSON logs, every other log record
    # (botocore's apart), stdout, handler answers, SNS messages, dead letters, table items,
    # the fatal error
    text = getattr(aws_scenario, sink)
    # When it is searched for every secret
    # Then none is there
    assert leaks(text, aws_scenario.secrets) == []


# ---------------------------------------------------------------------- 2. hostile device IDs

HOSTILE_IDS = [
    pytest.param("../v1.0/token", id="traversal"),
    pytest.param("..%2F..%2Fv1.0%2Ftoken", id="encoded-traversal"),
    pytest.param("a/b", id="slash"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("a?b=1", id="query"),
    pytest.param("a#b", id="fragment"),
    pytest.param("a;b", id="semicolon"),
    pytest.param("%2e%2e", id="percent-dots"),
    pytest.param("\\u002e", id="escaped-dot"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\rb", id="cr"),
    pytest.param("a\nb", id="lf"),
    pytest.param("\x1b[31m", id="ansi-escape"),
    pytest.param("a" * 65, id="65-chars"),
    pytest.param("a" * 1000, id="1000-chars"),
    pytest.param("a" * 100_000, id="100000-chars"),
    pytest.param("dévice", id="accented"),
    pytest.param("\uff46\uff55\uff4c\uff4c", id="fullwidth"),
    pytest.param("a\u200bb", id="zero-width-space"),
    pytest.param("", id="empty"),
    pytest.param(" ", id="space"),
    pytest.param(" \t ", id="whitespace"),
    pytest.param("a b", id="inner-space"),
]


@pytest.fixture
def sim_env(
    make_simulator: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Any:
    """A simulator and a CLI environment pointing at it."""
    sim = make_simulator(fleet=fleet())
    clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("TUYA_ENDPOINT", sim.url)
    monkeypatch.setenv("TUYA_ACCESS_ID", sim.access_id)
    monkeypatch.setenv("TUYA_ACCESS_SECRET", sim.access_secret)
    monkeypatch.setenv("FWWATCH_STATE", str(tmp_path / "state.sqlite3"))
    return sim


def requests_seen(sim: Any) -> int:
    return int(sim.cloud.stats.snapshot()["requests"])


@pytest.mark.parametrize("device_id", HOSTILE_IDS)
async def test_get_firmware_refuses_a_hostile_device_id_before_any_request(
    make_simulator: Callable[..., Any], device_id: str
) -> None:
    # Given a client of a running simulator
    sim = make_simulator(fleet=fleet())
    settings = TuyaSettings(
        access_id=sim.access_id, access_secret=sim.access_secret, endpoint=sim.url
    )
    # When it is asked for the firmware of a hostile device ID
    async with TuyaClient(settings) as tuya:
        with pytest.raises(InvalidDeviceIdError):
            await tuya.get_firmware(device_id)
    # Then it refuses, and the simulator never saw a request (not even a token call)
    assert requests_seen(sim) == 0


@pytest.mark.parametrize("device_id", HOSTILE_IDS)
def test_fwwatch_check_exits_2_on_a_hostile_device_id_without_any_request(
    sim_env: Any, capsys: pytest.CaptureFixture[str], device_id: str
) -> None:
    # Given the CLI configured for a running simulator
    # When `fwwatch check` is given a hostile device ID next to a good one
    status = main(["check", "secdev01", device_id])
    # Then it exits 2 and the simulator never saw a request
    assert status == 2
    assert requests_seen(sim_env) == 0


@pytest.mark.parametrize("device_id", HOSTILE_IDS)
def test_fwwatch_check_explains_a_hostile_device_id_on_one_printable_line(
    sim_env: Any, capsys: pytest.CaptureFixture[str], device_id: str
) -> None:
    # Given the CLI configured for a running simulator
    # When `fwwatch check` is given a hostile device ID
    main(["check", device_id])
    err = capsys.readouterr().err
    # Then stderr says which ID is invalid, on one short line with no control characters
    assert err.startswith("fwwatch: invalid device ID ")
    assert err.endswith("\n")
    assert err[:-1].isprintable()
    assert len(err) < 600


def write_devices(tmp_path: Path, kind: str) -> str:
    """A hostile --devices argument of the given kind; returns the argument."""
    target = tmp_path / "devices.in"
    if kind == "bad-line":
        target.write_text("secdev01\n# fine so far\n../v1.0/token\nsecdev02\n")
    elif kind == "control-line":
        target.write_text("secdev01\n\x1b[2Jsecdev02\n")
    elif kind == "json-broken":
        target.write_text('["secdev01", ')
    elif kind.startswith("json-"):
        item = {
            "json-number": 1,
            "json-null": None,
            "json-list": ["secdev01"],
            "json-object": {"device_id": "secdev01"},
            "json-bool": True,
            "json-hostile-string": "a/b",
        }[kind]
        target.write_text(json.dumps(["secdev01", item]))
    elif kind == "binary":
        target.write_bytes(bytes(range(256)) * 4)
    elif kind == "nul-bytes":
        target.write_bytes(b"secdev01\x00secdev02\n")
    elif kind == "twenty-megabytes":
        target.write_bytes(b"secdev01\n" * (20 * 2**20 // 9))
    elif kind == "empty":
        target.write_text("# nothing but comments\n\n")
    elif kind == "directory":
        target.mkdir()
    elif kind == "missing":
        return str(tmp_path / "no-such-file.txt")
    return str(target)


@pytest.mark.parametrize(
    "kind",
    [
        "bad-line",
        "control-line",
        "json-number",
        "json-null",
        "json-list",
        "json-object",
        "json-bool",
        "json-hostile-string",
        "json-broken",
        "binary",
        "nul-bytes",
        "twenty-megabytes",
        "empty",
        "directory",
        "missing",
    ],
)
def test_fwwatch_run_refuses_a_hostile_devices_file_before_any_request(
    sim_env: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    # Given a --devices argument that is a hostile or broken file
    argument = write_devices(tmp_path, kind)
    # When `fwwatch run --devices` is given it
    status = main(["run", "--devices", argument])
    err = capsys.readouterr().err
    # Then it exits 2 naming the file, and the simulator never saw a request
    assert status == 2
    assert Path(argument).name in err
    assert requests_seen(sim_env) == 0


def test_fwwatch_run_refuses_a_devices_directory_named_without_a_slash(
    sim_env: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a directory in the working directory, named like a device ID
    (tmp_path / "devices").mkdir()
    # When `fwwatch run --devices devices` is given it
    status = main(["run", "--devices", "devices"])
    # Then it is refused as a file that cannot be read, before any request
    assert status == 2
    assert requests_seen(sim_env) == 0


def test_a_hostile_check_message_fails_its_record_without_calling_tuya(
    make_simulator: Callable[..., Any], make_aws_stack: Callable[..., Any]
) -> None:
    # Given the check queue holding messages with hostile device IDs (and a non-string one)
    sim = make_simulator(fleet=fleet())
    stack = make_aws_stack(
        parameters={"TuyaEndpoint": sim.url},
        tuya_secret={"access_id": sim.access_id, "access_secret": sim.access_secret},
    )
    pipeline = Pipeline(stack, overrides={"RETRY_DELAY_S": "0"})
    hostile: list[object] = [
        "../v1.0/token",
        "a/b",
        "%2e%2e",
        "a\x00b",
        "a" * 100_000,
        "dévice",
        "",
        7,
    ]
    for n, device_id in enumerate(hostile):
        pipeline.send_raw(json.dumps({"run_id": f"hostile{n}", "device_ids": [device_id]}))
    # When the checker receives them (until the queue's redrive moves them on)
    answers = pipeline.run_checkers()
    # Then every record was reported failed, they all end in the dead-letter queue,
    # nothing was sent to Tuya, and nothing was written
    assert all(answer["batchItemFailures"] for answer in answers)
    assert len(pipeline.dead_letters()) == len(hostile)
    assert requests_seen(sim) == 0
    table = stack.table_name("StateTable")
    assert stack.client("dynamodb").scan(TableName=table)["Items"] == []


def fleet_listing_a_hostile_id() -> Fleet:
    """A project whose own device list has an ID fwwatch refuses (the simulator allows '.')."""
    return Fleet(
        devices=[
            FleetDevice(
                device_id=device_id,
                name=device_id,
                product_id=PLUG,
                product_name="Secure plug",
                category="cz",
                channels=[FleetChannel(channel=0, current_version="1.0.0")],
            )
            for device_id in ("secdev01", "..", "secdev02")
        ]
    )


def test_a_hostile_id_in_tuyas_device_list_is_skipped_and_never_requested(
    make_simulator: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a project whose device list holds the ID ".." next to two good devices
    sim = make_simulator(fleet=fleet_listing_a_hostile_id())
    clean_environment(monkeypatch, tmp_path)
    for name, value in {
        "TUYA_ENDPOINT": sim.url,
        "TUYA_ACCESS_ID": sim.access_id,
        "TUYA_ACCESS_SECRET": sim.access_secret,
        "FWWATCH_STATE": str(tmp_path / "state.sqlite3"),
    }.items():
        monkeypatch.setenv(name, value)
    # When `fwwatch run` lists and checks the project
    status = main(["run", "--json"])
    report = json.loads(capsys.readouterr().out)
    # Then ".." is skipped (as the scheduler skips it), the others are checked, and only
    # they were requested
    assert status == 0
    assert report["failed"] == []
    assert (report["devices"], report["checked"]) == (2, 2)
    assert sim.cloud.stats.snapshot()["by_api"]["GET /v2.0/cloud/thing/{device_id}/firmware"] == 2


def test_a_hostile_id_in_tuyas_device_list_does_not_stop_the_scheduled_run(
    make_simulator: Callable[..., Any], make_aws_stack: Callable[..., Any]
) -> None:
    # Given a project whose device list holds the ID ".." next to two good devices
    sim = make_simulator(fleet=fleet_listing_a_hostile_id())
    stack = make_aws_stack(
        parameters={"TuyaEndpoint": sim.url},
        tuya_secret={"access_id": sim.access_id, "access_secret": sim.access_secret},
    )
    pipeline = Pipeline(stack, overrides={"RETRY_DELAY_S": "0"})
    # When the scheduler discovers the devices and fans them out
    scheduled = pipeline.schedule()
    # Then the two good devices are scheduled, and ".." is left out
    assert scheduled["devices"] == 2


FLEET_DEVICE = {
    "name": "x",
    "product_id": "p",
    "product_name": "P",
    "category": "cz",
    "channels": [{"channel": 0, "current_version": "1.0.0"}],
}


def write_fleet(tmp_path: Path, kind: str) -> Path:
    """A hostile fleet file of the given kind."""
    if kind.startswith("device-id-"):
        device_id = {
            "device-id-traversal": "../v1.0/token",
            "device-id-nul": "a\x00b",
            "device-id-65-chars": "a" * 65,
            "device-id-accented": "dévice",
            "device-id-empty": "",
            "device-id-number": 7,
        }[kind]
        path = tmp_path / "fleet.json"
        path.write_text(json.dumps({"devices": [{**FLEET_DEVICE, "device_id": device_id}]}))
        return path
    path = tmp_path / ("fleet.yaml" if "yaml" in kind else "fleet.json")
    if kind == "yaml-python-tag":
        path.write_text('devices: !!python/object/apply:os.system ["echo owned"]\n')
    elif kind == "yaml-alias-bomb":
        lines = ['l0: &l0 ["x","x","x","x","x","x","x","x","x"]']
        lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 9)]
        lines.append(f"devices: [{', '.join(['*l8'] * 9)}]")
        path.write_text("\n".join(lines) + "\n")
    elif kind == "not-a-mapping":
        path.write_text(json.dumps(["devices"]))
    elif kind == "unknown-field":
        path.write_text(json.dumps({"devices": [{**FLEET_DEVICE, "device_id": "d1", "x": 1}]}))
    elif kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe" + bytes(range(256)))
    elif kind == "json-nested-100000-deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "json-integer-of-5000-digits":
        path.write_text('{"devices": [' + "1" * 5000 + "]}")
    elif kind == "yaml-nested-100000-deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    return path


def fleet_bug(kind: str, reason: str) -> Any:
    return pytest.param(kind, id=kind)


@pytest.mark.parametrize(
    "kind",
    [
        "device-id-traversal",
        "device-id-nul",
        "device-id-65-chars",
        "device-id-accented",
        "device-id-empty",
        "device-id-number",
        "yaml-python-tag",
        "yaml-alias-bomb",
        "not-a-mapping",
        "unknown-field",
        "directory",
        fleet_bug("binary", "load_fleet: read_text's UnicodeDecodeError is not caught"),
        fleet_bug("json-nested-100000-deep", "load_fleet: json's RecursionError is not caught"),
        fleet_bug(
            "json-integer-of-5000-digits",
            "load_fleet: json's ValueError (int digits limit) is not caught",
        ),
        fleet_bug("yaml-nested-100000-deep", "load_fleet: yaml's RecursionError is not caught"),
    ],
)
def test_load_fleet_refuses_a_hostile_fleet_file_with_fleet_file_error(
    tmp_path: Path, kind: str
) -> None:
    # Given a hostile or broken fleet file
    path = write_fleet(tmp_path, kind)
    # When the simulator loads it
    try:
        load_fleet(path)
    except FleetFileError as refused:
        error: BaseException = refused
    except Exception as other:  # a bug: the wrong type escaped
        error = other
    else:
        pytest.fail("the hostile fleet file was accepted")
    # Then it is refused with FleetFileError, whose message names the file
    assert isinstance(error, FleetFileError), repr(error)
    assert path.name in str(error)


def test_fwwatch_simulate_exits_2_on_a_hostile_fleet_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a fleet file with a path-traversal device ID
    path = write_fleet(tmp_path, "device-id-traversal")
    # When `fwwatch simulate --fleet` is given it
    status = main(["simulate", "--port", "0", "--fleet", str(path)])
    # Then it exits 2, naming the file and the field, and serves nothing
    err = capsys.readouterr().err
    assert status == 2
    assert "fleet.json" in err
    assert "device_id" in err


# ---------------------------------------------------------------------- 2. hostile configuration

HOSTILE_ENDPOINTS = [
    pytest.param("https://myid:mysecret@openapi.tuyaeu.com", id="credentials"),
    pytest.param("https://openapi.tuyaeu.com/v1.0", id="path"),
    pytest.param("https://openapi.tuyaeu.com/?redirect=1", id="query"),
    pytest.param("https://openapi.tuyaeu.com#frag", id="fragment"),
    pytest.param("http://openapi.tuyaeu.com", id="http-public-host"),
    pytest.param("http://10.1.2.3:8760", id="http-private-address"),
    pytest.param("openapi.tuyaeu.com", id="no-scheme"),
    pytest.param("ftp://openapi.tuyaeu.com", id="ftp"),
    pytest.param("not a url", id="not-a-url"),
    pytest.param("https://", id="no-host"),
]


def test_the_request_recorder_sees_every_call_of_a_command(
    sim_env: Any, capsys: pytest.CaptureFixture[str], http_requests: list[httpx.Request]
) -> None:
    # Given the recorder that the "before any request" tests below rely on
    # When a command talks to the simulator
    status = main(["check", "secdev01"])
    capsys.readouterr()
    # Then it saw the grant and the firmware call: an empty recording means none was sent
    assert status == 0
    assert [request.url.path for request in http_requests] == [
        "/v1.0/token",
        "/v2.0/cloud/thing/secdev01/firmware",
    ]


@pytest.mark.parametrize("command", [["check", "secdev01"], ["run"], ["devices"]])
@pytest.mark.parametrize("endpoint", HOSTILE_ENDPOINTS)
def test_a_hostile_tuya_endpoint_exits_2_naming_the_variable_before_any_request(
    sim_env: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    http_requests: list[httpx.Request],
    endpoint: str,
    command: list[str],
) -> None:
    # Given TUYA_ENDPOINT set to a hostile value
    monkeypatch.setenv("TUYA_ENDPOINT", endpoint)
    # When a command that talks to Tuya runs
    status = main(command)
    err = capsys.readouterr().err
    # Then it exits 2 naming TUYA_ENDPOINT, without sending any request
    assert status == 2
    assert "TUYA_ENDPOINT" in err
    assert http_requests == []


@pytest.mark.parametrize(
    "endpoint",
    [
        pytest.param(f"https://{ACCESS_ID}:{SECRET}@openapi.tuyaeu.com", id="https"),
        pytest.param(f"http://{ACCESS_ID}:{SECRET}@openapi.tuyaeu.com", id="http-public-host"),
        pytest.param(f"https://{ACCESS_ID}:{SECRET}@openapi.tuyaeu.com/v1.0", id="with-path"),
        pytest.param(
            f"ftp://{ACCESS_ID}:{SECRET}@openapi.tuyaeu.com",
            id="ftp",
        ),
        pytest.param(
            f"https://{ACCESS_ID}:{SECRET}@",
            id="no-host",
        ),
    ],
)
def test_a_password_in_tuya_endpoint_is_never_echoed_in_the_refusal(
    sim_env: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    # Given TUYA_ENDPOINT with a password in it, and something else wrong or not
    monkeypatch.setenv("TUYA_ENDPOINT", endpoint)
    # When a command reads the configuration
    status = main(["check", "secdev01"])
    # Then it is refused, and the refusal does not repeat the password
    assert status == 2
    assert leaks(capsys.readouterr().err, {"password": SECRET}) == []


@pytest.mark.parametrize("region", ["mars", "eu-central-1", "../eu", "eu\x1b[0m", "e" * 1000])
def test_an_unknown_tuya_region_exits_2_naming_the_variable_before_any_request(
    sim_env: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    http_requests: list[httpx.Request],
    region: str,
) -> None:
    # Given an unknown TUYA_REGION and no TUYA_ENDPOINT
    monkeypatch.delenv("TUYA_ENDPOINT")
    monkeypatch.setenv("TUYA_REGION", region)
    # When `fwwatch check` runs
    status = main(["check", "secdev01"])
    err = capsys.readouterr().err
    # Then it exits 2 naming TUYA_REGION and the choices, without sending any request
    assert status == 2
    assert "TUYA_REGION" in err
    assert "eu-w" in err
    assert http_requests == []


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://hooks.slack.com/services/T/B/x", id="http-public-host"),
        pytest.param("http://10.1.2.3/services/T/B/x", id="http-private-address"),
        pytest.param("hooks.slack.com/services/T/B/x", id="no-scheme"),
        pytest.param("ftp://hooks.slack.com/services/T/B/x", id="ftp"),
        pytest.param("file:///etc/passwd", id="file"),
    ],
)
@pytest.mark.parametrize("command", [["run"], ["notify-test"]])
def test_a_hostile_slack_webhook_url_exits_2_naming_the_variable_before_any_request(
    sim_env: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    http_requests: list[httpx.Request],
    url: str,
    command: list[str],
) -> None:
    # Given SLACK_WEBHOOK_URL set to something other than https (or http on loopback)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", url)
    # When a command that notifies runs
    status = main(command)
    err = capsys.readouterr().err
    # Then it exits 2 naming SLACK_WEBHOOK_URL, with no request to Slack or Tuya
    assert status == 2
    assert "SLACK_WEBHOOK_URL" in err
    assert http_requests == []
    assert requests_seen(sim_env) == 0


# ---------------------------------------------------------------------- 3. TLS


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://example.com",
        "http://10.1.2.3",
        "http://[2001:db8::1]",
        "http://0.0.0.0:8760",
        "http://127.0.0.1.nip.io:8760",
        "http://localhost.example.com:8760",
        "http://2130706433:8760",
    ],
)
def test_tuya_settings_refuse_plain_http_to_anything_but_loopback(endpoint: str) -> None:
    # Given a plain-http endpoint that is not a loopback address
    # When settings are made with it
    # Then they are refused (Tuya credentials travel only over https)
    with pytest.raises(TuyaConfigError, match="plain http to a non-loopback host"):
        TuyaSettings(access_id=ACCESS_ID, access_secret=SECRET, endpoint=endpoint)


@pytest.mark.parametrize(
    "endpoint",
    ["http://127.0.0.1:8760", "http://localhost:8760", "http://[::1]:8760", "http://127.9.9.9:1"],
)
def test_tuya_settings_accept_plain_http_to_loopback_for_a_simulator(endpoint: str) -> None:
    # Given a plain-http endpoint on a loopback address
    # When settings are made with it
    settings = TuyaSettings(access_id=ACCESS_ID, access_secret=SECRET, endpoint=endpoint)
    # Then it is accepted as is
    assert settings.base_url == endpoint


def tls_context_of(client: TuyaClient) -> ssl.SSLContext:
    """The SSL context of the client's connections (httpx -> httpcore), one for them all."""
    contexts = {id(t._pool._ssl_context) for t in client._connections.transports}  # type: ignore[attr-defined]
    assert len(contexts) == 1
    transport = client._connections.transports[0]
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    context = transport._pool._ssl_context
    assert isinstance(context, ssl.SSLContext)
    return context


@pytest.mark.parametrize(
    "variable",
    [
        {},
        {"TUYA_VERIFY": "false"},
        {"TUYA_INSECURE": "1"},
        {"TUYA_VERIFY_SSL": "0"},
        {"TUYA_SSL_VERIFY": "false"},
        {"TUYA_TLS_VERIFY": "no"},
        {"PYTHONHTTPSVERIFY": "0"},
        {"CURL_CA_BUNDLE": ""},
        {"REQUESTS_CA_BUNDLE": ""},
    ],
    ids=lambda variable: ",".join(variable) or "nothing-set",
)
def test_no_setting_turns_off_tls_verification_of_the_tuya_client(
    monkeypatch: pytest.MonkeyPatch, variable: dict[str, str]
) -> None:
    # Given settings from an environment that asks (or not) for TLS verification to be off
    environ = {"TUYA_ACCESS_ID": ACCESS_ID, "TUYA_ACCESS_SECRET": SECRET, "TUYA_REGION": "eu"}
    for name, value in variable.items():
        monkeypatch.setenv(name, value)
    settings = TuyaSettings.load({**environ, **variable})
    # When a client is made from them
    client = TuyaClient(settings)
    context = tls_context_of(client)
    # Then its connections require a certificate chain that verifies, for the right host name
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert settings.base_url.startswith("https://")


def test_a_missing_ssl_cert_file_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given SSL_CERT_FILE pointing to nothing (httpx reads it to build its trust store)
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
    settings = TuyaSettings(access_id=ACCESS_ID, access_secret=SECRET, region="eu")
    # When a client is made
    # Then it cannot be made at all: there is no fallback to an unverified connection
    with pytest.raises(OSError, match="No such file"):
        TuyaClient(settings)


@pytest.fixture
def untrusted_tls_server() -> Iterator[tuple[int, list[bytes]]]:
    """A TLS server on 127.0.0.1 whose certificate no default trust store accepts."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    received: list[bytes] = []
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []

    async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            received.append(await reader.read(65536))
        writer.close()

    def run() -> None:
        asyncio.set_event_loop(loop)
        # Failed handshakes leave the server's side of them to asyncio: keep that quiet.
        loop.set_exception_handler(lambda _loop, _context: None)
        server = loop.run_until_complete(
            asyncio.start_server(serve_one, "127.0.0.1", 0, ssl=context)
        )
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(5)
    yield port[0], received
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


async def test_the_tuya_client_refuses_an_untrusted_certificate_before_sending_anything(
    untrusted_tls_server: tuple[int, list[bytes]],
) -> None:
    # Given an https endpoint on loopback whose certificate is not trusted
    port, received = untrusted_tls_server
    settings = TuyaSettings(
        access_id=ACCESS_ID, access_secret=SECRET, endpoint=f"https://127.0.0.1:{port}"
    )
    # When the client asks for firmware
    async with TuyaClient(settings, retry=RetryPolicy(attempts=1)) as tuya:
        with pytest.raises(TuyaTransientError) as refused:
            await tuya.get_firmware("secdev01")
    # Then the handshake fails on the certificate and no request bytes were ever sent
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    assert not any(received)


async def test_the_slack_notifier_refuses_an_untrusted_certificate_before_posting(
    untrusted_tls_server: tuple[int, list[bytes]],
) -> None:
    # Given an https webhook on loopback whose certificate is not trusted
    port, received = untrusted_tls_server
    notifier = SlackNotifier(f"https://127.0.0.1:{port}{SLACK_PATH}", max_attempts=1)
    # When a message is sent
    with pytest.raises(NotifyError):
        await notifier.send_test()
    # Then nothing was posted
    assert not any(received)


def test_the_email_notifier_verifies_certificates_and_host_names_by_default() -> None:
    # Given an e-mail notifier made from settings alone (as local mode makes it)
    settings = SmtpSettings(
        host="smtp.example.com", sender="fwwatch@example.com", recipients=("ops@example.com",)
    )
    notifier = EmailNotifier(settings)
    # When its TLS context (for STARTTLS and implicit TLS) is inspected
    context = notifier._tls
    # Then it requires a verified certificate for the right host name
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_smtp_without_tls_is_refused_when_a_password_would_cross_the_network() -> None:
    # Given e-mail settings for a remote host with a password and STARTTLS switched off
    environ = {
        "SMTP_HOST": "smtp.example.com",
        "SMTP_PORT": "587",
        "SMTP_STARTTLS": "false",
        "SMTP_USER": "fwwatch",
        "SMTP_PASSWORD": SMTP_PASSWORD,
        "NOTIFY_EMAIL_TO": "ops@example.com",
    }
    # When local settings are read
    # Then they are refused, naming SMTP_STARTTLS
    with pytest.raises(ConfigError, match="SMTP_STARTTLS"):
        LocalSettings.load(environ)


def test_smtp_without_tls_to_loopback_is_accepted() -> None:
    # Given e-mail settings for a loopback relay, with STARTTLS switched off
    environ = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": "25",
        "SMTP_STARTTLS": "false",
        "NOTIFY_EMAIL_TO": "ops@example.com",
    }
    # When local settings are read
    settings = LocalSettings.load(environ)
    # Then a local relay without TLS is allowed
    assert settings.smtp is not None
    assert settings.smtp.starttls is False


def test_the_cli_says_so_in_one_line_when_the_ca_bundle_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given SSL_CERT_FILE pointing to nothing
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
    monkeypatch.setenv("TUYA_ACCESS_ID", ACCESS_ID)
    monkeypatch.setenv("TUYA_ACCESS_SECRET", SECRET)
    monkeypatch.setenv("TUYA_REGION", "eu")
    monkeypatch.delenv("TUYA_ENDPOINT", raising=False)
    # When a command needs the client / Then it exits 2 with the cause, not a traceback
    assert main(["check", "bf0123456789abcdef0123"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fwwatch: ")
    assert "/nonexistent/ca.pem" in err
    assert "Traceback" not in err
