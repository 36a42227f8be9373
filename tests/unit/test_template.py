"""template.yaml, read statically: least privilege, encryption, no secrets, failure handling.

What the IAM tests cover: every inline statement of the functions (and of any IAM resource
added later) and every SAM policy template the functions use. The policy templates are held
to a list of ones that expand to named actions on the single resource they are given (checked
against aws-sam-translator 1.115's policy_templates.json; ``SQSSendMessagePolicy`` gives
``sqs:SendMessage*``). Not covered, because SAM adds them outside ``Policies``: the AWS
managed policies SAM attaches for the event sources and tracing
(AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess, AWSLambdaSQSQueueExecutionRole and
AWSLambdaDynamoDBExecutionRole, whose poller actions apply to any queue or stream), and the
schedule's and destination's sqs:SendMessage that SAM scopes to the queue given.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.aws.template import PSEUDO_PARAMETERS, Template, load_template, references

REPO = Path(__file__).resolve().parents[2]

#: SAM policy templates that name actions on the one resource they are given, and the
#: parameter that names it.
SCOPED_POLICY_TEMPLATES = {
    "DynamoDBReadPolicy": "TableName",
    "DynamoDBWritePolicy": "TableName",
    "DynamoDBCrudPolicy": "TableName",
    "SQSSendMessagePolicy": "QueueName",
    "SQSPollerPolicy": "QueueName",
    "SNSPublishMessagePolicy": "TopicName",
    "AWSSecretsManagerGetSecretValuePolicy": "SecretArn",
    "KMSDecryptPolicy": "KeyId",
    "KMSEncryptPolicy": "KeyId",
}
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


def function_policies(template: Template) -> list[tuple[str, Any]]:
    """(function, entry of Policies) for every function."""
    return [
        (function, policy)
        for function in template.functions()
        for policy in as_list(template.function_properties(function).get("Policies", []))
    ]


def identity_statements(template: Template) -> list[tuple[str, dict[str, Any]]]:
    """(owner, statement) of every identity policy written in the template."""
    found: list[tuple[str, dict[str, Any]]] = []
    for function, policy in function_policies(template):
        if isinstance(policy, Mapping) and "Statement" in policy:
            found += [(function, statement) for statement in as_list(policy["Statement"])]
    for name, resource in template.of_type("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy").items():
        document = resource["Properties"]["PolicyDocument"]
        found += [(name, statement) for statement in as_list(document["Statement"])]
    for name, resource in template.of_type("AWS::IAM::Role").items():
        for policy in resource["Properties"].get("Policies", []):
            found += [(name, s) for s in as_list(policy["PolicyDocument"]["Statement"])]
    return found


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
        if action == "*" or str(action).endswith(":*")
    ]
    # Then none is "*" or "service:*", and none grants by NotAction
    assert wildcards == []
    assert [owner for owner, statement in statements if "NotAction" in statement] == []


def test_no_identity_statement_applies_to_every_resource_without_a_condition(
    template: Template,
) -> None:
    # Given every inline identity statement
    statements = identity_statements(template)
    # When those on Resource "*" are picked out
    unscoped = [
        owner
        for owner, statement in statements
        if "*" in as_list(statement.get("Resource", [])) and not statement.get("Condition")
    ]
    # Then none is left unscoped by a condition
    assert unscoped == []


def test_functions_use_only_policy_templates_scoped_to_one_resource(template: Template) -> None:
    # Given every entry of the functions' Policies
    entries = function_policies(template)
    # When the named policies (managed or SAM policy templates) are listed
    named = [
        (function, next(iter(policy)) if isinstance(policy, Mapping) else policy)
        for function, policy in entries
        if not (isinstance(policy, Mapping) and "Statement" in policy)
    ]
    # Then each is a policy template that names the one resource it applies to
    assert named
    assert [(f, name) for f, name in named if name not in SCOPED_POLICY_TEMPLATES] == []


def test_every_policy_template_names_a_resource_of_the_template_or_a_secret_parameter(
    template: Template,
) -> None:
    # Given the policy templates of the functions
    scopes = [
        (function, name, arguments[SCOPED_POLICY_TEMPLATES[name]])
        for function, policy in function_policies(template)
        if isinstance(policy, Mapping) and "Statement" not in policy
        for name, arguments in policy.items()
    ]
    # When each scope is traced to what it names
    stray = []
    for function, name, scope in scopes:
        if isinstance(scope, Mapping) and "Fn::Sub" in scope:
            found = SECRET_SECRETS_MANAGER_ARN.fullmatch(str(scope["Fn::Sub"]))
            if found is None or found["parameter"] not in template.parameters:
                stray.append((function, name, scope))
        elif not (set(references(scope)) and set(references(scope)) <= set(template.resources)):
            stray.append((function, name, scope))
    # Then every one is a resource of this template, or one secret named by a parameter
    assert scopes
    assert stray == []


def test_a_function_that_publishes_to_an_encrypted_topic_may_use_its_key(
    template: Template,
) -> None:
    # Given the functions that publish to a topic encrypted with a key of the template
    publishers = [
        (function, get_att_target(arguments["TopicName"], "TopicName"))
        for function, policy in function_policies(template)
        if isinstance(policy, Mapping) and "SNSPublishMessagePolicy" in policy
        for arguments in [policy["SNSPublishMessagePolicy"]]
    ]
    assert publishers
    for function, topic in publishers:
        key = template.properties(topic)["KmsMasterKeyId"]["Ref"]
        # When the function's statements on that key are gathered
        granted = {
            action
            for owner, statement in identity_statements(template)
            if owner == function and statement.get("Resource") == {"Fn::GetAtt": [key, "Arn"]}
            for action in as_list(statement["Action"])
        }
        # Then it may generate data keys and decrypt with it, as SNS requires
        assert {"kms:GenerateDataKey", "kms:Decrypt"} <= granted, function


def test_the_key_policy_gives_wildcard_actions_to_the_account_root_only(
    template: Template,
) -> None:
    # Given the statements of every key policy
    statements = [
        statement
        for key in template.of_type("AWS::KMS::Key").values()
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
    ]
    # When the statements with a wildcard action are picked out
    wildcard_principals = [
        statement["Principal"]
        for statement in statements
        if any(a == "*" or a.endswith(":*") for a in as_list(statement["Action"]))
    ]
    # Then only the account itself administers the key
    root = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    assert wildcard_principals == [root]


def test_every_service_in_the_key_policy_is_scoped_by_a_condition(template: Template) -> None:
    # Given the key policy statements for AWS services
    services = [
        statement
        for key in template.of_type("AWS::KMS::Key").values()
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if "Service" in statement["Principal"]
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
        for key in template.of_type("AWS::KMS::Key").values()
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if statement["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    ]
    # When its condition is read
    context = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    # Then it names this account's log groups
    assert context == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"
    }


# ------------------------------------------------------------------------------ encryption


def test_every_queue_is_encrypted_at_rest(template: Template) -> None:
    # Given every queue
    queues = template.of_type("AWS::SQS::Queue")
    # When those without server-side encryption are picked out
    plain = [
        name
        for name, queue in queues.items()
        if queue["Properties"].get("SqsManagedSseEnabled") is not True
        and "KmsMasterKeyId" not in queue["Properties"]
    ]
    # Then there are none
    assert queues
    assert plain == []


def test_every_topic_is_encrypted_with_a_key_of_the_template(template: Template) -> None:
    # Given every topic / When its key is read
    keys = {
        name: topic["Properties"].get("KmsMasterKeyId")
        for name, topic in template.of_type("AWS::SNS::Topic").items()
    }
    # Then it is the stack's own key
    assert keys
    assert all(key == {"Ref": "EncryptionKey"} for key in keys.values()), keys


def test_every_table_is_encrypted_and_recoverable(template: Template) -> None:
    # Given every table
    tables = template.of_type("AWS::DynamoDB::Table").values()
    # When its encryption and point-in-time recovery are read
    settings = [
        (
            table["Properties"]["SSESpecification"]["SSEEnabled"],
            table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        )
        for table in tables
    ]
    # Then both are on everywhere
    assert settings
    assert set(settings) == {(True, True)}


def test_every_log_group_is_encrypted_with_the_stack_key(template: Template) -> None:
    # Given every log group / When its key is read
    keys = [
        group["Properties"].get("KmsKeyId")
        for group in template.of_type("AWS::Logs::LogGroup").values()
    ]
    # Then it is the stack's key
    assert keys
    assert all(key == {"Fn::GetAtt": ["EncryptionKey", "Arn"]} for key in keys)


def test_the_stack_key_rotates(template: Template) -> None:
    # Given the stack's key / When its rotation is read / Then it rotates
    assert template.properties("EncryptionKey")["EnableKeyRotation"] is True


def test_every_function_has_its_own_log_group_with_bounded_retention(template: Template) -> None:
    # Given the log groups, by the function they are named after
    groups = {
        group["Properties"]["LogGroupName"]["Fn::Sub"]: group
        for group in template.of_type("AWS::Logs::LogGroup").values()
    }
    for function, resource in template.functions().items():
        # When the function's group is looked up
        group = groups.get(f"/aws/lambda/${{{function}}}")
        # Then it exists under the same condition, and keeps logs for a bounded time
        assert group is not None, f"{function} has no explicit log group"
        assert group.get("Condition") == resource.get("Condition"), function
        assert 1 <= group["Properties"]["RetentionInDays"] <= 365


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
    # brings (boto3) or only the CLI needs (aiohttp, pyyaml); Powertools with its Tracer
    assert names == {
        "httpx",
        "certifi",
        "sniffio",
        "pydantic",
        "aws-lambda-powertools",
    }
    assert all(">=" in line for line in requirements)
    assert any(line.startswith("aws-lambda-powertools[tracer]") for line in requirements)


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
    """The actions a function's inline statements grant on ``!GetAtt resource.Arn``."""
    return {
        action
        for owner, statement in identity_statements(template)
        if owner == function and statement.get("Resource") == {"Fn::GetAtt": [resource, "Arn"]}
        for action in as_list(statement["Action"])
    }


def policy_targets(template: Template, function: str, policy_template: str) -> set[str]:
    """The resources a function's SAM policy templates of one kind name."""
    return {
        next(iter(references(arguments)))
        for owner, policy in function_policies(template)
        if owner == function and isinstance(policy, Mapping) and policy_template in policy
        for arguments in [policy[policy_template]]
    }


def test_only_the_digest_publishes_notifications(template: Template) -> None:
    # Given the functions that may publish to a topic
    publishers = {
        function
        for function in template.functions()
        if policy_targets(template, function, "SNSPublishMessagePolicy")
    }
    # Then the digest is the one: the differ keeps news, it no longer publishes it
    assert publishers == {"DigestFunction"}
    assert policy_targets(template, "DigestFunction", "SNSPublishMessagePolicy") == {
        "NotificationTopic"
    }


def test_each_function_has_only_the_run_table_actions_its_part_needs(template: Template) -> None:
    # Given what each function may do on the run table and on the control table
    run_table = {
        function: actions_on(template, function, "RunTable") for function in template.functions()
    }
    control = {
        function: actions_on(template, function, "ControlTable")
        for function in template.functions()
    }
    # Then the checker counts, the differ keeps news, the digest reads and records, and no
    # function may scan, delete or put whole items
    assert run_table == {
        "SchedulerFunction": set(),
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
        if "DigestQueue" in policy_targets(template, function, "SQSSendMessagePolicy")
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
