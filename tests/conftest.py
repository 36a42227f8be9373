"""For every test: a fake AWS environment, and stacks made in moto from template.yaml.

The environment is set before any test module is imported, so no boto3 client can ever
find real credentials or a real account. ``make_aws_stack(...)`` provisions the template in
moto (see tests/aws/provision.py for the arguments) inside a ``mock_aws()`` that lasts for
the test::

    def test_x(make_aws_stack, monkeypatch):
        stack = make_aws_stack(parameters={"TuyaEndpoint": simulator.url})
        for name, value in stack.function_env("CheckerFunction").items():
            monkeypatch.setenv(name, value)

``aws_stack`` is the same with the template's defaults.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

# tests/ is no package (pytest imports test modules by their path): put the repository root on
# sys.path so that `tests.aws` imports alike under `pytest` and `python -m pytest`.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.aws.provision import REGION, MakeAwsStack, Stack, provision_stack  # noqa: E402

#: Set for the whole test session: fake credentials, the stack's region, Powertools quiet.
TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # No profile or config file of the machine may leak in.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    # botocore would call account-scoped DynamoDB Streams endpoints that moto does not answer.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_SERVICE_NAME": "fwwatch",
    "POWERTOOLS_METRICS_NAMESPACE": "fwwatch",
}
#: Removed for the session: they would point boto3 at a real account or endpoint.
UNSET_ENVIRONMENT = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL")


def pytest_configure(config: pytest.Config) -> None:
    for name in UNSET_ENVIRONMENT:
        os.environ.pop(name, None)
    for name in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL_")]:
        os.environ.pop(name)
    os.environ.update(TEST_ENVIRONMENT)


@pytest.fixture
def make_aws_stack() -> Iterator[MakeAwsStack]:
    """A factory: ``make_aws_stack(parameters=None, *, tuya_secret=None,
    slack_webhook_url=None, stack_name="fwwatch-test")`` -> a :class:`Stack` in moto."""
    with mock_aws():
        yield provision_stack


@pytest.fixture
def aws_stack(make_aws_stack: MakeAwsStack) -> Stack:
    """The stack with the template's default parameters, in moto."""
    return make_aws_stack()
