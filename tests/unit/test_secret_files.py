"""Secrets from files: every ``SecretStr`` setting also reads ``<VARIABLE>_FILE``."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from pydantic import Field, SecretStr

from fwwatch.aws import settings as aws_settings
from fwwatch.cli.demo import has_credentials
from fwwatch.local.config import LocalSettings
from fwwatch.tuya import ConfigError, EnvSettings, TuyaConfigError, TuyaSettings
from fwwatch.tuya.settings import env_prefix

SECRET = "s3cr3t-value-that-must-not-leak"
#: Seconds a read of a secret file may take before it counts as stuck: never asserted.
PATIENCE_S = 20.0
TUYA = {"TUYA_ACCESS_ID": "abcd1234", "TUYA_REGION": "eu"}


class Vault(EnvSettings):
    """A throwaway model: one required secret, one optional, one plain value."""

    model_config = env_prefix("VAULT_")

    token: SecretStr = Field(description="a required secret")
    spare: SecretStr | None = Field(default=None, description="an optional secret")
    label: str = Field(default="plain", description="not a secret")


def secret_file(tmp_path: Path, content: str, name: str = "secret") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_a_secret_is_read_from_its_file_without_the_trailing_newline(tmp_path: Path) -> None:
    # Given the secret in a file, as `echo ... > file` writes it
    path = secret_file(tmp_path, SECRET + "\n")
    # When the settings are read with VAULT_TOKEN_FILE naming it
    vault = Vault.load({"VAULT_TOKEN_FILE": str(path)})
    # Then the secret is the file's content, and the optional one stays unset
    assert vault.token.get_secret_value() == SECRET
    assert vault.spare is None


def test_only_trailing_newlines_are_stripped(tmp_path: Path) -> None:
    path = secret_file(tmp_path, " two\nlines \r\n\n")
    vault = Vault.load({"VAULT_TOKEN_FILE": str(path)})
    assert vault.token.get_secret_value() == " two\nlines "


def test_a_byte_order_mark_is_no_part_of_the_secret(tmp_path: Path) -> None:
    # Given the secret saved by an editor that starts UTF-8 files with a BOM (Notepad's
    # "UTF-8 with BOM"), with Windows line ends
    path = tmp_path / "secret"
    path.write_bytes(b"\xef\xbb\xbf" + SECRET.encode() + b"\r\n")
    # Then the secret is the text alone: a BOM would make a signature or a password wrong
    vault = Vault.load({"VAULT_TOKEN_FILE": str(path)})
    assert vault.token.get_secret_value() == SECRET


def test_an_optional_secret_is_read_from_its_file(tmp_path: Path) -> None:
    path = secret_file(tmp_path, SECRET)
    vault = Vault.load({"VAULT_TOKEN": "direct", "VAULT_SPARE_FILE": str(path)})
    assert vault.spare is not None
    assert vault.spare.get_secret_value() == SECRET
    assert vault.token.get_secret_value() == "direct"


def test_a_value_that_is_no_secret_has_no_file_variable(tmp_path: Path) -> None:
    # Given VAULT_LABEL_FILE (VAULT_LABEL is not a secret)
    path = secret_file(tmp_path, "from a file")
    vault = Vault.load({"VAULT_TOKEN": "t", "VAULT_LABEL_FILE": str(path)})
    # Then it is not read: only secrets come from files
    assert vault.label == "plain"
    assert Vault.secret_file_variables() == {
        "token": "VAULT_TOKEN_FILE",
        "spare": "VAULT_SPARE_FILE",
    }


def test_a_secret_set_both_ways_is_an_error_naming_both(tmp_path: Path) -> None:
    path = secret_file(tmp_path, SECRET)
    with pytest.raises(ConfigError) as caught:
        Vault.load({"VAULT_TOKEN": "direct", "VAULT_TOKEN_FILE": str(path)})
    message = str(caught.value)
    assert "VAULT_TOKEN and VAULT_TOKEN_FILE are both set" in message
    assert SECRET not in message
    assert "direct" not in message


def test_a_missing_file_names_the_variable_and_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "secret"
    with pytest.raises(ConfigError) as caught:
        Vault.load({"VAULT_TOKEN_FILE": str(path)})
    message = str(caught.value)
    assert message.startswith("VAULT_TOKEN_FILE: cannot read ")
    assert str(path) in message
    assert "No such file or directory" in message


def test_a_path_that_is_no_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"VAULT_TOKEN_FILE: cannot read .*directory"):
        Vault.load({"VAULT_TOKEN_FILE": str(tmp_path)})


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),
        (b"\n", "is empty"),
        (b"\xff\xfe" + SECRET.encode(), "is not UTF-8 text"),
        (SECRET.encode() * 4000, "is larger than 64 KiB"),
    ],
)
def test_a_file_that_holds_no_secret_is_refused_without_its_content(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "secret"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        Vault.load({"VAULT_TOKEN_FILE": str(path)})
    message = str(caught.value)
    assert message.startswith(f"VAULT_TOKEN_FILE: {path} {problem}")
    assert SECRET not in message


def load_beside(environ: dict[str, str]) -> tuple[threading.Thread, list[object]]:
    """``Vault.load(environ)`` in a thread of its own: its result or error lands in the list."""
    outcome: list[object] = []

    def load() -> None:
        try:
            outcome.append(Vault.load(environ))
        except ConfigError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    return thread, outcome


def test_a_named_pipe_no_one_writes_to_is_refused_instead_of_waited_for(tmp_path: Path) -> None:
    # Given VAULT_TOKEN_FILE naming a FIFO that no process writes to (a wrong path, say)
    fifo = tmp_path / "token"
    os.mkfifo(fifo)
    # When the settings are read
    thread, outcome = load_beside({"VAULT_TOKEN_FILE": str(fifo)})
    thread.join(PATIENCE_S)
    if thread.is_alive():  # stuck opening the FIFO: a writer lets it go, and the test fails
        with open(fifo, "wb"):
            pass
        thread.join()
        pytest.fail("reading VAULT_TOKEN_FILE waited for a writer to the FIFO")
    # Then they fail at once, naming the file
    (error,) = outcome
    assert isinstance(error, ConfigError)
    assert str(error).startswith(f"VAULT_TOKEN_FILE: {fifo} is empty")


def test_a_pipe_that_is_written_to_later_is_read_whole(tmp_path: Path) -> None:
    # Given the secret coming through a pipe, as with VAULT_TOKEN_FILE=<(pass show token)
    read_end, write_end = os.pipe()
    try:
        thread, outcome = load_beside({"VAULT_TOKEN_FILE": f"/dev/fd/{read_end}"})
        # When its writer writes only once the settings are being read
        os.write(write_end, SECRET.encode() + b"\n")
        os.close(write_end)
        thread.join()
    finally:
        os.close(read_end)
    # Then the secret is what it wrote
    (vault,) = outcome
    assert isinstance(vault, Vault)
    assert vault.token.get_secret_value() == SECRET


def test_every_problem_with_files_is_named_at_once(tmp_path: Path) -> None:
    path = secret_file(tmp_path, SECRET)
    with pytest.raises(ConfigError) as caught:
        Vault.load(
            {
                "VAULT_TOKEN": "direct",
                "VAULT_TOKEN_FILE": str(path),
                "VAULT_SPARE_FILE": str(tmp_path / "absent"),
            }
        )
    assert "VAULT_TOKEN and VAULT_TOKEN_FILE" in str(caught.value)
    assert "VAULT_SPARE_FILE: cannot read" in str(caught.value)


def test_an_empty_file_variable_counts_as_unset() -> None:
    # As `VAULT_TOKEN_FILE=` in a .env file: the variable itself is used
    vault = Vault.load({"VAULT_TOKEN": "direct", "VAULT_TOKEN_FILE": " "})
    assert vault.token.get_secret_value() == "direct"


def test_the_tuya_secret_comes_from_a_file_with_the_tuya_error_type(tmp_path: Path) -> None:
    path = secret_file(tmp_path, SECRET + "\n")
    settings = TuyaSettings.load({**TUYA, "TUYA_ACCESS_SECRET_FILE": str(path)})
    assert settings.access_secret.get_secret_value() == SECRET
    with pytest.raises(TuyaConfigError, match="TUYA_ACCESS_SECRET_FILE: cannot read"):
        TuyaSettings.load({**TUYA, "TUYA_ACCESS_SECRET_FILE": str(tmp_path / "absent")})


def test_the_smtp_password_and_the_slack_webhook_come_from_files(tmp_path: Path) -> None:
    password = secret_file(tmp_path, SECRET + "\n", "smtp")
    webhook = secret_file(tmp_path, "https://hooks.slack.com/services/T0/B0/x\n", "slack")
    local = LocalSettings.load(
        {
            "SMTP_HOST": "smtp.example.com",
            "SMTP_USER": "me",
            "SMTP_PASSWORD_FILE": str(password),
            "NOTIFY_EMAIL_TO": "ops@example.com",
            "SLACK_WEBHOOK_URL_FILE": str(webhook),
        }
    )
    assert local.smtp is not None
    assert local.smtp.password is not None
    assert local.smtp.password.get_secret_value() == SECRET
    assert local.slack_webhook_url is not None
    assert local.slack_webhook_url.get_secret_value().endswith("/B0/x")


def test_a_secret_from_a_file_is_validated_like_one_from_a_variable(tmp_path: Path) -> None:
    # Given a webhook URL in plain http, in a file
    webhook = secret_file(tmp_path, f"http://hooks.slack.com/services/{SECRET}\n")
    # Then it is refused by the same rule, naming the variable, never the value
    with pytest.raises(ConfigError) as caught:
        LocalSettings.load({"SLACK_WEBHOOK_URL_FILE": str(webhook)})
    assert "SLACK_WEBHOOK_URL must be an https URL" in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "model",
    [
        aws_settings.SchedulerSettings,
        aws_settings.CheckerSettings,
        aws_settings.DifferSettings,
        aws_settings.DigestSettings,
        aws_settings.SlackSettings,
    ],
)
def test_the_functions_take_no_secret_from_the_environment(model: type[EnvSettings]) -> None:
    # Their secrets are in Secrets Manager; the environment holds only the secrets' names
    assert model.secret_file_variables() == {}


def test_make_run_takes_a_secret_file_for_credentials() -> None:
    assert has_credentials({"TUYA_ACCESS_ID": "id", "TUYA_ACCESS_SECRET_FILE": "/run/s"})
    assert has_credentials({"TUYA_ACCESS_ID": "id", "TUYA_ACCESS_SECRET": "s"})
    assert not has_credentials({"TUYA_ACCESS_ID": "id", "TUYA_ACCESS_SECRET_FILE": " "})
    assert not has_credentials({"TUYA_ACCESS_SECRET_FILE": "/run/s"})
