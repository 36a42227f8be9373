"""The settings models are the one list of variables: the CLI's help is generated from them."""

from __future__ import annotations

import argparse
import re

import pytest

from fwwatch.cli import LOCAL_HELP, build_parser
from fwwatch.cli.common import ENVIRONMENT_HELP
from fwwatch.local.config import LocalSettings
from fwwatch.tuya import EnvSettings, TuyaSettings

# ------------------------------------------------------------------------------ help


@pytest.mark.parametrize(
    ("text", "model"), [(ENVIRONMENT_HELP, TuyaSettings), (LOCAL_HELP, LocalSettings)]
)
def test_the_help_lists_every_variable_in_lines_that_fit(
    text: str, model: type[EnvSettings]
) -> None:
    shown = re.findall(r"^  ([A-Z][A-Z0-9_]+)", text, flags=re.MULTILINE)
    assert shown == list(model.variables().values())
    assert max(len(line) for line in text.splitlines()) <= 88


@pytest.mark.parametrize("model", [TuyaSettings, LocalSettings])
def test_the_help_says_secrets_are_never_printed(model: type[EnvSettings]) -> None:
    text = ENVIRONMENT_HELP if model is TuyaSettings else LOCAL_HELP
    entries = re.split(r"\n(?=  [A-Z])", text)
    for name, variable in model.variables().items():
        (entry,) = [entry for entry in entries if entry.lstrip().startswith(variable + " ")]
        is_secret = "SecretStr" in str(model.model_fields[name].annotation)
        assert ("(never printed)" in entry) == is_secret, entry


@pytest.mark.parametrize(
    ("command", "models"),
    [
        ([], (TuyaSettings, LocalSettings)),
        (["check"], (TuyaSettings,)),
        (["devices"], (TuyaSettings,)),
        (["run"], (TuyaSettings, LocalSettings)),
        (["watch"], (TuyaSettings, LocalSettings)),
        (["status"], (LocalSettings,)),
        (["notify-test"], (LocalSettings,)),
    ],
)
def test_each_command_shows_the_variables_it_reads(
    command: list[str], models: tuple[type[EnvSettings], ...]
) -> None:
    parser = build_parser()
    if command:
        (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = commands.choices[command[0]]
    shown = parser.format_help()
    for model in models:
        for variable in model.variables().values():
            assert f"  {variable} " in shown or f"  {variable}\n" in shown, variable
