"""The identity statements of a template, and the few actions that may apply to every resource.

Used on template.yaml as written (tests/unit/test_template.py) and as SAM expands it
(tests/unit/test_iam_expansion.py), so that one list says where ``Resource: "*"`` is allowed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "IDENTITY_TYPES",
    "UNSCOPED_ACTIONS",
    "as_list",
    "identity_statements",
    "unscoped_grants",
]

#: Actions IAM defines no resource for: a statement granting them can only name "*". Each is
#: named with what it does and why the stack needs it (docs/reliability.md repeats the list).
UNSCOPED_ACTIONS: Mapping[str, str] = {
    "xray:PutTraceSegments": "uploads the trace segments of a function with active tracing "
    "(Lambda's own segments; no SDK in the functions)",
    "xray:PutTelemetryRecords": "uploads the X-Ray daemon's telemetry beside those segments",
    "dynamodb:ListStreams": "lists stream ARNs, reads no record; Lambda's poller of the state "
    "table's stream needs it",
}

#: The resource types whose documents are identity policies (of roles, users, groups).
IDENTITY_TYPES = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


def as_list(value: Any) -> list[Any]:
    """``value`` as a list (IAM accepts a string or a list wherever it takes several)."""
    return value if isinstance(value, list) else [value]


def identity_statements(resources: Mapping[str, Mapping[str, Any]]) -> Iterator[tuple[str, Any]]:
    """(logical ID, statement) of every identity policy among ``resources``.

    Roles' inline policies, ``AWS::IAM::Policy`` and ``AWS::IAM::ManagedPolicy`` documents; not
    trust policies (who may assume a role) nor resource policies (keys, queues, topics).
    """
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        elif resource.get("Type") in IDENTITY_TYPES:
            documents = [properties["PolicyDocument"]]
        else:
            continue
        for document in documents:
            for statement in as_list(document["Statement"]):
                yield logical_id, statement


def unscoped_grants(resources: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(logical ID, action) of every grant on every resource that is not in the allowed list.

    A statement applies to every resource when its ``Resource`` holds ``"*"`` or when it
    uses ``NotResource``; an attached managed policy counts as unscoped too: its document is
    not in the template, and the ones SAM attaches (AWSLambdaBasicExecutionRole,
    AWSLambdaSQSQueueExecutionRole, AWSLambdaDynamoDBExecutionRole, AWSXrayWriteOnlyAccess)
    all grant on "*".
    """
    found: list[tuple[str, str]] = []
    for logical_id, statement in identity_statements(resources):
        if statement.get("Effect") != "Allow":
            continue
        everywhere = "NotResource" in statement or "*" in as_list(statement.get("Resource", []))
        if everywhere and "NotAction" in statement:
            found.append((logical_id, f"every action but {statement['NotAction']}"))
        elif everywhere:
            actions = as_list(statement.get("Action", []))
            found += [(logical_id, str(a)) for a in actions if a not in UNSCOPED_ACTIONS]
    for logical_id, resource in resources.items():
        if resource.get("Type") in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            for arn in resource.get("Properties", {}).get("ManagedPolicyArns", []):
                found.append((logical_id, f"managed policy {arn}"))
    return found
