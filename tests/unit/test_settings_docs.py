"""The settings models are the one list of variables: help, README and template.yaml follow it.

The CLI's help is generated from the models; README.md's configuration tables and the
functions' environments in template.yaml are written by hand, so these tests fail when
either names a variable no model has, leaves one out, or bounds a value differently.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from pydantic.fields import FieldInfo

from fwwatch.aws import settings as aws_settings
from fwwatch.aws.publish_sns import sns_message
from fwwatch.cli import build_parser
from fwwatch.cli.common import ENVIRONMENT_HELP
from fwwatch.cli.local import LOCAL_HELP
from fwwatch.events import EventGroup, EventType, FirmwareEvent, group_events
from fwwatch.local.config import LocalSettings, StateSettings
from fwwatch.tuya import EnvSettings, TuyaSettings
from tests.aws.template import Template, load_template

REPO = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]+)`")
#: Values for parameters whose default leaves a conditional function out of the stack.
DEPLOYED_WITH = {"SlackWebhookSecretName": "fwwatch/slack-webhook"}


# ------------------------------------------------------------------------------ helpers


def readme_variables() -> list[str]:
    """The variables in the first column of README.md's ``| variable | meaning |`` tables."""
    found: list[str] = []
    in_table = False
    for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and cells[0] == "variable":
            in_table = True
        elif in_table and not set(cells[0]) <= {"-", " "}:
            found.extend(VARIABLE.findall(cells[0]))
    return found


def function_models(template: Template) -> dict[str, type[EnvSettings]]:
    """Each function's settings model, as its handler loads it (``XSettings.load()``)."""
    models = {}
    for function in template.functions():
        code = REPO / template.function_properties(function)["CodeUri"] / "app.py"
        names = re.findall(r"\b(\w+Settings)\.load\(\)", code.read_text(encoding="utf-8"))
        assert len(names) == 1, f"{code} should load one settings model"
        models[function] = getattr(aws_settings, names[0])
    return models


def environment(template: Template, function: str) -> dict[str, Any]:
    """The function's variables (Globals merged in, as SAM does), unresolved."""
    return dict(template.function_properties(function).get("Environment", {}).get("Variables", {}))


def parameter_of(value: Any) -> str | None:
    """The parameter a variable takes (``!Ref Parameter``), if it takes one."""
    if isinstance(value, Mapping) and list(value) == ["Ref"]:
        return str(value["Ref"])
    return None


def example_value(template: Template, value: Any) -> str:
    """What a deployed function would find: a parameter's default, or a resource's name."""
    if isinstance(value, bool):
        return str(value).lower()
    if not isinstance(value, Mapping):
        return str(value)
    parameter = parameter_of(value)
    if parameter is not None and parameter in template.parameters:
        default = str(template.parameters[parameter].get("Default", ""))
        return DEPLOYED_WITH.get(parameter, default) if default == "" else default
    # A queue URL, a table name, a topic ARN: any non-empty string stands in for it.
    return "resource-" + re.sub(r"\W+", "-", str(value)).strip("-")


def example_environment(template: Template, function: str) -> dict[str, str]:
    return {
        name: example_value(template, value)
        for name, value in environment(template, function).items()
    }


def inclusive_bounds(field: FieldInfo) -> tuple[float | None, float | None]:
    """A field's ``(ge, le)``; an exclusive bound has no CloudFormation equivalent."""
    low = high = None
    for bound in field.metadata:
        assert not isinstance(bound, annotated_types.Gt | annotated_types.Lt), (
            f"{bound} cannot be a parameter's MinValue/MaxValue: use ge/le"
        )
        if isinstance(bound, annotated_types.Ge):
            low = float(bound.ge)  # type: ignore[arg-type]
        if isinstance(bound, annotated_types.Le):
            high = float(bound.le)  # type: ignore[arg-type]
    return low, high


def field_of(model: type[EnvSettings], variable: str) -> FieldInfo:
    names = {variable: name for name, variable in model.variables().items()}
    return model.model_fields[names[variable]]


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


# ------------------------------------------------------------------------------ README


def test_readme_lists_every_variable_of_the_cli_and_no_other() -> None:
    # Given the variables of the CLI's models (a secret's file too) and README's tables
    models: set[str] = set()
    for model in (TuyaSettings, LocalSettings):
        models |= set(model.variables().values()) | set(model.secret_file_variables().values())
    listed = readme_variables()
    # Then each is in the other, once
    assert sorted(models - set(listed)) == [], "missing from README.md's tables"
    assert sorted(set(listed) - models) == [], "in README.md's tables but no setting"
    assert len(listed) == len(set(listed)), "listed twice in README.md"


def readme_filter_policy() -> dict[str, list[str]]:
    """The SNS filter policy README.md shows (``That is the policy `{...}```)."""
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    (policy,) = re.findall(r"That is the policy `(\{.*?\})`", text)
    parsed: dict[str, list[str]] = json.loads(policy)
    return parsed


def matches(policy: dict[str, list[str]], attributes: dict[str, dict[str, str]]) -> bool:
    """SNS's rule for a policy of exact values: every key present, with one of its values."""
    return all(
        key in attributes and attributes[key]["StringValue"] in values
        for key, values in policy.items()
    )


def a_release(kind: EventType) -> EventGroup:
    event = FirmwareEvent(
        type=kind,
        device_id="dev000",
        channel=0,
        product_id="prod01",
        current_version="1.0",
        target_version="1.1",
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    (group,) = group_events([event])
    return group


def test_the_readme_filter_policy_selects_installs_and_failures_once_per_release() -> None:
    policy = readme_filter_policy()

    def selected(kind: EventType, part: tuple[int, int]) -> bool:
        return matches(policy, sns_message(a_release(kind), part=part)["MessageAttributes"])

    assert selected(EventType.UPDATE_INSTALLED, (1, 2))
    assert selected(EventType.UPDATE_FAILED, (1, 1))
    assert not selected(EventType.UPDATE_AVAILABLE, (1, 1))
    assert not selected(EventType.UPDATE_FAILED, (2, 2))  # a part for machines


# ------------------------------------------------------------------------------ template


def test_every_function_has_a_settings_model(template: Template) -> None:
    assert set(function_models(template)) == set(template.functions())


def test_every_variable_the_template_sets_is_a_setting_of_the_function(
    template: Template,
) -> None:
    for function, model in function_models(template).items():
        # Given what the template (and its Globals) gives the function
        unknown = set(environment(template, function)) - set(model.variables().values())
        # Then the function's model reads all of it
        assert sorted(unknown) == [], f"{function}: not a field of {model.__name__}"


def test_the_template_sets_every_required_setting(template: Template) -> None:
    for function, model in function_models(template).items():
        required = {
            model.variables()[name]
            for name, field in model.model_fields.items()
            if field.is_required()
        }
        missing = required - set(environment(template, function))
        assert sorted(missing) == [], f"{function}: {model.__name__} needs these"


def test_every_function_loads_its_settings_from_the_template_defaults(
    template: Template,
) -> None:
    for function, model in function_models(template).items():
        # When the settings are read from the environment a default stack gives
        # Then nothing is missing or out of bounds (a literal such as CHECK_CONCURRENCY too)
        assert isinstance(model.load(example_environment(template, function)), model)


def test_every_bounded_parameter_has_the_bounds_of_its_setting(template: Template) -> None:
    checked = 0
    for function, model in function_models(template).items():
        for variable, value in environment(template, function).items():
            parameter = parameter_of(value)
            spec = template.parameters.get(parameter or "", {})
            if "MinValue" not in spec and "MaxValue" not in spec:
                continue
            # Given a parameter with bounds that a setting takes
            low, high = inclusive_bounds(field_of(model, variable))
            # Then CloudFormation refuses exactly what the function would refuse
            expected = (float(spec.get("MinValue", "nan")), float(spec.get("MaxValue", "nan")))
            assert (low, high) == expected, f"{parameter} -> {function} {variable}"
            checked += 1
    assert checked >= 3  # TuyaQps, CheckerMaxConcurrency, DevicesPerMessage


def test_every_allowed_value_of_a_parameter_is_accepted_by_its_setting(
    template: Template,
) -> None:
    for function, model in function_models(template).items():
        base = example_environment(template, function)
        for variable, value in environment(template, function).items():
            allowed = template.parameters.get(parameter_of(value) or "", {}).get("AllowedValues")
            for choice in allowed or ():
                text = str(choice).lower() if isinstance(choice, bool) else str(choice)
                model.load({**base, variable: text})


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
def test_the_help_says_secrets_are_never_printed_and_may_come_from_files(
    model: type[EnvSettings],
) -> None:
    text = ENVIRONMENT_HELP if model is TuyaSettings else LOCAL_HELP
    entries = [" ".join(entry.split()) for entry in re.split(r"\n(?=  [A-Z])", text)]
    for name, variable in model.variables().items():
        (entry,) = [entry for entry in entries if entry.startswith(variable + " ")]
        is_secret = "SecretStr" in str(model.model_fields[name].annotation)
        assert ("(never printed;" in entry) == is_secret, entry
        assert (f" {variable}_FILE: a file holding it" in entry) == is_secret, entry


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
        (["ignore"], (StateSettings,)),
        (["report"], (StateSettings,)),
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
        for variable in model.secret_file_variables().values():
            assert f" {variable}: a file holding it" in " ".join(shown.split()), variable
