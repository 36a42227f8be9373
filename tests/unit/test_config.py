"""Configuration: validated before any request, errors name the variable, secrets hidden."""

from typing import Any

import pytest

from fwwatch.aws.settings import (
    CheckerSettings,
    DifferSettings,
    DigestSettings,
    SchedulerSettings,
    SlackSettings,
    TuyaAccessSettings,
)
from fwwatch.events import EventType
from fwwatch.local.config import LocalSettings
from fwwatch.tuya import ConfigError, EnvSettings, TuyaConfigError, TuyaSettings

SECRET = "s3cr3t-value-that-must-not-leak"
BASE = {"TUYA_ACCESS_ID": "abcd1234", "TUYA_ACCESS_SECRET": SECRET}
CHECKER = {
    "TUYA_ENDPOINT": "https://openapi.tuyaeu.com",
    "TUYA_SECRET_NAME": "fwwatch/tuya",
    "CONTROL_TABLE": "control",
    "STATE_TABLE": "state",
    "CHECK_QUEUE_URL": "https://sqs.example/check",
    "CHECK_DEAD_LETTER_QUEUE_URL": "https://sqs.example/dlq",
    "RUN_TABLE": "runs",
    "DIGEST_QUEUE_URL": "https://sqs.example/digest",
}
SETTINGS_MODELS: list[type[EnvSettings]] = [
    TuyaSettings,
    LocalSettings,
    SchedulerSettings,
    CheckerSettings,
    DifferSettings,
    DigestSettings,
    SlackSettings,
]


def test_region_resolves_to_its_data_centre() -> None:
    settings = TuyaSettings.load({**BASE, "TUYA_REGION": "eu-w"})
    assert settings.base_url == "https://openapi-weaz.tuyaeu.com"


def test_endpoint_wins_and_is_normalised() -> None:
    settings = TuyaSettings.load({**BASE, "TUYA_ENDPOINT": "https://openapi.tuyaus.com/"})
    assert settings.base_url == "https://openapi.tuyaus.com"


def test_from_env_is_load() -> None:
    environ = {**BASE, "TUYA_REGION": "eu", "TUYA_QPS": "7"}
    assert TuyaSettings.from_env(environ) == TuyaSettings.load(environ)


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
        TuyaSettings.load(env)
    assert named in str(caught.value)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(TuyaConfigError) as caught:
        TuyaSettings.load({"TUYA_QPS": "0"})
    message = str(caught.value)
    for variable in ("TUYA_ACCESS_ID", "TUYA_ACCESS_SECRET", "TUYA_QPS"):
        assert variable in message


def test_an_empty_variable_counts_as_unset() -> None:
    # As `TUYA_ENDPOINT=` in a .env file: the region decides
    settings = TuyaSettings.load({**BASE, "TUYA_ENDPOINT": " ", "TUYA_REGION": "eu"})
    assert settings.base_url == "https://openapi.tuyaeu.com"
    with pytest.raises(TuyaConfigError, match="TUYA_ACCESS_ID is not set"):
        TuyaSettings.load({**BASE, "TUYA_ACCESS_ID": "", "TUYA_REGION": "eu"})


def test_settings_made_from_arguments_fail_the_same_way() -> None:
    with pytest.raises(TuyaConfigError, match="TUYA_QPS"):
        TuyaSettings(access_id="abcd1234", access_secret=SECRET, region="eu", qps=0)


@pytest.mark.parametrize(
    "url", ["http://openapi.tuyaeu.com", "http://10.0.0.5:8080", "http://[2001:db8::1]"]
)
def test_plain_http_is_refused_off_loopback(url: str) -> None:
    with pytest.raises(TuyaConfigError, match="loopback"):
        TuyaSettings.load({**BASE, "TUYA_ENDPOINT": url})


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"])
def test_plain_http_is_accepted_on_loopback(url: str) -> None:
    assert TuyaSettings.load({**BASE, "TUYA_ENDPOINT": url}).base_url == url


def test_secret_never_shows_in_repr_or_errors() -> None:
    settings = TuyaSettings.load({**BASE, "TUYA_REGION": "eu"})
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    with pytest.raises(TuyaConfigError) as caught:
        TuyaSettings.load({**BASE, "TUYA_REGION": "eu", "TUYA_QPS": "-1"})
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SMTP_PORT": SECRET}, "SMTP_PORT"),
        ({"SLACK_WEBHOOK_URL": f"http://hooks.slack.com/{SECRET}"}, "SLACK_WEBHOOK_URL"),
        ({"FWWATCH_MAX_ATTEMPTS": SECRET}, "FWWATCH_MAX_ATTEMPTS"),
        ({"SMTP_STARTTLS": SECRET}, "SMTP_STARTTLS"),
        ({"FWWATCH_APPRISE_URLS": f"tgram://{SECRET}"}, "FWWATCH_APPRISE_URLS: URL 1 of 1"),
        ({"FWWATCH_APPRISE_URLS": f"json://h/x {SECRET}"}, "FWWATCH_APPRISE_URLS: URL 2 of 2"),
    ],
)
def test_a_wrong_value_is_named_but_never_repeated(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LocalSettings.load(env)
    assert named in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SMTP_HOST": "smtp.example.com"}, "need NOTIFY_EMAIL_TO as well"),
        ({"NOTIFY_EMAIL_TO": "ops@example.com"}, "need SMTP_HOST as well"),
        (
            {"SMTP_HOST": "smtp.example.com", "NOTIFY_EMAIL_TO": "a@b", "SMTP_USER": "me"},
            "SMTP_USER is set but SMTP_PASSWORD is not",
        ),
        ({"FWWATCH_RETRY_DELAY_S": "901"}, "FWWATCH_RETRY_DELAY_S"),
        ({"FWWATCH_MAX_ATTEMPTS": "0"}, "FWWATCH_MAX_ATTEMPTS"),
        (
            {"FWWATCH_EVENTS": "update_available,update_availabel"},
            "FWWATCH_EVENTS: item 2 is not an event; the events are update_available, "
            "update_installed, update_failed",
        ),
        ({"FWWATCH_EVENTS": " , "}, "FWWATCH_EVENTS: no event named"),
    ],
)
def test_local_settings_that_cannot_work_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LocalSettings.load(env)


def test_local_settings_read_their_variables() -> None:
    settings = LocalSettings.load(
        {
            "FWWATCH_STATE": "/tmp/state.sqlite3",
            "FWWATCH_MAX_ATTEMPTS": "5",
            "FWWATCH_RETRY_DELAY_S": "0",
            "SMTP_HOST": "smtp.example.com",
            "SMTP_PORT": "465",
            "NOTIFY_EMAIL_TO": " ops@example.com, , dev@example.com ",
        }
    )
    assert str(settings.state) == "/tmp/state.sqlite3"
    assert (settings.max_attempts, settings.retry_delay_s) == (5, 0)
    assert settings.smtp is not None
    assert settings.smtp.recipients == ("ops@example.com", "dev@example.com")
    assert settings.smtp.sender == "fwwatch@smtp.example.com"
    assert (settings.smtp.port, settings.smtp.starttls) == (465, True)


def test_notifiers_get_every_event_unless_told_which() -> None:
    assert LocalSettings.load({}).events == set(EventType)
    chosen = LocalSettings.load({"FWWATCH_EVENTS": " Update_Failed,,update_installed "})
    assert chosen.events == {EventType.UPDATE_FAILED, EventType.UPDATE_INSTALLED}


def test_the_default_that_help_shows_for_the_events_can_be_written_out() -> None:
    # `--help` says "(default all)": an operator who writes it gets what it says
    assert LocalSettings.load({"FWWATCH_EVENTS": " All "}).events == set(EventType)


def test_local_retries_default_as_the_checkers_do() -> None:
    local = LocalSettings.load({})
    checker = CheckerSettings.load(CHECKER)
    assert (local.max_attempts, local.retry_delay_s) == (3, 30)
    assert (checker.max_attempts, checker.retry_delay_s) == (3, 30)


def test_a_function_names_what_its_environment_lacks() -> None:
    environ = {key: value for key, value in CHECKER.items() if key != "STATE_TABLE"}
    with pytest.raises(ConfigError, match="STATE_TABLE is not set"):
        CheckerSettings.load(environ)


def test_a_function_reads_its_variables() -> None:
    checker = CheckerSettings.load(
        {**CHECKER, "TUYA_QPS": "20", "CHECKER_MAX_CONCURRENCY": "4", "LOG_LEVEL": "debug"}
    )
    assert checker.qps_per_instance == pytest.approx((20 - 20 * 1.25 / 21) / 4)
    assert checker.log_level == "DEBUG"
    scheduler = SchedulerSettings.load(
        {**CHECKER, "DEVICE_IDS": "a1, b2,,", "LISTING_QUEUE_URL": "https://sqs.example/listing"}
    )
    assert scheduler.configured_ids == ["a1", "b2"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CHECKER_MAX_CONCURRENCY": "1"}, "CHECKER_MAX_CONCURRENCY"),
        ({"TUYA_RETRY_BUDGET_S": "3601"}, "TUYA_RETRY_BUDGET_S"),
        ({"MAX_ATTEMPTS": "11"}, "MAX_ATTEMPTS"),
        ({"POWERTOOLS_LOG_LEVEL": "LOUD"}, "POWERTOOLS_LOG_LEVEL"),
    ],
)
def test_a_function_refuses_values_out_of_bounds(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        CheckerSettings.load({**CHECKER, **env})


@pytest.mark.parametrize(
    ("local", "function"),
    [
        ((TuyaSettings, "retry_attempts"), (TuyaAccessSettings, "tuya_retry_attempts")),
        ((TuyaSettings, "retry_budget_s"), (TuyaAccessSettings, "tuya_retry_budget_s")),
        ((TuyaSettings, "timeout_s"), (TuyaAccessSettings, "tuya_timeout_s")),
        ((LocalSettings, "max_attempts"), (CheckerSettings, "max_attempts")),
        ((LocalSettings, "retry_delay_s"), (CheckerSettings, "retry_delay_s")),
    ],
)
def test_local_mode_and_the_functions_share_their_bounds_and_defaults(
    local: tuple[type[EnvSettings], str], function: tuple[type[EnvSettings], str]
) -> None:
    ours = local[0].model_fields[local[1]]
    theirs = function[0].model_fields[function[1]]
    assert ours.metadata == theirs.metadata
    assert ours.metadata  # bounded at all
    assert (ours.annotation, ours.default, ours.description) == (
        theirs.annotation,
        theirs.default,
        theirs.description,
    )


def test_the_functions_rate_is_a_whole_project_rate_the_clients_any_positive_share() -> None:
    # The template's TuyaQps starts at 1; each checker's client gets its share, maybe less.
    client = TuyaSettings.model_fields["qps"]
    project = TuyaAccessSettings.model_fields["tuya_qps"]
    assert (client.default, client.description) == (project.default, project.description)
    assert [getattr(m, "gt", None) for m in client.metadata] == [0, None]
    assert [getattr(m, "ge", None) for m in project.metadata] == [1, None]


def test_the_tuya_secret_builds_settings_or_says_what_it_must_hold() -> None:
    from fwwatch.aws.settings import TuyaAccessSettings

    access = TuyaAccessSettings.load(
        {
            "TUYA_ENDPOINT": "https://openapi.tuyaeu.com",
            "TUYA_SECRET_NAME": "fwwatch/tuya",
            "TUYA_RETRY_ATTEMPTS": "3",
            "CONTROL_TABLE": "control",
        }
    )
    secret: dict[str, Any] = {"access_id": "abcd1234", "access_secret": SECRET}
    settings = access.client_settings(secret, qps=5)
    assert (settings.base_url, settings.qps) == ("https://openapi.tuyaeu.com", 5)
    assert (settings.retry_attempts, settings.timeout_s) == (3, 10.0)
    with pytest.raises(TuyaConfigError, match="access_id and access_secret"):
        access.client_settings({"access_id": "x"}, qps=5)


@pytest.mark.parametrize("model", SETTINGS_MODELS, ids=lambda model: model.__name__)
def test_every_setting_has_a_description_and_one_variable(model: type[EnvSettings]) -> None:
    variables = model.variables()
    assert len(set(variables.values())) == len(variables)
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no description"
        assert variables[name].isupper()


def test_every_settings_error_is_a_config_error() -> None:
    assert issubclass(TuyaConfigError, ConfigError)
    for model in SETTINGS_MODELS:
        assert issubclass(model.config_error, ConfigError)


@pytest.mark.parametrize(("qps", "instances"), [("1", "2"), ("20", "40")])
def test_each_checkers_share_of_the_rate_may_be_under_one_request_a_second(
    qps: str, instances: str
) -> None:
    from fwwatch.aws.settings import CheckerSettings

    settings = CheckerSettings.load(
        {
            "TUYA_ENDPOINT": "https://openapi.tuyaeu.com",
            "TUYA_SECRET_NAME": "fwwatch/tuya",
            "CONTROL_TABLE": "control",
            "STATE_TABLE": "state",
            "CHECK_QUEUE_URL": "https://sqs.eu-central-1.amazonaws.com/1/check",
            "CHECK_DEAD_LETTER_QUEUE_URL": "https://sqs.eu-central-1.amazonaws.com/1/dlq",
            "RUN_TABLE": "runs",
            "DIGEST_QUEUE_URL": "https://sqs.eu-central-1.amazonaws.com/1/digest",
            "TUYA_QPS": qps,
            "CHECKER_MAX_CONCURRENCY": instances,
        }
    )
    secret = {"access_id": "abcd1234", "access_secret": SECRET}
    client = settings.client_settings(secret, qps=settings.qps_per_instance)
    # (what the listing, running beside the checks, leaves of the ceiling)
    assert client.qps == pytest.approx(float(qps) * (1 - 1.25 / 21) / int(instances))
    assert client.qps < 1


@pytest.mark.parametrize("extra", [{"TUYA_QPS": "0.5"}, {"TUYA_RETRY_BUDGET_S": "1200"}])
def test_local_tuya_values_accepted_before_still_are(extra: dict[str, str]) -> None:
    TuyaSettings.load(
        {"TUYA_ACCESS_ID": "abcd1234", "TUYA_ACCESS_SECRET": SECRET, "TUYA_REGION": "eu", **extra}
    )


def test_apprise_urls_are_split_at_spaces_and_commas_but_not_inside_a_url() -> None:
    settings = LocalSettings.load(
        {
            "FWWATCH_APPRISE_URLS": "json://127.0.0.1/a, form://127.0.0.1/b\n"
            "mailtos://user:pass@example.com?to=a@example.com,b@example.com json://127.0.0.1/a,"
        }
    )
    assert [url.get_secret_value() for url in settings.apprise_urls] == [
        "json://127.0.0.1/a",
        "form://127.0.0.1/b",
        "mailtos://user:pass@example.com?to=a@example.com,b@example.com",
    ]
    assert SECRET not in repr(settings)


def test_each_apprise_url_is_a_notifier_named_by_scheme_and_hash_never_by_its_secret() -> None:
    urls = f"json://127.0.0.1/{SECRET} ntfy://{SECRET}"
    names = [n.name for n in LocalSettings.load({"FWWATCH_APPRISE_URLS": urls}).notifiers()]
    again = [n.name for n in LocalSettings.load({"FWWATCH_APPRISE_URLS": urls}).notifiers()]
    assert names == again
    assert [name.rsplit(":", 1)[0] for name in names] == ["console", "apprise:json", "apprise:ntfy"]
    assert len(set(names)) == 3
    assert not [name for name in names if SECRET in name]
