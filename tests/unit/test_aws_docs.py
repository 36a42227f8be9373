"""README.md's AWS part follows template.yaml and samconfig.toml: alarms, regions, teardown."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.aws.template import Template, load_template

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md"))]
#: Number words as README.md writes counts ("nine CloudWatch alarms").
NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
NUMBERS = {word: number for number, word in enumerate(NUMBER_WORDS.split(" "))}


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def readme() -> str:
    return README.read_text(encoding="utf-8")


def one_line(text: str) -> str:
    return " ".join(text.split())


def section(text: str, heading: str) -> str:
    """The text under a markdown heading, up to the next heading of its level or above."""
    match = re.search(rf"^(#+) {re.escape(heading)}\n", text, re.MULTILINE)
    assert match is not None, f"README.md has no section {heading!r}"
    level = len(match.group(1))
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


FENCED = re.compile(r"^```[a-z]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`(aws [^`]+)`")
AWS_CALL = re.compile(r"(?<![\w/-])(?=aws [a-z0-9-]+ [a-z0-9-]+)")


def aws_commands(text: str) -> list[str]:
    """Every `aws <service> <operation> ...` call in code blocks and inline code, one entry
    per call (a call nested in ``$(...)`` is one of its own), continuation lines joined."""
    unfold = lambda snippet: re.sub(r"\\\n\s*", " ", snippet)  # noqa: E731
    lines = [line for block in FENCED.findall(text) for line in unfold(block).splitlines()]
    lines += [one_line(unfold(span)) for span in INLINE.findall(FENCED.sub("", text))]
    return [
        one_line(part) for line in lines for part in AWS_CALL.split(line) if part.startswith("aws ")
    ]


def deploy_region() -> str:
    """The region samconfig.toml deploys the default environment to."""
    config = tomllib.loads((REPO / "samconfig.toml").read_text(encoding="utf-8"))
    region: str = config["default"]["deploy"]["parameters"]["region"]
    return region


def alarm_counts(template: Template) -> tuple[int, int]:
    """(alarms without Slack, alarms with Slack) that the template creates."""
    alarms = template.of_type("AWS::CloudWatch::Alarm").values()
    unconditional = [a for a in alarms if "Condition" not in a]
    unknown = {a["Condition"] for a in alarms if a.get("Condition") not in (None, "HasSlack")}
    assert unknown == set(), "an alarm under another condition: count it in README.md too"
    return len(unconditional), len(list(alarms))


def test_the_readme_counts_the_alarms_the_template_creates(template: Template) -> None:
    # Given the alarms of the template, with and without Slack
    without_slack, with_slack = alarm_counts(template)
    # When README.md's count is read ("nine CloudWatch alarms, eleven with Slack")
    found = re.search(r"(\w+) CloudWatch alarms, (\w+) with Slack", one_line(readme()))
    assert found is not None, "README.md no longer says how many alarms there are"
    stated = (NUMBERS[found.group(1).lower()], NUMBERS[found.group(2).lower()])
    # Then it is the template's
    assert stated == (without_slack, with_slack)


def test_the_alarm_count_sees_a_conditional_alarm(template: Template) -> None:
    # Given the template's count / Then Slack's alarms are counted apart (the check can fail)
    without_slack, with_slack = alarm_counts(template)
    assert 0 < without_slack < with_slack


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_aws_command_names_the_region_the_stack_is_deployed_to(doc: Path) -> None:
    # Given every `aws` command of the document
    commands = aws_commands(doc.read_text(encoding="utf-8"))
    # When the regions they name are read
    region = deploy_region()
    wrong = [command for command in commands if f"--region {region}" not in command]
    # Then each names samconfig.toml's region: the secrets must be where the stack is
    assert wrong == []


def test_the_readme_has_aws_commands_to_check() -> None:
    # Given README.md / Then the region check above is not vacuous
    assert len(aws_commands(readme())) >= 6
    nested = 'x `aws a b --region r "$(aws c d --x \\\n y)"` and `aws e f`'
    assert aws_commands(nested) == ['aws a b --region r "$(', 'aws c d --x y)"', "aws e f"]


def test_the_teardown_names_what_sam_delete_leaves(template: Template) -> None:
    # Given what the stack keeps when deleted, and the secrets made outside it
    retained = [
        name
        for name, resource in template.resources.items()
        if resource.get("DeletionPolicy") == "Retain"
    ]
    secrets = [name for name in template.parameters if name.endswith("SecretName")]
    # When the teardown section is read
    teardown = section(readme(), "Teardown")
    # Then it names each, with the command that removes it, in the stack's region
    assert retained
    missing = [name for name in [*retained, *secrets] if f"`{name}`" not in teardown]
    assert missing == []
    commands = " ".join(aws_commands(teardown))
    assert "aws dynamodb delete-table" in commands
    assert "aws kms schedule-key-deletion" in commands
    assert "aws secretsmanager delete-secret" in commands
    assert "sam delete" in teardown


def test_the_teardown_reads_outputs_the_template_has(template: Template) -> None:
    # Given the outputs the teardown reads before the stack goes
    teardown = section(readme(), "Teardown")
    wanted = set(re.findall(r"OutputKey=='(\w+)'", teardown))
    # Then the template has each
    assert wanted
    assert wanted <= set(template.outputs)


def test_every_scheduler_invocation_by_hand_names_its_run_and_waits_for_it() -> None:
    # Given every `aws lambda invoke` of the docs
    commands = [c for doc in DOCS for c in aws_commands(doc.read_text(encoding="utf-8"))]
    invokes = [command for command in commands if command.startswith("aws lambda invoke ")]
    # Then each waits for the invocation's answer (the CLI gives up after 60 s and invokes
    # again) and names the run in its payload: an invocation sent again is the same run,
    # not a new one named after its own request, which would enqueue the fleet again
    assert invokes
    careless = [
        command
        for command in invokes
        if "--cli-read-timeout 0" not in command or "--payload fileb://" not in command
    ]
    assert careless == []
