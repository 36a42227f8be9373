"""template.yaml as SAM deploys it: no IAM grant on every resource, except the listed few.

SAM adds IAM of its own when it expands a template: roles for functions that have none, with
AWS managed policies for their event sources and tracing (AWSLambdaSQSQueueExecutionRole may
receive and delete messages of any queue, AWSLambdaDynamoDBExecutionRole read any stream),
and statements for destinations and schedules. A test of the template as written cannot see
them, so these tests expand it with SAM's own translator (as ``sam validate`` does), from
.venv-tools where SAM CLI brings it, and read every identity statement of the result.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.aws.iam import UNSCOPED_ACTIONS, as_list, identity_statements, unscoped_grants
from tests.aws.template import Template, load_template

REPO = Path(__file__).resolve().parents[2]
EXPAND = REPO / "tests" / "aws" / "sam_expand.py"


def tools_python() -> Path | None:
    """The interpreter of .venv-tools: this checkout's, or the one beside the running venv."""
    candidates = [REPO / ".venv-tools", Path(sys.prefix).parent / ".venv-tools"]
    for venv in candidates:
        python = venv / "bin" / "python"
        if python.is_file():
            return python
    return None


def expand(body: dict[str, Any]) -> dict[str, Any]:
    """A parsed template expanded by SAM's translator, in another interpreter."""
    python = tools_python()
    if python is None:
        pytest.fail("no .venv-tools with SAM's translator: run `make tools` (make test does)")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    done = subprocess.run(
        [str(python), str(EXPAND)],
        input=json.dumps(body),
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, f"SAM's translator refused the template:\n{done.stderr[-3000:]}"
    expanded: dict[str, Any] = json.loads(done.stdout)
    return expanded


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


@pytest.fixture(scope="module")
def expanded(template: Template) -> dict[str, Any]:
    return expand(copy.deepcopy(dict(template.body)))


def test_the_expansion_is_cloudformation_with_every_function_of_the_template(
    template: Template, expanded: dict[str, Any]
) -> None:
    # Given the expanded template / When its functions are listed
    resources = expanded["Resources"]
    functions = {lid for lid, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    # Then there is no SAM resource left, and every function of the template is there
    assert [lid for lid, r in resources.items() if r["Type"].startswith("AWS::Serverless")] == []
    assert functions == set(template.functions())


def test_no_deployed_statement_grants_on_every_resource_beyond_the_list(
    expanded: dict[str, Any],
) -> None:
    # Given every identity statement and managed policy of the deployed stack
    # When those that apply to every resource are picked out
    grants = unscoped_grants(expanded["Resources"])
    # Then none is left but the actions IAM cannot scope (tests/aws/iam.py says why each)
    assert grants == []


def test_sam_makes_no_role_of_its_own(template: Template, expanded: dict[str, Any]) -> None:
    # Given the roles of the deployed stack
    roles = {lid for lid, r in expanded["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    # When they are set against the roles the template declares
    # Then they are the same: SAM added none (with its managed policies) for a function
    assert roles == set(template.of_type("AWS::IAM::Role"))


def test_no_deployed_statement_grants_a_wildcard_action(expanded: dict[str, Any]) -> None:
    # Given every identity statement of the deployed stack
    actions = [
        (owner, action)
        for owner, statement in identity_statements(expanded["Resources"])
        for action in as_list(statement.get("Action", []))
    ]
    # When the actions with a wildcard are picked out / Then there are none
    assert actions
    assert [(owner, action) for owner, action in actions if "*" in action] == []


def test_every_action_allowed_on_every_resource_is_still_used(expanded: dict[str, Any]) -> None:
    # Given the actions granted on "*" in the deployed stack
    used = {
        action
        for _, statement in identity_statements(expanded["Resources"])
        if "*" in as_list(statement.get("Resource", []))
        for action in as_list(statement.get("Action", []))
    }
    # When they are set against the list of actions allowed there
    # Then every entry of the list is needed: the list names no more than the stack uses
    assert set(UNSCOPED_ACTIONS) == used


def test_the_check_finds_what_sam_attaches_to_a_function_without_a_role(
    template: Template,
) -> None:
    # Given the template with the checker's own role taken away (SAM then makes one)
    body = copy.deepcopy(dict(template.body))
    checker = body["Resources"]["CheckerFunction"]
    del checker["Properties"]["Role"]
    del checker["DependsOn"]
    # When it is expanded and checked
    grants = unscoped_grants(expand(body)["Resources"])
    # Then the managed policies SAM attaches for the queue and the logs are found
    found = {grant for owner, grant in grants if owner == "CheckerFunctionRole"}
    assert any("AWSLambdaSQSQueueExecutionRole" in grant for grant in found), found
    assert any("AWSLambdaBasicExecutionRole" in grant for grant in found), found
