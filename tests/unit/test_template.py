"""template.yaml, read statically: least privilege, encryption, no secrets, failure handling.

What the IAM tests cover: every identity statement of the template (the roles of the
functions and of the schedule, and the policies attached to them), the key policy, and what
each function is given against what its role may reach. SAM adds IAM of its own when it
expands the template; tests/unit/test_iam_expansion.py reads the expanded stack.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from fwwatch.aws.ledger_dynamodb import DynamoNewsLedger
from fwwatch.aws.token_dynamodb import DynamoTokenStore
from tests.aws import iam
from tests.aws.iam import unscoped_grants
from tests.aws.template import PSEUDO_PARAMETERS, Template, load_template, references

REPO = Path(__file__).resolve().parents[2]

SECRET_SOUNDING = re.compile(
    r"secret|password|passwd|token|webhook|api_?key|access_?key|private", re.IGNORECASE
)
SECRET_SECRETS_MANAGER_ARN = re.compile(
    r"arn:\$\{AWS::Partition\}:secretsmanager:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
    r"secret:\$\{(?P<parameter>\w+SecretName)\}-\?{6}"
)


# ------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def looks_like_a_secret(value: str) -> bool:
    """A Slack webhook, an AWS access key, credentials in a URL, or a long random token."""
    if re.search(r"hooks\.slack\.com/services/|AKIA[0-9A-Z]{16}|://[^/\s:@]+:[^/\s@]+@", value):
        return True
    return bool(
        re.fullmatch(r"[A-Za-z0-9+/=_-]{20,}", value)
        and re.search(r"\d", value)
        and re.search(r"[A-Za-z]", value)
    )


def events_of_type(template: Template, kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(function, event name, properties) of every event source of this type."""
    return [
        (function, name, dict(event.get("Properties", {})))
        for function in template.functions()
        for name, event in template.function_properties(function).get("Events", {}).items()
        if event["Type"] == kind
    ]


def get_att_target(value: Any, attribute: str = "Arn") -> str:
    """The logical ID of ``!GetAtt X.attribute``, or a failed assertion."""
    assert isinstance(value, Mapping), f"{value!r} is no !GetAtt"
    assert "Fn::GetAtt" in value, f"{value!r} is no !GetAtt"
    target, got = value["Fn::GetAtt"]
    assert got == attribute, f"!GetAtt {target}.{got}, expected .{attribute}"
    return str(target)


def dead_letter_queues(template: Template) -> set[str]:
    """Every queue that holds failures: redrive targets, schedule DLQs, stream destinations."""
    queues = {
        get_att_target(resource["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for resource in template.of_type("AWS::SQS::Queue").values()
        if "RedrivePolicy" in resource.get("Properties", {})
    }
    queues |= {
        get_att_target(props["DeadLetterConfig"]["Arn"])
        for _, _, props in events_of_type(template, "ScheduleV2")
        if "DeadLetterConfig" in props
    }
    queues |= {
        get_att_target(props["DestinationConfig"]["OnFailure"]["Destination"])
        for _, _, props in events_of_type(template, "DynamoDB")
        if "DestinationConfig" in props
    }
    return queues


def matches(pattern: Any, value: Any) -> bool:
    """Lambda event filtering, for the operators the template uses (and a few more)."""
    if isinstance(pattern, Mapping):
        if not isinstance(value, Mapping):
            return False
        for key, sub in pattern.items():
            if isinstance(sub, list) and {"exists": False} in sub:
                if key in value:
                    return False
            elif key not in value or not matches(sub, value[key]):
                return False
        return True
    return any(_matches_rule(rule, value) for rule in pattern)


def _matches_rule(rule: Any, value: Any) -> bool:
    if not isinstance(rule, Mapping):
        return bool(rule == value)
    if "anything-but" in rule:
        excluded = rule["anything-but"]
        return value not in as_list(excluded)
    if "prefix" in rule:
        return isinstance(value, str) and value.startswith(rule["prefix"])
    if "exists" in rule:
        return bool(rule["exists"])
    raise NotImplementedError(f"filter rule {rule!r}")


def stream_record(name: str, new: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> Any:
    """A DynamoDB stream record of the state table with these images."""
    image = new or old
    assert image is not None
    dynamodb: dict[str, Any] = {
        "Keys": {"device_id": image["device_id"], "channel": image["channel"]},
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        dynamodb["NewImage"] = dict(new)
    if old is not None:
        dynamodb["OldImage"] = dict(old)
    return {"eventName": name, "eventSource": "aws:dynamodb", "dynamodb": dynamodb}


def state_image(channel: int) -> dict[str, Any]:
    return {
        "device_id": {"S": "bf7c19e4a0b2c3d4e5f601"},
        "channel": {"N": str(channel)},
        "channel_name": {"S": "device" if channel < 0 else "Zigbee"},
        "upgrade_status": {"N": "0"},
        "update_available": {"BOOL": False},
    }


def stream_filters(template: Template) -> list[dict[str, Any]]:
    ((_, _, props),) = events_of_type(template, "DynamoDB")
    return [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]


def passes_filters(template: Template, record: Any) -> bool:
    return any(matches(pattern, record) for pattern in stream_filters(template))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def role_of(template: Template, function: str) -> str:
    """The logical ID of the role a function runs as (``Role: !GetAtt X.Arn``)."""
    role = template.function_properties(function).get("Role")
    assert role is not None, f"{function} has no Role: SAM would make one with managed policies"
    return get_att_target(role)


def policies_of(template: Template, role: str) -> list[str]:
    """The ``AWS::IAM::Policy`` resources attached to a role."""
    return [
        name
        for name, policy in template.of_type("AWS::IAM::Policy").items()
        if {"Ref": role} in as_list(policy["Properties"]["Roles"])
    ]


def role_statements(template: Template, role: str) -> list[tuple[str, dict[str, Any]]]:
    """(owner, statement) of a role's inline policies and of the policies attached to it."""
    return [
        (owner, statement)
        for owner, statement in iam.identity_statements(template.resources)
        if owner == role or owner in policies_of(template, role)
    ]


def function_statements(template: Template, function: str) -> list[tuple[str, dict[str, Any]]]:
    """(owner, statement) of every identity statement of the function's role."""
    return role_statements(template, role_of(template, function))


def identity_statements(template: Template) -> list[tuple[str, dict[str, Any]]]:
    """(owner, statement) of every identity policy written in the template."""
    return list(iam.identity_statements(template.resources))


def statement_targets(template: Template, statement: Mapping[str, Any]) -> set[str]:
    """What a statement's resources name: logical IDs, secret parameters, or ``*``."""
    targets: set[str] = set()
    for resource in as_list(statement.get("Resource", [])):
        if resource == "*":
            targets.add("*")
            continue
        named = set(references(resource)) & (set(template.resources) | set(template.parameters))
        assert named, f"{resource!r} names nothing of the template"
        targets |= named
    return targets


def granted(template: Template, role: str) -> set[tuple[str, str]]:
    """(action, target) of every grant of a role: targets as :func:`statement_targets`."""
    return {
        (action, target)
        for _, statement in role_statements(template, role)
        if statement.get("Effect") == "Allow"
        for action in as_list(statement["Action"])
        for target in statement_targets(template, statement)
    }


def sends_to(template: Template, function: str) -> set[str]:
    """The queues a function sends to: named in its environment, or its destinations."""
    queues = set(template.of_type("AWS::SQS::Queue"))
    properties = template.function_properties(function)
    named = set(references(properties.get("Environment", {})))
    destinations = [properties.get("EventInvokeConfig", {}).get("DestinationConfig", {})]
    destinations += [
        event.get("Properties", {}).get("DestinationConfig", {})
        for event in properties.get("Events", {}).values()
    ]
    for config in destinations:
        for outcome in config.values():
            named |= set(references(outcome.get("Destination", {})))
    return named & queues


def given_to(template: Template, function: str) -> set[str]:
    """What a function is given to reach: the resources and secret parameters its
    environment names, the queues and streams it consumes, its destinations and log group.
    (Its SNS and schedule events need nothing of its role: SNS invokes it under a resource
    policy, the schedule under a role of its own.)"""
    properties = template.function_properties(function)
    named = set(references(properties.get("Environment", {})))
    given = named & set(template.resources)
    given |= {name for name in named if name.endswith("SecretName") and name in template.parameters}
    for event in properties.get("Events", {}).values():
        props = event.get("Properties", {})
        if event["Type"] == "SQS":
            given.add(get_att_target(props["Queue"]))
        elif event["Type"] == "DynamoDB":
            given.add(get_att_target(props["Stream"], "StreamArn"))
    given |= sends_to(template, function)
    given.add(properties["LoggingConfig"]["LogGroup"]["Ref"])
    return given


def key_statements(template: Template) -> list[dict[str, Any]]:
    """The statements of every key policy of the template."""
    return [
        statement
        for key in template.of_type("AWS::KMS::Key").values()
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
    ]


#: The KMS actions that encrypt, decrypt or hand out keys (what reading a table takes).
CRYPTOGRAPHIC_ACTIONS = (
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:ReEncrypt",
    "kms:CreateGrant",
)


# ------------------------------------------------------------------------------ IAM


def test_the_template_has_inline_statements_to_check(template: Template) -> None:
    # Given the template / When its identity statements are gathered
    statements = identity_statements(template)
    # Then there are some: the checks below are not vacuous
    assert len(statements) >= 4


def test_no_identity_statement_grants_a_wildcard_action(template: Template) -> None:
    # Given every inline identity statement
    statements = identity_statements(template)
    # When their actions are listed
    wildcards = [
        (owner, action)
        for owner, statement in statements
        for action in as_list(statement.get("Action", []))
        if "*" in str(action)
    ]
    # Then none has a wildcard, and none grants by NotAction
    assert wildcards == []
    assert [owner for owner, statement in statements if "NotAction" in statement] == []


def test_no_identity_statement_applies_to_every_resource_but_the_listed_actions(
    template: Template,
) -> None:
    # Given every identity statement of the template
    # When the grants on every resource are picked out (tests/aws/iam.py lists the exceptions)
    grants = unscoped_grants(template.resources)
    # Then there are none beyond the actions IAM cannot scope
    assert grants == []


def test_every_function_has_a_role_of_its_own_and_no_sam_policies(template: Template) -> None:
    # Given every function
    roles = {function: role_of(template, function) for function in template.functions()}
    for function, role in roles.items():
        properties = template.function_properties(function)
        # When its role is read / Then it is a role of the template, under the same condition
        assert template.resource(role)["Type"] == "AWS::IAM::Role", function
        assert template.resource(role).get("Condition") == template.resource(function).get(
            "Condition"
        ), function
        # and SAM gets no Policies to turn into a role of its own
        assert "Policies" not in properties, function
    # And no two functions share a role
    assert len(set(roles.values())) == len(roles)


def test_every_function_role_may_be_assumed_by_lambda_only(template: Template) -> None:
    for function in template.functions():
        # Given the trust policy of the function's role
        trust = template.properties(role_of(template, function))["AssumeRolePolicyDocument"]
        # When its principals are read / Then Lambda is the only one
        assert [s["Principal"] for s in as_list(trust["Statement"])] == [
            {"Service": "lambda.amazonaws.com"}
        ], function


def test_every_schedule_has_a_role_that_only_the_accounts_scheduler_assumes(
    template: Template,
) -> None:
    schedules = events_of_type(template, "ScheduleV2")
    assert schedules
    for function, _, props in schedules:
        # Given the schedule's role (else SAM would make one, outside the key policy)
        role = get_att_target(props["RoleArn"])
        trust = template.properties(role)["AssumeRolePolicyDocument"]
        (statement,) = as_list(trust["Statement"])
        # When its trust policy is read / Then only EventBridge Scheduler of this account
        assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
        assert statement["Condition"] == {
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        }
        # and it may invoke this function and send to the schedule's dead-letter queue only
        assert granted(template, role) == {
            ("lambda:InvokeFunction", function),
            ("sqs:SendMessage", get_att_target(props["DeadLetterConfig"]["Arn"])),
        }


def test_every_function_waits_for_the_policy_of_its_role(template: Template) -> None:
    for function, resource in template.functions().items():
        # Given the policies attached to the function's role
        policies = policies_of(template, role_of(template, function))
        # When the function's dependencies are read
        depends = set(as_list(resource.get("DependsOn", [])))
        # Then it is created after them: its event source mapping checks the role's grants
        assert policies, function
        assert set(policies) <= depends, function


def test_each_function_may_reach_exactly_what_it_is_given(template: Template) -> None:
    for function in template.functions():
        # Given what the function is given: the resources and secrets its environment names,
        # its event sources, destinations and log group
        given = given_to(template, function)
        # When the resources its role's statements name are gathered
        reached = {target for _, target in granted(template, role_of(template, function))}
        # Then they are the same: nothing it is given is out of reach, nothing else is in it
        assert reached - {"*"} == given, function


def test_each_function_may_use_what_its_event_sources_and_destinations_need(
    template: Template,
) -> None:
    needs: dict[str, set[str]] = {
        "SQS": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
        "DynamoDB": {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"},
    }
    for function in template.functions():
        grants = granted(template, role_of(template, function))
        properties = template.function_properties(function)
        for event in properties.get("Events", {}).values():
            props = event.get("Properties", {})
            # Given each queue or stream it consumes / Then the poller may read it
            if event["Type"] == "SQS":
                queue = get_att_target(props["Queue"])
                assert {(a, queue) for a in needs["SQS"]} <= grants, function
            if event["Type"] == "DynamoDB":
                table = get_att_target(props["Stream"], "StreamArn")
                assert {(a, table) for a in needs["DynamoDB"]} <= grants, function
                assert ("dynamodb:ListStreams", "*") in grants, function
        # And every queue it sends failures to, or its environment names, may be sent to
        for queue in sends_to(template, function):
            assert ("sqs:SendMessage", queue) in grants, (function, queue)
        # And it may write its own logs
        group = properties["LoggingConfig"]["LogGroup"]["Ref"]
        assert {("logs:CreateLogStream", group), ("logs:PutLogEvents", group)} <= grants


def leading_key_patterns(statement: Mapping[str, Any]) -> list[str]:
    """The partition keys a statement is held to (``dynamodb:LeadingKeys``), or ``["*"]``."""
    keys = statement.get("Condition", {}).get("ForAllValues:StringLike", {})
    return [str(pattern) for pattern in as_list(keys.get("dynamodb:LeadingKeys", ["*"]))]


def test_only_the_scheduler_and_the_checker_may_read_the_tuya_token(template: Template) -> None:
    token_key = inspect.signature(DynamoTokenStore).parameters["key"].default
    reads = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan"}
    readers = set()
    for function in template.functions():
        for _, statement in function_statements(template, function):
            # Given each statement that reads the control table
            if "ControlTable" not in statement_targets(template, statement):
                continue
            if not reads & set(as_list(statement["Action"])):
                continue
            # When the items it is held to are matched against the token's
            patterns = leading_key_patterns(statement)
            if any(fnmatchcase(token_key, pattern) for pattern in patterns):
                readers.add(function)
    # Then only the two functions that call Tuya may read the token's item
    assert readers == {"SchedulerFunction", "CheckerFunction"}


class RecordingDynamoDB:
    """A DynamoDB client that records the keys it is asked for and finds nothing."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        for request in RequestItems.values():
            self.keys += [key["pk"]["S"] for key in request["Keys"]]
        return {"Responses": {}}

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        for requests in RequestItems.values():
            self.keys += [r["PutRequest"]["Item"]["pk"]["S"] for r in requests]
        return {}


def test_the_digest_may_reach_every_item_its_ledger_uses(template: Template) -> None:
    # Given the partition keys the digest's role is held to on the control table
    (patterns,) = [
        leading_key_patterns(statement)
        for _, statement in function_statements(template, "DigestFunction")
        if "ControlTable" in statement_targets(template, statement)
    ]
    # When the ledger reads and records news through a client that records its keys
    client = RecordingDynamoDB()
    ledger = DynamoNewsLedger(client, "control")
    ledger.published(["update_available|keyjup78v54myhan|0|1.3.0|bf3a61c0e2d94f5b8a01c7"])
    ledger.record(["update_available|keyjup78v54myhan|0|1.3.0|bf3a61c0e2d94f5b8a01c7"])
    # Then every key it used is one the condition lets through, and the token's is not
    assert len(client.keys) == 2
    assert all(any(fnmatchcase(key, p) for p in patterns) for key in client.keys), client.keys
    assert patterns != ["*"]


def test_every_function_with_active_tracing_may_upload_traces(template: Template) -> None:
    # Given the functions' tracing / Then they are traced by Lambda, and may upload traces
    assert template.function_globals["Tracing"] == "Active"
    for function in template.functions():
        grants = granted(template, role_of(template, function))
        assert {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")} <= grants


def test_every_secret_a_function_reads_is_one_named_by_a_parameter(template: Template) -> None:
    for function in template.functions():
        # Given the secrets its role may read
        secrets = [
            statement["Resource"]
            for _, statement in function_statements(template, function)
            if "secretsmanager:GetSecretValue" in as_list(statement["Action"])
        ]
        for secret in secrets:
            # When each is matched against a secret ARN named by a parameter
            found = SECRET_SECRETS_MANAGER_ARN.fullmatch(str(secret.get("Fn::Sub")))
            # Then it is exactly that secret (its six random characters, no wider pattern)
            assert found is not None, (function, secret)
            assert found["parameter"] in template.parameters


def test_the_key_policy_grants_no_wildcard_action(template: Template) -> None:
    # Given the statements of every key policy / When wildcard actions are picked out
    wildcards = [
        (statement["Sid"], action)
        for statement in key_statements(template)
        for action in as_list(statement["Action"])
        if "*" in action
    ]
    # Then there are none: each statement names what it allows
    assert wildcards == []


def test_the_account_administers_the_key_without_using_it(template: Template) -> None:
    # Given the key policy's statements for the account itself, without conditions
    root = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    unconditional = [
        action
        for statement in key_statements(template)
        if statement["Principal"] == root and not statement.get("Condition")
        for action in as_list(statement["Action"])
    ]
    # When the cryptographic actions among them are picked out
    crypto = [a for a in unconditional if a.startswith(CRYPTOGRAPHIC_ACTIONS)]
    # Then there are none: administering the key (policy, rotation, deletion) is not reading
    assert unconditional
    assert crypto == []


def test_the_account_uses_the_key_only_through_dynamodb_and_sqs(template: Template) -> None:
    # Given the key policy's statements for the account that allow cryptographic actions
    root = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    statements = [
        statement
        for statement in key_statements(template)
        if statement["Principal"] == root
        and any(a.startswith(CRYPTOGRAPHIC_ACTIONS) for a in as_list(statement["Action"]))
    ]
    # When their conditions are read
    (condition,) = [statement["Condition"]["StringEquals"] for statement in statements]
    # Then only calls DynamoDB or SQS make for this account pass: a principal of the account
    # can read a token only through DynamoDB, and only with kms:Decrypt in its IAM policy too
    assert condition["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}
    assert condition["kms:ViaService"] == [
        {"Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"},
        {"Fn::Sub": "sqs.${AWS::Region}.amazonaws.com"},
    ]


def test_the_key_policy_names_every_role_of_the_stack(template: Template) -> None:
    # Given the roles the key policy lets use the key, and the condition they use it under
    (statement,) = [
        s
        for s in key_statements(template)
        if "AWS" in s["Principal"] and s["Sid"].startswith("TheStacksRoles")
    ]
    named = {get_att_target(p) for p in as_list(statement["Principal"]["AWS"]) if "Fn::If" not in p}
    named |= {
        get_att_target(p["Fn::If"][1])
        for p in as_list(statement["Principal"]["AWS"])
        if "Fn::If" in p
    }
    # When they are set against the roles of the template / Then every role is named
    assert named == set(template.of_type("AWS::IAM::Role"))
    # and a conditional role under its own condition
    for principal in as_list(statement["Principal"]["AWS"]):
        if "Fn::If" in principal:
            condition, role = principal["Fn::If"][0], get_att_target(principal["Fn::If"][1])
            assert template.resource(role)["Condition"] == condition
            assert principal["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    # And they may use it only through the services of the stack's tables, queues and topics
    assert statement["Condition"] == {
        "StringEquals": {
            "kms:ViaService": [
                {"Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"},
                {"Fn::Sub": "sqs.${AWS::Region}.amazonaws.com"},
                {"Fn::Sub": "sns.${AWS::Region}.amazonaws.com"},
            ]
        }
    }
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= set(statement["Action"])


def test_every_service_in_the_key_policy_is_scoped_by_a_condition(template: Template) -> None:
    # Given the key policy statements for AWS services
    services = [
        statement for statement in key_statements(template) if "Service" in statement["Principal"]
    ]
    # When those without a condition are picked out
    unscoped = [statement["Sid"] for statement in services if not statement.get("Condition")]
    # Then every service may use the key only for this account's resources
    assert services
    assert unscoped == []


def test_logs_may_use_the_key_only_for_log_groups_of_this_account(template: Template) -> None:
    # Given the statement for CloudWatch Logs
    (statement,) = [
        statement
        for statement in key_statements(template)
        if statement["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    ]
    # When its condition is read
    context = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    # Then it names this account's log groups
    assert context == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"
    }


# ------------------------------------------------------------------------------ encryption


def test_every_queue_is_encrypted_with_the_stack_key(template: Template) -> None:
    # Given every queue / When its key is read
    keys = {
        name: queue["Properties"].get("KmsMasterKeyId")
        for name, queue in template.of_type("AWS::SQS::Queue").items()
    }
    # Then it is the stack's key (the check messages and dead letters name devices and errors)
    assert keys
    assert {name: key for name, key in keys.items() if key != {"Ref": "EncryptionKey"}} == {}
    assert [
        n
        for n, q in template.of_type("AWS::SQS::Queue").items()
        if "SqsManagedSseEnabled" in q["Properties"]
    ] == []


def test_every_topic_is_encrypted_with_a_key_of_the_template(template: Template) -> None:
    # Given every topic / When its key is read
    keys = {
        name: topic["Properties"].get("KmsMasterKeyId")
        for name, topic in template.of_type("AWS::SNS::Topic").items()
    }
    # Then it is the stack's own key
    assert keys
    assert all(key == {"Ref": "EncryptionKey"} for key in keys.values()), keys


def test_every_table_is_encrypted_with_the_stack_key_and_recoverable(template: Template) -> None:
    # Given every table (the control table holds the Tuya token)
    tables = template.of_type("AWS::DynamoDB::Table")
    for name, table in tables.items():
        # When its encryption and point-in-time recovery are read
        sse = table["Properties"]["SSESpecification"]
        pitr = table["Properties"]["PointInTimeRecoverySpecification"]
        # Then it is the stack's key, not the AWS owned or managed one that any principal with
        # dynamodb:GetItem reads through, and it can be restored
        assert sse == {
            "SSEEnabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": {"Ref": "EncryptionKey"},
        }, name
        assert pitr == {"PointInTimeRecoveryEnabled": True}, name
    assert tables


def test_every_log_group_is_encrypted_with_the_stack_key(template: Template) -> None:
    # Given every log group / When its key is read
    keys = [
        group["Properties"].get("KmsKeyId")
        for group in template.of_type("AWS::Logs::LogGroup").values()
    ]
    # Then it is the stack's key
    assert keys
    assert all(key == {"Fn::GetAtt": ["EncryptionKey", "Arn"]} for key in keys)


def test_the_stack_key_rotates_and_has_an_alias(template: Template) -> None:
    # Given the stack's key / When its rotation and aliases are read
    aliases = [a["Properties"] for a in template.of_type("AWS::KMS::Alias").values()]
    # Then it rotates, and has the stack's alias
    assert template.properties("EncryptionKey")["EnableKeyRotation"] is True
    assert aliases == [
        {
            "AliasName": {"Fn::Sub": "alias/fwwatch-${AWS::StackName}"},
            "TargetKeyId": {"Ref": "EncryptionKey"},
        }
    ]


def test_the_key_outlives_the_stack_with_every_table_it_keeps(template: Template) -> None:
    # Given the tables the stack keeps when it is deleted
    kept = [
        name
        for name, table in template.of_type("AWS::DynamoDB::Table").items()
        if table.get("DeletionPolicy") == "Retain"
    ]
    key = template.resource("EncryptionKey")
    # When the key's own policies are read / Then it is kept too: a table without its key is
    # unreadable once the key's deletion completes
    assert kept == ["StateTable"]
    assert (key.get("DeletionPolicy"), key.get("UpdateReplacePolicy")) == ("Retain", "Retain")


def test_every_function_has_its_own_log_group_with_bounded_retention(template: Template) -> None:
    groups = template.of_type("AWS::Logs::LogGroup")
    used = []
    for function, resource in template.functions().items():
        # Given the log group the function logs to
        group = template.function_properties(function)["LoggingConfig"]["LogGroup"]["Ref"]
        used.append(group)
        # When it is looked up / Then it exists under the same condition, keeps logs for a
        # bounded time, and is named after the stack and the function
        assert groups[group].get("Condition") == resource.get("Condition"), function
        assert 1 <= groups[group]["Properties"]["RetentionInDays"] <= 365
        name = groups[group]["Properties"]["LogGroupName"]["Fn::Sub"]
        assert (
            name == f"/aws/lambda/${{AWS::StackName}}/{function.removesuffix('Function').lower()}"
        )
    # And no two functions share one
    assert sorted(used) == sorted(set(used))


# ------------------------------------------------------------------------------ secrets


@pytest.mark.parametrize(
    "value",
    [
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "AKIAIOSFODNN7EXAMPLE",
        "https://user:hunter2@example.com/",
        "4f9d2c7e1a8b6035d4e7f21c9a0b8d3e",
    ],
)
def test_the_secret_detector_recognises_secrets(value: str) -> None:
    # Given a value that is a secret / When it is judged / Then it looks like one
    assert looks_like_a_secret(value)


@pytest.mark.parametrize(
    "value",
    ["https://openapi.tuyaeu.com", "fwwatch/tuya", "rate(1 day)", "bf3a61c0e2d94f5b8a01c7,x"],
)
def test_the_secret_detector_lets_ordinary_settings_pass(value: str) -> None:
    # Given an ordinary setting / When it is judged / Then it does not look like a secret
    assert not looks_like_a_secret(value)


def test_no_parameter_default_looks_like_a_secret(template: Template) -> None:
    # Given every parameter default / When each is judged
    suspicious = [
        name
        for name, spec in template.parameters.items()
        if looks_like_a_secret(str(spec.get("Default", "")))
    ]
    # Then none is a secret
    assert suspicious == []


def test_secret_sounding_parameters_name_a_secret_instead_of_holding_it(
    template: Template,
) -> None:
    # Given the parameters whose names sound like secrets
    names = [name for name in template.parameters if SECRET_SOUNDING.search(name)]
    # When those that are not the name of a Secrets Manager secret are picked out
    holding = [name for name in names if not name.endswith("SecretName")]
    # Then there are none
    assert names
    assert holding == []


def test_no_function_environment_variable_holds_a_secret(template: Template) -> None:
    # Given every environment variable of every function (Globals merged in)
    variables = [
        (function, name, value)
        for function in template.functions()
        for name, value in template.function_properties(function)["Environment"][
            "Variables"
        ].items()
    ]
    # When the secret-sounding ones and the literal values that look like secrets are checked
    wrong = [
        (function, name)
        for function, name, value in variables
        if SECRET_SOUNDING.search(name)
        and not (
            name.endswith("_SECRET_NAME")
            and isinstance(value, Mapping)
            and str(value.get("Ref", "")).endswith("SecretName")
        )
    ]
    leaked = [(f, n) for f, n, v in variables if isinstance(v, str) and looks_like_a_secret(v)]
    # Then a secret only ever travels as the name of a Secrets Manager secret
    assert [name for _, name, _ in variables if name.endswith("_SECRET_NAME")]
    assert wrong == []
    assert leaked == []


# ------------------------------------------------------------------------------ failure handling


def test_every_queue_a_function_consumes_outlasts_six_of_its_timeouts(template: Template) -> None:
    # Given every SQS event source
    sources = events_of_type(template, "SQS")
    assert sources
    for function, _, props in sources:
        # When the queue's visibility timeout is set against the function's timeout
        queue = template.properties(get_att_target(props["Queue"]))
        timeout = template.function_properties(function)["Timeout"]
        window = props.get("MaximumBatchingWindowInSeconds", 0)
        # Then a message is not redelivered while a retried batch may still be running
        assert queue["VisibilityTimeout"] >= 6 * timeout + window, function


def test_every_queue_a_function_consumes_has_a_dead_letter_queue(template: Template) -> None:
    # Given the queues that functions consume
    queues = [get_att_target(props["Queue"]) for _, _, props in events_of_type(template, "SQS")]
    assert queues
    for queue in queues:
        # When its redrive policy is read
        redrive = template.properties(queue)["RedrivePolicy"]
        target = get_att_target(redrive["deadLetterTargetArn"])
        # Then poison messages move to another queue of the template after a few receives
        assert template.resource(target)["Type"] == "AWS::SQS::Queue"
        assert target != queue
        assert 1 <= redrive["maxReceiveCount"] <= 10


def test_every_dead_letter_queue_keeps_messages_for_fourteen_days(template: Template) -> None:
    # Given every queue that holds failures
    queues = dead_letter_queues(template)
    # When its retention is read
    retention = {
        queue: template.properties(queue).get("MessageRetentionPeriod") for queue in queues
    }
    # Then failures wait as long as SQS allows
    assert queues
    assert set(retention.values()) == {1209600}


def test_every_dead_letter_queue_raises_an_alarm_when_it_holds_a_message(
    template: Template,
) -> None:
    # Given the queue-depth alarms, by the queue they watch
    watched = {
        get_att_target(alarm["Properties"]["Dimensions"][0]["Value"], "QueueName")
        for alarm in template.of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and alarm["Properties"]["Threshold"] == 0
    }
    # When they are set against the queues that hold failures / Then every one is watched
    assert dead_letter_queues(template) <= watched


def test_every_function_raises_an_alarm_on_errors(template: Template) -> None:
    # Given the Errors alarms, by function and condition
    alarmed = {
        (alarm["Properties"]["Dimensions"][0]["Value"]["Ref"], alarm.get("Condition"))
        for alarm in template.of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["MetricName"] == "Errors"
    }
    # When they are set against the functions / Then each function has one, under its condition
    functions = {(name, f.get("Condition")) for name, f in template.functions().items()}
    assert functions <= alarmed


def test_every_stream_consumer_raises_an_alarm_when_it_falls_an_hour_behind(
    template: Template,
) -> None:
    # Given the IteratorAge alarms
    thresholds = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Ref"]: alarm["Properties"]["Threshold"]
        for alarm in template.of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["MetricName"] == "IteratorAge"
    }
    # When they are set against the stream consumers / Then each fires past an hour
    consumers = {function for function, _, _ in events_of_type(template, "DynamoDB")}
    assert consumers
    assert all(thresholds.get(function) == 3600 * 1000 for function in consumers)


def test_every_alarm_notifies_the_ops_topic(template: Template) -> None:
    # Given every alarm / When its actions are read
    actions = [
        alarm["Properties"]["AlarmActions"]
        for alarm in template.of_type("AWS::CloudWatch::Alarm").values()
    ]
    # Then each tells the ops topic
    assert actions
    assert all(action == [{"Ref": "OpsTopic"}] for action in actions)


def test_every_sqs_event_reports_batch_item_failures(template: Template) -> None:
    # Given every SQS event source / When its response types are read
    types = [props.get("FunctionResponseTypes") for _, _, props in events_of_type(template, "SQS")]
    # Then a partial batch failure retries only the failed messages
    assert types
    assert all(t == ["ReportBatchItemFailures"] for t in types)


def test_an_sqs_batch_never_needs_a_batching_window_it_lacks(template: Template) -> None:
    # Given every SQS event source
    for _, _, props in events_of_type(template, "SQS"):
        # When its largest possible batch size is found
        size = props.get("BatchSize", 10)
        if isinstance(size, Mapping):
            size = template.parameters[size["Ref"]]["MaxValue"]
        # Then batches above 10 come with a window of at least a second, as SQS requires
        assert size <= 10 or props.get("MaximumBatchingWindowInSeconds", 0) >= 1


def test_no_queue_consumer_concurrency_can_go_below_the_sqs_minimum(template: Template) -> None:
    # Given every SQS event source's maximum concurrency
    sources = events_of_type(template, "SQS")
    assert len(sources) >= 2
    for function, _, props in sources:
        concurrency = props["ScalingConfig"]["MaximumConcurrency"]
        # When it is a parameter, its bounds; else the value itself
        if isinstance(concurrency, Mapping):
            parameter = template.parameters[concurrency["Ref"]]
            # Then they stay within what SQS accepts
            assert (parameter["MinValue"], parameter["MaxValue"]) == (2, 1000), function
            assert 2 <= parameter["Default"] <= 1000
        else:
            assert 2 <= concurrency <= 1000, function


def test_every_stream_event_splits_a_failing_batch(template: Template) -> None:
    # Given every stream event source / Then a failing batch is bisected to find the bad record
    sources = events_of_type(template, "DynamoDB")
    assert sources
    assert all(props["BisectBatchOnFunctionError"] is True for _, _, props in sources)


def test_every_stream_event_retries_a_bounded_number_of_times(template: Template) -> None:
    # Given every stream event source / Then retries stop (the default is forever)
    sources = events_of_type(template, "DynamoDB")
    assert sources
    assert all(0 <= props["MaximumRetryAttempts"] <= 10 for _, _, props in sources)


def test_every_stream_event_gives_up_on_records_older_than_a_day(template: Template) -> None:
    # Given every stream event source / Then old records are given up (the default is forever)
    sources = events_of_type(template, "DynamoDB")
    assert sources
    assert all(60 <= props["MaximumRecordAgeInSeconds"] <= 86400 for _, _, props in sources)


def test_every_stream_event_sends_what_it_gives_up_on_to_a_queue(template: Template) -> None:
    # Given every stream event source
    sources = events_of_type(template, "DynamoDB")
    assert sources
    for _, _, props in sources:
        # When its on-failure destination is read
        on_failure = props["DestinationConfig"]["OnFailure"]
        # Then it is a queue of the template, typed so that SAM grants sqs:SendMessage on it
        assert on_failure["Type"] == "SQS"
        queue = get_att_target(on_failure["Destination"])
        assert template.resource(queue)["Type"] == "AWS::SQS::Queue"


def test_every_stream_event_reports_batch_item_failures(template: Template) -> None:
    # Given every stream event source / Then a failure checkpoints at the failed record
    sources = events_of_type(template, "DynamoDB")
    assert sources
    assert all(
        props["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for _, _, props in sources
    )


def test_the_stream_filter_passes_the_sample_differ_records(template: Template) -> None:
    # Given the sample stream records (INSERT and MODIFY of real channels)
    records = read_json(REPO / "events" / "differ.json")["Records"]
    # When they meet the stream filter / Then every one reaches the differ
    assert [passes_filters(template, record) for record in records] == [True] * len(records)


def test_the_stream_filter_drops_removed_items(template: Template) -> None:
    # Given the record of an item deleted from the state table
    record = stream_record("REMOVE", new=None, old=state_image(3))
    # When it meets the stream filter / Then the differ never sees it
    assert not passes_filters(template, record)


def test_the_stream_filter_drops_device_level_placeholders(template: Template) -> None:
    # Given a new and a changed device-level placeholder (channel -1)
    inserted = stream_record("INSERT", new=state_image(-1), old=None)
    modified = stream_record("MODIFY", new=state_image(-1), old=state_image(-1))
    # When they meet the stream filter / Then neither can be news
    assert not passes_filters(template, inserted)
    assert not passes_filters(template, modified)


def test_the_stream_filter_passes_a_change_of_channel_zero(template: Template) -> None:
    # Given a change of the main module's channel (0, which a negative filter must not catch)
    record = stream_record("MODIFY", new=state_image(0), old=state_image(0))
    # When it meets the stream filter / Then it reaches the differ
    assert passes_filters(template, record)


def test_the_schedule_retries_a_bounded_number_of_times_then_dead_letters(
    template: Template,
) -> None:
    # Given every schedule
    schedules = events_of_type(template, "ScheduleV2")
    assert schedules
    for _, _, props in schedules:
        # When its retry policy and dead-letter queue are read
        retries = props["RetryPolicy"]["MaximumRetryAttempts"]
        queue = get_att_target(props["DeadLetterConfig"]["Arn"])
        # Then it retries a little, then keeps the failed invocation in a queue of the template
        assert 0 <= retries <= 5
        assert template.resource(queue)["Type"] == "AWS::SQS::Queue"


# ------------------------------------------------------------------------------ consistency


def test_every_reference_names_a_parameter_a_resource_or_a_pseudo_parameter(
    template: Template,
) -> None:
    # Given everything the resources and outputs refer to
    names = set(references(dict(template.resources))) | set(references(dict(template.outputs)))
    # When the names are set against what the template defines
    known = set(template.parameters) | set(template.resources) | PSEUDO_PARAMETERS
    # Then none is undefined
    assert names - known == set()


def test_every_conditional_output_shares_its_resources_condition(template: Template) -> None:
    # Given every output that refers to a conditional resource
    for name, output in template.outputs.items():
        for target in set(references(output["Value"])) & set(template.resources):
            condition = template.resource(target).get("Condition")
            # When the output's condition is read / Then it is the resource's
            if condition is not None:
                assert output.get("Condition") == condition, name


def test_the_scheduler_sample_event_has_the_fields_the_schedule_sends(template: Template) -> None:
    # Given the payload the schedule sends and the sample event
    ((_, _, props),) = events_of_type(template, "ScheduleV2")
    sent = json.loads(props["Input"])
    sample = read_json(REPO / "events" / "scheduler.json")
    # When their fields are compared / Then the sample is what the function will receive
    assert set(sample) == set(sent)
    assert {k: v for k, v in sent.items() if "<aws.scheduler" not in v} == {
        k: v for k, v in sample.items() if k in sent and "<aws.scheduler" not in sent[k]
    }


def test_the_schedule_names_each_run_after_its_scheduled_time(template: Template) -> None:
    # Given the payload the schedule sends
    ((_, _, props),) = events_of_type(template, "ScheduleV2")
    # When its run_id is read
    run_id = json.loads(props["Input"])["run_id"]
    # Then it is the scheduled time, which every retry of one invocation shares
    assert run_id == "<aws.scheduler.scheduled-time>"


def test_every_function_has_a_sample_event_and_a_requirements_file(template: Template) -> None:
    for function in template.functions():
        # Given the function's code folder
        folder = REPO / template.function_properties(function)["CodeUri"]
        # When its sample event and requirements are looked up
        sample = REPO / "events" / f"{folder.name}.json"
        requirements = folder / "requirements.txt"
        # Then both exist, the event is JSON and the requirements add no package to the layer
        assert isinstance(read_json(sample), dict), sample
        lines = requirements.read_text(encoding="utf-8").splitlines()
        assert [line for line in lines if line.strip() and not line.startswith("#")] == []


def test_the_layer_requirements_hold_only_runtime_dependencies_with_lower_bounds(
    template: Template,
) -> None:
    # Given the layer's requirements
    layer = template.properties("SharedLayer")
    lines = (REPO / layer["ContentUri"] / "requirements.txt").read_text(encoding="utf-8")
    requirements = [
        line for line in lines.splitlines() if line.strip() and not line.startswith("#")
    ]
    # When the package names are read
    names = {re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower() for line in requirements}
    # Then they are the runtime dependencies, each with a lower bound, and nothing the runtime
    # brings (boto3) or only the CLI needs (aiohttp, pyyaml); Powertools without its tracer
    # extra, which would bring the X-Ray SDK (end of life)
    assert names == {
        "httpx",
        "certifi",
        "sniffio",
        "pydantic",
        "aws-lambda-powertools",
    }
    assert all(">=" in line for line in requirements)
    assert not [line for line in requirements if "[" in line or "xray" in line.lower()]


def test_no_function_imports_the_x_ray_sdk(template: Template) -> None:
    # Given an interpreter where the X-Ray SDK cannot be imported, as in the layer
    handlers = [
        REPO / template.function_properties(function)["CodeUri"] / "app.py"
        for function in template.functions()
    ]
    script = (
        "import importlib.util, sys\n"
        "sys.modules['aws_xray_sdk'] = None\n"
        f"for path in {[str(h) for h in handlers]!r}:\n"
        "    spec = importlib.util.spec_from_file_location('app', path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "shared"), "AWS_DEFAULT_REGION": "eu-central-1"}
    # When every function's handler module is loaded / Then that works: none needs the SDK
    completed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert handlers
    assert completed.returncode == 0, completed.stderr


def test_the_slack_function_imports_its_notifiers_without_what_only_the_cli_needs() -> None:
    # Given an interpreter where the CLI's own dependencies (Apprise among them) are absent,
    # as in the layer
    blocked = "apprise", "aiohttp", "yaml"
    script = (
        "import sys\n"
        f"sys.modules.update(dict.fromkeys({blocked!r}))\n"
        "import fwwatch.aws.slack\n"
        "from fwwatch.notify import SlackNotifier\n"
    )
    # When the Slack function's service and notifiers are imported / Then that works
    env = {**os.environ, "PYTHONPATH": str(REPO / "shared")}
    completed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr


def test_the_layer_is_built_for_the_functions_runtime_and_architecture(template: Template) -> None:
    # Given the layer and the functions' globals
    layer = template.resource("SharedLayer")
    runtime = template.function_globals["Runtime"]
    architectures = template.function_globals["Architectures"]
    # When their runtime and architecture are compared / Then they agree
    assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
    assert layer["Properties"]["CompatibleArchitectures"] == architectures
    assert layer["Metadata"]["BuildArchitecture"] == architectures[0]
    # and the layer's Makefile fetches wheels for that runtime and architecture
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    recipe = (REPO / "shared" / "Makefile").read_text()
    assert "--python-version " + runtime.removeprefix("python") in recipe
    assert {"arm64": "aarch64", "x86_64": "x86_64"}[architectures[0]] in recipe


# ------------------------------------------------------------------------------ the digest


def actions_on(template: Template, function: str, resource: str) -> set[str]:
    """The actions a function's role grants on one resource of the template."""
    return {
        action
        for action, target in granted(template, role_of(template, function))
        if target == resource
    }


def may(template: Template, function: str, action: str) -> set[str]:
    """The resources of the template a function's role may apply ``action`` to."""
    return {
        target
        for granted_action, target in granted(template, role_of(template, function))
        if granted_action == action
    }


def test_only_the_digest_publishes_notifications(template: Template) -> None:
    # Given the functions that may publish to a topic
    publishers = {
        function for function in template.functions() if may(template, function, "sns:Publish")
    }
    # Then the digest is the one: the differ keeps news, it no longer publishes it
    assert publishers == {"DigestFunction"}
    assert may(template, "DigestFunction", "sns:Publish") == {"NotificationTopic"}


def test_each_function_has_only_the_run_table_actions_its_part_needs(template: Template) -> None:
    # Given what each function may do on the run table and on the control table
    run_table = {
        function: actions_on(template, function, "RunTable") for function in template.functions()
    }
    control = {
        function: actions_on(template, function, "ControlTable")
        for function in template.functions()
    }
    # Then the scheduler keeps each run's listing, the checker counts, the differ keeps news,
    # the digest reads and records, and no function may scan, delete or put whole items
    assert run_table == {
        "SchedulerFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "CheckerFunction": {"dynamodb:UpdateItem"},
        "DifferFunction": {"dynamodb:BatchWriteItem", "dynamodb:UpdateItem"},
        "DigestFunction": {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"},
        "SlackFunction": set(),
    }
    # And the differ no longer reads the control table (the ledger is the digest's)
    assert control["DifferFunction"] == set()
    assert control["DigestFunction"] == {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"}


def test_digest_requests_are_sent_by_the_checker_the_differ_and_the_digest_only(
    template: Template,
) -> None:
    # Given the functions that may send to the digest queue
    senders = {
        function
        for function in template.functions()
        if "DigestQueue" in may(template, function, "sqs:SendMessage")
    }
    # Then they are the checker (completion), the differ (deadline, late news) and the
    # digest (a request that came early, or while another digest ran)
    assert senders == {"CheckerFunction", "DifferFunction", "DigestFunction"}
    # And only the digest consumes it
    consumers = [
        function
        for function, _, props in events_of_type(template, "SQS")
        if get_att_target(props["Queue"]) == "DigestQueue"
    ]
    assert consumers == ["DigestFunction"]


def test_a_runs_listing_is_handed_on_by_the_scheduler_to_itself_one_step_at_a_time(
    template: Template,
) -> None:
    # Given the functions that may send to the listing queue, and those that consume it
    senders = {
        function
        for function in template.functions()
        if "ListingQueue" in may(template, function, "sqs:SendMessage")
    }
    consumers = [
        (function, props)
        for function, _, props in events_of_type(template, "SQS")
        if get_att_target(props["Queue"]) == "ListingQueue"
    ]
    # Then the scheduler alone hands a listing on, to itself, a step per invocation (each
    # step takes the invocation's whole time)
    assert senders == {"SchedulerFunction"}
    assert [(function, props["BatchSize"]) for function, props in consumers] == [
        ("SchedulerFunction", 1)
    ]


def test_a_listing_step_spends_most_of_the_schedulers_time_listing(template: Template) -> None:
    from fwwatch.aws.settings import SchedulerSettings

    # Given the scheduler's timeout, and the reserve a step keeps when it starts a page (the
    # longest a page may take with its retries, then the time to hand on), by default
    timeout = template.function_properties("SchedulerFunction")["Timeout"]
    required = ("TUYA_ENDPOINT", "TUYA_SECRET_NAME", "CONTROL_TABLE", "CHECK_QUEUE_URL")
    environment = dict.fromkeys((*required, "LISTING_QUEUE_URL", "RUN_TABLE"), "x")
    reserve = SchedulerSettings.load(environment).step_reserve_s
    # Then a step lists for most of the invocation, and stops in time to hand on
    assert 0 < reserve < timeout / 4


def test_every_wait_of_the_digest_is_a_parameter_in_seconds_within_what_sqs_holds(
    template: Template,
) -> None:
    # Given the parameters of the digest's waits
    waits = {name: spec for name, spec in template.parameters.items() if name.startswith("Digest")}
    waits = {name: spec for name, spec in waits.items() if spec["Type"] == "Number"}
    # Then each says so in its name, and none can be negative
    assert set(waits) == {"DigestDelaySeconds", "DigestDeadlineSeconds"}
    assert all(name.endswith("Seconds") and spec["MinValue"] >= 0 for name, spec in waits.items())
    # And the delay may be none at all, and at most what SQS holds a message back
    assert (waits["DigestDelaySeconds"]["MinValue"], waits["DigestDelaySeconds"]["MaxValue"]) == (
        0,
        900,
    )
    # And a deadline request outlives its longest wait in the queue
    retention = template.properties("DigestQueue")["MessageRetentionPeriod"]
    assert retention > waits["DigestDeadlineSeconds"]["MaxValue"] + 900


def test_the_digest_lease_outlasts_the_digest_function(template: Template) -> None:
    from fwwatch.aws.run_table import DIGEST_LEASE_S

    # Given the digest's timeout / Then a digest cannot still run when its lease ends
    assert template.function_properties("DigestFunction")["Timeout"] < DIGEST_LEASE_S


def test_the_run_table_expires_its_items_by_the_attribute_the_code_writes(
    template: Template,
) -> None:
    ttl = template.properties("RunTable")["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}


def test_people_get_one_message_per_release_or_one_per_run(template: Template) -> None:
    # Given the subscriptions people read: e-mail, and the Slack function's
    email = template.properties("EmailSubscription")["FilterPolicy"]
    (slack,) = [
        props["FilterPolicy"]
        for function, _, props in events_of_type(template, "SNS")
        if function == "SlackFunction"
    ]
    # Then Slack gets each release's first part, and e-mail the same or the run's message
    assert slack == {"kind": ["release"]}
    assert email == {"Fn::If": ["DigestsPerRun", {"kind": ["run"]}, {"kind": ["release"]}]}
    assert template.parameters["DigestPerRun"]["Default"] == "false"
