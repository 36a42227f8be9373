"""template.yaml provisioned in moto: what the template declares is what the functions get."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fwwatch.aws.settings import (
    CheckerSettings,
    DifferSettings,
    DigestSettings,
    SchedulerSettings,
    SlackSettings,
)
from tests.aws.provision import MakeAwsStack, Stack
from tests.aws.template import TemplateError, load_template

pytestmark = pytest.mark.integration

SLACK_URL = "https://hooks.slack.com/services/T0000TEST/B0000TEST/abcdefghijklmnopqrstuvwx"
TUYA_SECRET = {"access_id": "testaccessid0123", "access_secret": "0123456789abcdef0123456789abcdef"}


def full_stack(make_aws_stack: MakeAwsStack, **parameters: Any) -> Stack:
    """Every optional part on: e-mail, Slack, and the given parameters."""
    stack: Stack = make_aws_stack(
        parameters={"NotificationEmail": "ops@example.com", **parameters},
        tuya_secret=TUYA_SECRET,
        slack_webhook_url=SLACK_URL,
    )
    return stack


def stream_records(stack: Stack, table: str) -> list[dict[str, Any]]:
    """Every record of the table's stream so far, oldest first."""
    streams = stack.client("dynamodbstreams")
    arn = stack.get_att(table, "StreamArn")
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    records: list[dict[str, Any]] = []
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += streams.get_records(ShardIterator=iterator)["Records"]
    return records


# ------------------------------------------------------------------------------ tables


def test_every_table_has_the_key_schema_and_billing_of_the_template(
    make_aws_stack: MakeAwsStack,
) -> None:
    # Given a provisioned stack
    stack = make_aws_stack()
    template = load_template()
    for logical_id in template.of_type("AWS::DynamoDB::Table"):
        # When the table is described
        table = stack.client("dynamodb").describe_table(TableName=stack.table_name(logical_id))
        description = table["Table"]
        # Then it has the template's keys, billing and encryption
        assert description["KeySchema"] == template.properties(logical_id)["KeySchema"]
        assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert description["SSEDescription"]["Status"] == "ENABLED"


def test_every_table_is_encrypted_with_the_stack_key(make_aws_stack: MakeAwsStack) -> None:
    # Given a provisioned stack with every optional part
    stack = full_stack(make_aws_stack)
    key = stack.resources["EncryptionKey"]
    for logical_id in load_template().of_type("AWS::DynamoDB::Table"):
        # When the table's encryption is described
        sse = stack.client("dynamodb").describe_table(TableName=stack.table_name(logical_id))[
            "Table"
        ]["SSEDescription"]
        # Then it is the stack's key, not one AWS owns or manages for the whole account
        assert sse["SSEType"] == "KMS", logical_id
        assert sse["KMSMasterKeyArn"] in (key, stack.arn("EncryptionKey")), logical_id


def test_the_control_table_expires_items_by_their_expires_at(make_aws_stack: MakeAwsStack) -> None:
    # Given a provisioned stack
    stack = make_aws_stack()
    # When the control table's time to live is described
    ttl = stack.client("dynamodb").describe_time_to_live(
        TableName=stack.table_name("ControlTable")
    )["TimeToLiveDescription"]
    # Then items go when their expires_at passes
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_every_table_has_point_in_time_recovery(make_aws_stack: MakeAwsStack) -> None:
    # Given a provisioned stack
    stack = make_aws_stack()
    for logical_id in ("StateTable", "ControlTable", "RunTable"):
        # When the table's backups are described
        backups = stack.client("dynamodb").describe_continuous_backups(
            TableName=stack.table_name(logical_id)
        )["ContinuousBackupsDescription"]
        # Then point-in-time recovery is on
        status = backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
        assert status == "ENABLED", logical_id


def test_the_state_table_stream_yields_inserts_and_modifications_with_both_images(
    make_aws_stack: MakeAwsStack,
) -> None:
    # Given a provisioned stack
    stack = make_aws_stack()
    dynamodb = stack.client("dynamodb")
    table = stack.table_name("StateTable")
    key = {"device_id": {"S": "bf7c19e4a0b2c3d4e5f601"}, "channel": {"N": "3"}}
    # When a channel is first stored and then offered an update
    dynamodb.put_item(
        TableName=table,
        Item={**key, "current_version": {"S": "1.0.9"}, "upgrade_status": {"N": "0"}},
    )
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET target_version = :v, upgrade_status = :s",
        ExpressionAttributeValues={":v": {"S": "1.1.0"}, ":s": {"N": "1"}},
    )
    # Then the stream holds an INSERT and a MODIFY, the latter with the old and the new image
    inserted, modified = stream_records(stack, "StateTable")
    assert (inserted["eventName"], modified["eventName"]) == ("INSERT", "MODIFY")
    assert inserted["dynamodb"]["Keys"] == key
    assert "OldImage" not in inserted["dynamodb"]
    assert modified["dynamodb"]["OldImage"]["upgrade_status"] == {"N": "0"}
    assert modified["dynamodb"]["NewImage"]["target_version"] == {"S": "1.1.0"}


# ------------------------------------------------------------------------------ queues


def test_the_check_queue_has_the_template_attributes(make_aws_stack: MakeAwsStack) -> None:
    # Given a provisioned stack
    stack = make_aws_stack()
    declared = load_template().properties("CheckQueue")
    # When the check queue's attributes are read
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url("CheckQueue"), AttributeNames=["All"]
    )["Attributes"]
    # Then they are the template's, the redrive policy naming the real dead-letter queue
    assert attributes["VisibilityTimeout"] == str(declared["VisibilityTimeout"])
    assert attributes["KmsMasterKeyId"] == stack.resources["EncryptionKey"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": stack.arn("CheckDeadLetterQueue"),
        "maxReceiveCount": declared["RedrivePolicy"]["maxReceiveCount"],
    }


def test_a_message_received_too_often_moves_to_the_dead_letter_queue(
    make_aws_stack: MakeAwsStack,
) -> None:
    # Given a check message on the check queue
    stack = make_aws_stack()
    sqs = stack.client("sqs")
    queue, dead = stack.queue_url("CheckQueue"), stack.queue_url("CheckDeadLetterQueue")
    limit = load_template().properties("CheckQueue")["RedrivePolicy"]["maxReceiveCount"]
    body = json.dumps({"run_id": "r1", "device_ids": ["bf3a61c0e2d94f5b8a01c7"], "attempt": 1})
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    # When it is received maxReceiveCount times without being deleted, then once more
    received = [
        sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0).get("Messages", [])
        for _ in range(limit + 1)
    ]
    # Then it was delivered maxReceiveCount times, and now waits in the dead-letter queue
    assert [len(batch) for batch in received] == [1] * limit + [0]
    (moved,) = sqs.receive_message(QueueUrl=dead).get("Messages", [])
    assert moved["Body"] == body


def test_every_failure_queue_keeps_messages_for_fourteen_days(
    make_aws_stack: MakeAwsStack,
) -> None:
    # Given a provisioned stack
    stack = make_aws_stack()
    for logical_id in ("CheckDeadLetterQueue", "ScheduleDeadLetterQueue", "StreamFailureQueue"):
        # When the queue's retention is read
        attributes = stack.client("sqs").get_queue_attributes(
            QueueUrl=stack.queue_url(logical_id), AttributeNames=["MessageRetentionPeriod"]
        )["Attributes"]
        # Then it is fourteen days
        assert attributes["MessageRetentionPeriod"] == "1209600", logical_id


def test_every_queue_is_encrypted_with_the_stack_key(make_aws_stack: MakeAwsStack) -> None:
    # Given a provisioned stack with every optional part
    stack = full_stack(make_aws_stack)
    for logical_id in load_template().of_type("AWS::SQS::Queue"):
        # When the queue's key is read
        attributes = stack.client("sqs").get_queue_attributes(
            QueueUrl=stack.queue_url(logical_id), AttributeNames=["KmsMasterKeyId"]
        )["Attributes"]
        # Then it is the stack's key
        assert attributes.get("KmsMasterKeyId") == stack.resources["EncryptionKey"], logical_id


# ------------------------------------------------------------------------------ the key and roles


def key_policy(stack: Stack) -> dict[str, Any]:
    kms = stack.client("kms")
    policy = kms.get_key_policy(KeyId=stack.resources["EncryptionKey"], PolicyName="default")
    document: dict[str, Any] = json.loads(policy["Policy"])
    return document


def test_the_stack_key_rotates_and_has_its_alias(make_aws_stack: MakeAwsStack) -> None:
    # Given a provisioned stack / When the key's rotation and aliases are read
    stack = make_aws_stack()
    kms = stack.client("kms")
    key = stack.resources["EncryptionKey"]
    aliases = [alias["AliasName"] for alias in kms.list_aliases(KeyId=key)["Aliases"]]
    # Then it rotates, and has the stack's alias
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is True
    assert aliases == [f"alias/fwwatch-{stack.name}"]


def test_the_key_policy_names_the_real_role_of_every_function(make_aws_stack: MakeAwsStack) -> None:
    # Given a provisioned stack with every optional part
    stack = full_stack(make_aws_stack)
    iam = stack.client("iam")
    # When the roles the key policy names are read
    named = {
        principal
        for statement in key_policy(stack)["Statement"]
        for principal in as_list(statement["Principal"].get("AWS", []))
        if ":role/" in principal
    }
    # Then they are the functions' roles and the schedule's, each a real role with its policy
    functions = load_template().functions()
    roles = {stack.resolve(stack.function_properties(f)["Role"]) for f in functions}
    roles |= {
        stack.resolve(event["Properties"]["RoleArn"])
        for f in functions
        for event in stack.function_properties(f).get("Events", {}).values()
        if event["Type"] == "ScheduleV2"
    }
    assert named == roles
    for arn in named:
        name = arn.rsplit("/", 1)[1]
        assert iam.get_role(RoleName=name)["Role"]["Arn"] == arn
        assert iam.list_role_policies(RoleName=name)["PolicyNames"] != [], name


def test_without_slack_the_key_policy_names_no_slack_role(make_aws_stack: MakeAwsStack) -> None:
    # Given a stack without Slack / When the key policy's principals are read
    stack = make_aws_stack()
    principals = [
        principal
        for statement in key_policy(stack)["Statement"]
        for principal in as_list(statement["Principal"].get("AWS", []))
    ]
    # Then none is a Slack role, and the others are all there
    assert "SlackRole" not in stack.resources
    assert [p for p in principals if "SlackRole" in p] == []
    assert stack.get_att("CheckerRole", "Arn") in principals


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------------------ topics


def test_every_topic_is_encrypted_with_the_stack_key(make_aws_stack: MakeAwsStack) -> None:
    # Given a provisioned stack
    stack = make_aws_stack()
    for logical_id in ("NotificationTopic", "OpsTopic"):
        # When the topic's attributes are read
        attributes = stack.client("sns").get_topic_attributes(TopicArn=stack.topic_arn(logical_id))[
            "Attributes"
        ]
        # Then it is encrypted with the stack's key
        assert attributes["KmsMasterKeyId"] == stack.resources["EncryptionKey"], logical_id


def test_a_notification_email_subscribes_to_notifications_and_alarms(
    make_aws_stack: MakeAwsStack,
) -> None:
    # Given a stack with a notification e-mail address
    stack = make_aws_stack(parameters={"NotificationEmail": "ops@example.com"})
    for logical_id in ("NotificationTopic", "OpsTopic"):
        # When the topic's subscriptions are listed
        subscriptions = stack.client("sns").list_subscriptions_by_topic(
            TopicArn=stack.topic_arn(logical_id)
        )["Subscriptions"]
        # Then the address is subscribed by e-mail
        assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [
            ("email", "ops@example.com")
        ]


def test_without_an_email_no_topic_has_a_subscription(make_aws_stack: MakeAwsStack) -> None:
    # Given a stack with the default (empty) e-mail address
    stack = make_aws_stack()
    # When the subscriptions are listed / Then there are none
    assert stack.client("sns").list_subscriptions()["Subscriptions"] == []
    assert stack.conditions["HasEmail"] is False


# ------------------------------------------------------------------------------ functions


def test_the_scheduler_env_names_the_real_queue_table_and_secret(
    make_aws_stack: MakeAwsStack,
) -> None:
    # Given a provisioned stack / When the scheduler's environment is resolved
    stack = full_stack(make_aws_stack)
    env = stack.function_env("SchedulerFunction")
    # Then each variable leads to a resource that exists
    assert env["CHECK_QUEUE_URL"] == stack.queue_url("CheckQueue")
    assert env["LISTING_QUEUE_URL"] == stack.queue_url("ListingQueue")
    assert env["RUN_TABLE"] == stack.table_name("RunTable")
    stack.client("sqs").get_queue_attributes(QueueUrl=env["CHECK_QUEUE_URL"])
    stack.client("sqs").get_queue_attributes(QueueUrl=env["LISTING_QUEUE_URL"])
    stack.client("dynamodb").describe_table(TableName=env["CONTROL_TABLE"])
    secret = stack.client("secretsmanager").get_secret_value(SecretId=env["TUYA_SECRET_NAME"])
    assert json.loads(secret["SecretString"]) == TUYA_SECRET


def test_the_checker_env_names_the_real_tables_and_secret(make_aws_stack: MakeAwsStack) -> None:
    # Given a provisioned stack / When the checker's environment is resolved
    stack = full_stack(make_aws_stack)
    env = stack.function_env("CheckerFunction")
    # Then the tables and the secret exist under those names
    assert env["STATE_TABLE"] == stack.table_name("StateTable")
    assert env["CONTROL_TABLE"] == stack.table_name("ControlTable")
    stack.client("dynamodb").describe_table(TableName=env["STATE_TABLE"])
    stack.client("secretsmanager").get_secret_value(SecretId=env["TUYA_SECRET_NAME"])


def test_the_differ_env_names_the_real_run_table_and_digest_queue(
    make_aws_stack: MakeAwsStack,
) -> None:
    # Given a provisioned stack / When the differ's environment is resolved
    stack = full_stack(make_aws_stack)
    env = stack.function_env("DifferFunction")
    # Then it keeps news in the real run table and asks for digests on the real queue
    assert env["RUN_TABLE"] == stack.table_name("RunTable")
    stack.client("dynamodb").describe_table(TableName=env["RUN_TABLE"])
    assert env["DIGEST_QUEUE_URL"] == stack.queue_url("DigestQueue")
    stack.client("sqs").get_queue_attributes(QueueUrl=env["DIGEST_QUEUE_URL"])
    assert (env["DIGEST_DELAY_S"], env["DIGEST_DEADLINE_S"]) == ("60", "21600")
    assert env["NOTIFY_ON_FIRST_SEEN"] == "false"
    assert "TOPIC_ARN" not in env


def test_the_digest_env_names_the_real_topic_tables_and_queue(make_aws_stack: MakeAwsStack) -> None:
    # Given a provisioned stack / When the digest's environment is resolved
    stack = full_stack(make_aws_stack)
    env = stack.function_env("DigestFunction")
    # Then a message can be published to the topic it names, and the tables exist
    assert env["TOPIC_ARN"] == stack.topic_arn("NotificationTopic")
    stack.client("sns").publish(TopicArn=env["TOPIC_ARN"], Message="{}", Subject="fwwatch test")
    assert env["RUN_TABLE"] == stack.table_name("RunTable")
    assert env["CONTROL_TABLE"] == stack.table_name("ControlTable")
    assert env["DIGEST_QUEUE_URL"] == stack.queue_url("DigestQueue")
    assert env["DIGEST_PER_RUN"] == "false"


def test_the_digest_queue_dead_letters_after_five_receives(make_aws_stack: MakeAwsStack) -> None:
    stack = make_aws_stack()
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url("DigestQueue"), AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive == {
        "deadLetterTargetArn": stack.arn("DigestDeadLetterQueue"),
        "maxReceiveCount": 5,
    }


def test_per_run_digests_switch_the_email_subscription_to_the_runs_message(
    make_aws_stack: MakeAwsStack,
) -> None:
    for per_run, kind in ((False, "release"), (True, "run")):
        stack = make_aws_stack(
            parameters={"NotificationEmail": "ops@example.com", "DigestPerRun": per_run},
            stack_name=f"fwwatch-{kind}",
        )
        sns = stack.client("sns")
        arn = stack.resources["EmailSubscription"]
        policy = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]["FilterPolicy"]
        assert json.loads(policy) == {"kind": [kind]}
        assert stack.function_env("DigestFunction")["DIGEST_PER_RUN"] == str(per_run).lower()


def test_the_slack_env_names_the_secret_holding_the_webhook(make_aws_stack: MakeAwsStack) -> None:
    # Given a stack with a Slack webhook / When the Slack function's environment is resolved
    stack = full_stack(make_aws_stack)
    env = stack.function_env("SlackFunction")
    # Then the secret it names holds the webhook URL as a plain string
    secret = stack.client("secretsmanager").get_secret_value(
        SecretId=env["SLACK_WEBHOOK_SECRET_NAME"]
    )
    assert secret["SecretString"] == SLACK_URL


def test_without_a_slack_secret_there_is_no_slack_function(make_aws_stack: MakeAwsStack) -> None:
    # Given a stack without a Slack webhook
    stack = make_aws_stack()
    # When the Slack function's environment is asked for / Then there is no such function
    with pytest.raises(TemplateError, match="does not exist"):
        stack.function_env("SlackFunction")
    assert "SlackFunction" not in stack.resources


def test_no_function_environment_contains_a_secret_value(make_aws_stack: MakeAwsStack) -> None:
    # Given a stack holding a Tuya secret and a Slack webhook
    stack = full_stack(make_aws_stack)
    secrets = [TUYA_SECRET["access_secret"], SLACK_URL, "hooks.slack.com"]
    # When every function's environment is resolved
    values = [
        value
        for function in load_template().functions()
        for value in stack.function_env(function).values()
    ]
    # Then no secret value is among them
    assert [value for value in values for secret in secrets if secret in value] == []


def test_parameters_reach_the_functions_environment(make_aws_stack: MakeAwsStack) -> None:
    # Given a stack with non-default parameters
    stack = make_aws_stack(
        parameters={
            "TuyaEndpoint": "http://127.0.0.1:8123",
            "DeviceIds": "bf3a61c0e2d94f5b8a01c7,bf7c19e4a0b2c3d4e5f601",
            "DevicesPerMessage": 5,
            "TuyaQps": 7,
            "NotifyOnFirstSeen": True,
            "LogLevel": "DEBUG",
        }
    )
    # When the environments are resolved
    scheduler = stack.function_env("SchedulerFunction")
    differ = stack.function_env("DifferFunction")
    # Then the values arrive as the strings the functions parse
    assert scheduler["TUYA_ENDPOINT"] == "http://127.0.0.1:8123"
    assert scheduler["DEVICE_IDS"] == "bf3a61c0e2d94f5b8a01c7,bf7c19e4a0b2c3d4e5f601"
    assert (scheduler["DEVICES_PER_MESSAGE"], scheduler["TUYA_QPS"]) == ("5", "7")
    assert differ["NOTIFY_ON_FIRST_SEEN"] == "true"
    assert (differ["POWERTOOLS_LOG_LEVEL"], differ["LOG_LEVEL"]) == ("DEBUG", "DEBUG")


@pytest.mark.parametrize(
    ("function", "settings"),
    [
        ("SchedulerFunction", SchedulerSettings),
        ("CheckerFunction", CheckerSettings),
        ("DifferFunction", DifferSettings),
        ("DigestFunction", DigestSettings),
        ("SlackFunction", SlackSettings),
    ],
)
def test_every_function_reads_its_settings_from_the_environment_the_template_gives(
    make_aws_stack: MakeAwsStack, function: str, settings: type[Any]
) -> None:
    # Given a stack with every optional part on
    stack = full_stack(make_aws_stack)
    # When the function's settings are read from its resolved environment
    loaded = settings.load(stack.function_env(function))
    # Then nothing the function needs is missing
    assert isinstance(loaded, settings)


def test_the_listing_and_the_checkers_share_the_projects_request_rate(
    make_aws_stack: MakeAwsStack,
) -> None:
    # Given a stack whose checkers may run four at once under a ceiling of 20 requests/s
    stack = make_aws_stack(parameters={"CheckerMaxConcurrency": 4, "TuyaQps": 20})
    # When the scheduler and a checker read their settings
    scheduler = SchedulerSettings.load(stack.function_env("SchedulerFunction"))
    checker = CheckerSettings.load(stack.function_env("CheckerFunction"))
    # Then the listing, which runs beside the checks, and the four checkers together take
    # the ceiling, no more
    assert scheduler.listing_qps + 4 * checker.qps_per_instance == pytest.approx(20)
    # And the listing (20 devices a request) names devices faster than the checkers (one
    # request a device) check them, so that they never wait for it
    assert 20 * scheduler.listing_qps > 4 * checker.qps_per_instance
    assert scheduler.listing_qps < 2


def test_a_parameter_outside_its_bounds_is_refused(make_aws_stack: MakeAwsStack) -> None:
    # Given a checker concurrency below the SQS minimum / When the stack is provisioned
    # Then it is refused as CloudFormation would refuse it
    with pytest.raises(TemplateError, match="MinValue"):
        make_aws_stack(parameters={"CheckerMaxConcurrency": 1})


def test_an_unknown_parameter_is_refused(make_aws_stack: MakeAwsStack) -> None:
    # Given a parameter the template does not have / When the stack is provisioned
    # Then it is refused, naming the parameter
    with pytest.raises(TemplateError, match="TuyaRegion"):
        make_aws_stack(parameters={"TuyaRegion": "eu"})


# ------------------------------------------------------------------------------ event sources


def test_the_checker_consumes_the_check_queue(make_aws_stack: MakeAwsStack) -> None:
    # Given a provisioned stack / When the checker's event source is resolved
    stack = make_aws_stack()
    event = stack.event_source("CheckerFunction", "CheckMessages")
    # Then it is the real check queue, with the template's batch size and concurrency
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == stack.arn("CheckQueue")
    assert event["Properties"]["BatchSize"] == "10"
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": "2"}


def test_the_differ_reads_the_state_stream_and_gives_up_to_the_failure_queue(
    make_aws_stack: MakeAwsStack,
) -> None:
    # Given a provisioned stack / When the differ's event source is resolved
    stack = make_aws_stack()
    event = stack.event_source("DifferFunction", "StateChanges")["Properties"]
    # Then it reads the real stream and sends what it gives up on to the real queue
    assert event["Stream"] == stack.get_att("StateTable", "StreamArn")
    assert event["DestinationConfig"]["OnFailure"]["Destination"] == stack.arn("StreamFailureQueue")


def test_the_slack_function_hears_the_notification_topic(make_aws_stack: MakeAwsStack) -> None:
    # Given a stack with Slack / When the Slack function's event source is resolved
    stack = full_stack(make_aws_stack)
    event = stack.event_source("SlackFunction", "Notifications")
    # Then it is the real notification topic, each release's first message only
    assert event == {
        "Type": "SNS",
        "Properties": {
            "Topic": stack.topic_arn("NotificationTopic"),
            "FilterPolicy": {"kind": ["release"]},
        },
    }


def test_the_digest_consumes_the_digest_queue(make_aws_stack: MakeAwsStack) -> None:
    stack = make_aws_stack()
    event = stack.event_source("DigestFunction", "DigestRequests")
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == stack.arn("DigestQueue")
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_schedule_dead_letters_to_the_real_queue(make_aws_stack: MakeAwsStack) -> None:
    # Given a provisioned stack / When the schedule is resolved
    stack = make_aws_stack(parameters={"ScheduleTimezone": "Europe/Berlin"})
    event = stack.event_source("SchedulerFunction", "Schedule")["Properties"]
    # Then failed invocations go to the real dead-letter queue, in the configured time zone,
    # sent by the schedule's own role
    assert event["DeadLetterConfig"] == {"Arn": stack.arn("ScheduleDeadLetterQueue")}
    assert event["RoleArn"] == stack.get_att("ScheduleRole", "Arn")
    assert event["ScheduleExpressionTimezone"] == "Europe/Berlin"
