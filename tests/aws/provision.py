"""Make, in moto, the stack that template.yaml describes, from the template's own properties.

Call inside ``moto.mock_aws()`` (the ``make_aws_stack`` fixture of tests/conftest.py does)::

    stack = provision_stack(parameters={"TuyaEndpoint": simulator.url},
                            tuya_secret={"access_id": "...", "access_secret": "..."},
                            slack_webhook_url="https://hooks.slack.com/services/T0/B0/x")
    stack.table_name("StateTable"); stack.queue_url("CheckQueue"); stack.topic_arn("OpsTopic")
    env = stack.function_env("CheckerFunction")     # {"STATE_TABLE": "fwwatch-test-...", ...}

Created for real: the KMS key (its policy naming the real roles) and alias, the IAM roles
and their policies, the DynamoDB tables (keys, stream, TTL, encryption with the stack's key,
PITR), the SQS queues (every attribute, the key and the redrive policy pointing at the real
dead-letter queue), the SNS topics and subscriptions, queue and topic policies, and the
secrets. Functions, layers, log groups and alarms are not (moto runs no Lambda without
Docker): they get the physical names CloudFormation would give them, so ``!Ref`` and
``!GetAtt`` of them resolve.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from fwwatch.simulator import DEFAULT_ACCESS_ID, DEFAULT_ACCESS_SECRET

from .template import (
    Resolver,
    Template,
    TemplateError,
    load_template,
    references,
    resolve_parameters,
)

__all__ = [
    "DEFAULT_SLACK_SECRET_NAME",
    "MOTO_ACCOUNT_ID",
    "REGION",
    "MakeAwsStack",
    "Stack",
    "provision_stack",
]

REGION = "eu-central-1"
MOTO_ACCOUNT_ID = "123456789012"
#: The Slack secret's name when a webhook URL is given but SlackWebhookSecretName is not.
DEFAULT_SLACK_SECRET_NAME = "fwwatch/slack-webhook"


@dataclass
class Stack:
    """The provisioned stack: physical IDs by logical ID, and the template resolved against them.

    ``resources`` maps every resource that exists with these parameters to what ``!Ref``
    gives: a table's name, a queue's URL, a topic's ARN, a key's ID, a function's name.
    ``created`` says which of them really exist in moto.
    """

    template: Template
    name: str
    parameters: dict[str, str | list[str]]
    conditions: dict[str, bool] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    secrets: dict[str, str] = field(default_factory=dict)
    resolver: Resolver = field(init=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.resolver = Resolver(
            self.template,
            self.parameters,
            pseudo={
                "AWS::AccountId": MOTO_ACCOUNT_ID,
                "AWS::Region": REGION,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": self.name,
                "AWS::StackId": (
                    f"arn:aws:cloudformation:{REGION}:{MOTO_ACCOUNT_ID}:stack/{self.name}/"
                    f"{uuid.UUID(int=0)}"
                ),
            },
            ref=self._ref,
            get_att=self.get_att,
        )
        self.conditions = self.resolver.conditions()

    def client(self, service: str) -> Any:
        """A boto3 client of the stack's region (one per service; creating one costs ~25 ms)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=REGION)
        return self._clients[service]

    # -- lookups

    def _ref(self, logical_id: str) -> str:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise TemplateError(
                f"!Ref {logical_id}: the resource does not exist with these parameters "
                f"(its Condition is false) or is not provisioned yet"
            ) from None

    def get_att(self, logical_id: str, attribute: str) -> str:
        """``!GetAtt logical_id.attribute``."""
        try:
            return self.attributes[logical_id][attribute]
        except KeyError:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute} is not known") from None

    def resolve(self, value: Any) -> Any:
        """Any template fragment with its intrinsic functions evaluated."""
        return self.resolver.resolve(value)

    def arn(self, logical_id: str) -> str:
        """The resource's ARN (``!GetAtt X.Arn``)."""
        return self.get_att(logical_id, "Arn")

    def table_name(self, logical_id: str) -> str:
        """The physical name of a DynamoDB table."""
        return self._typed(logical_id, "AWS::DynamoDB::Table")

    def queue_url(self, logical_id: str) -> str:
        """The URL of an SQS queue."""
        return self._typed(logical_id, "AWS::SQS::Queue")

    def topic_arn(self, logical_id: str) -> str:
        """The ARN of an SNS topic."""
        return self._typed(logical_id, "AWS::SNS::Topic")

    def _typed(self, logical_id: str, kind: str) -> str:
        actual = self.template.resource(logical_id).get("Type")
        if actual != kind:
            raise TemplateError(f"{logical_id} is a {actual}, not a {kind}")
        return self._ref(logical_id)

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        """A function's properties, merged with Globals and resolved."""
        if not self.resolver.is_active(logical_id):
            raise TemplateError(f"{logical_id} does not exist with these parameters")
        resolved: dict[str, Any] = self.resolve(self.template.function_properties(logical_id))
        return resolved

    def function_env(self, logical_id: str) -> dict[str, str]:
        """The environment variables the function gets (Globals merged in), as strings."""
        variables = self.function_properties(logical_id).get("Environment", {}).get("Variables")
        return {name: _env_string(value) for name, value in (variables or {}).items()}

    def event_source(self, logical_id: str, event_name: str) -> dict[str, Any]:
        """One ``Events`` entry of a function, resolved: ``{"Type": ..., "Properties": ...}``."""
        events = self.function_properties(logical_id).get("Events", {})
        try:
            event: dict[str, Any] = events[event_name]
        except KeyError:
            raise TemplateError(
                f"{logical_id} has no event {event_name!r}; it has {sorted(events)}"
            ) from None
        return event


#: The type of the ``make_aws_stack`` fixture: :func:`provision_stack`.
MakeAwsStack = Callable[..., Stack]


def _env_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        raise TemplateError(f"an environment variable resolved to {value!r}, not a string")
    return str(value)


# ------------------------------------------------------------------------------ provisioning


def provision_stack(
    parameters: Mapping[str, str | int | float | bool] | None = None,
    *,
    tuya_secret: Mapping[str, str] | None = None,
    slack_webhook_url: str | None = None,
    stack_name: str = "fwwatch-test",
    template: Template | None = None,
) -> Stack:
    """Create the template's resources in moto and return the resolved :class:`Stack`.

    ``parameters`` override the template's defaults (unknown names are an error).
    ``tuya_secret`` is stored under ``TuyaSecretName`` (default: the simulator's credentials).
    ``slack_webhook_url``, when given, is stored (as a plain string) under
    ``SlackWebhookSecretName``, which then defaults to ``fwwatch/slack-webhook`` so that the
    Slack function exists.
    """
    template = template or load_template()
    given = dict(parameters or {})
    if slack_webhook_url is not None:
        given.setdefault("SlackWebhookSecretName", DEFAULT_SLACK_SECRET_NAME)
    stack = Stack(
        template=template,
        name=stack_name,
        parameters=resolve_parameters(template, given),
    )
    _require_moto(stack)
    active = [lid for lid in template.resources if stack.resolver.is_active(lid)]
    makers = {lid: _MAKERS.get(template.resources[lid]["Type"]) for lid in active}
    for logical_id in active:
        if makers[logical_id] is None:
            _name_without_creating(stack, logical_id)
    for logical_id in active:
        if makers[logical_id] is None:
            _use_declared_name(stack, logical_id)
    for logical_id in _dependency_order([lid for lid in active if makers[lid]], template):
        maker = makers[logical_id]
        assert maker is not None
        properties = stack.resolve(template.properties(logical_id))
        ref, attributes = maker(stack, logical_id, properties)
        stack.resources[logical_id] = ref
        stack.attributes[logical_id] = attributes
        stack.created.add(logical_id)
    _create_secrets(stack, tuya_secret, slack_webhook_url)
    return stack


def _require_moto(stack: Stack) -> None:
    # A real account would answer with another ID (and the fake credentials would fail).
    account = stack.client("sts").get_caller_identity()["Account"]
    if account != MOTO_ACCOUNT_ID:
        raise RuntimeError("provision_stack() must run inside moto's mock_aws()")


def _dependency_order(logical_ids: list[str], template: Template) -> list[str]:
    """Creatable resources, each after the ones it refers to (template order otherwise)."""
    wanted = set(logical_ids)
    depends: dict[str, set[str]] = {}
    for logical_id in logical_ids:
        resource = template.resources[logical_id]
        explicit = resource.get("DependsOn", [])
        explicit = [explicit] if isinstance(explicit, str) else explicit
        found = set(references(resource.get("Properties", {}))) | set(explicit)
        depends[logical_id] = (found & wanted) - {logical_id}
    ordered: list[str] = []
    done: set[str] = set()

    def visit(logical_id: str, path: tuple[str, ...]) -> None:
        if logical_id in done:
            return
        if logical_id in path:
            raise TemplateError(f"circular references: {' -> '.join((*path, logical_id))}")
        for dependency in sorted(depends[logical_id], key=logical_ids.index):
            visit(dependency, (*path, logical_id))
        done.add(logical_id)
        ordered.append(logical_id)

    for logical_id in logical_ids:
        visit(logical_id, ())
    return ordered


def _physical_name(stack: Stack, logical_id: str, max_length: int = 80) -> str:
    """A name shaped like CloudFormation's: ``stack-LogicalId-RANDOMSUFFIX``."""
    suffix = uuid.uuid4().hex[:12].upper()
    prefix = f"{stack.name}-{logical_id}"[: max_length - len(suffix) - 1]
    return f"{prefix}-{suffix}"


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{MOTO_ACCOUNT_ID}:{resource}"


def _name_without_creating(stack: Stack, logical_id: str) -> None:
    """Give a resource moto cannot hold the physical ID CloudFormation would give it."""
    kind = stack.template.resources[logical_id]["Type"]
    if kind == "AWS::Serverless::Function":
        name = _physical_name(stack, logical_id, max_length=64)
        stack.resources[logical_id] = name
        stack.attributes[logical_id] = {"Arn": _arn("lambda", f"function:{name}")}
    elif kind == "AWS::Serverless::LayerVersion":
        arn = _arn("lambda", f"layer:{stack.name}-{logical_id}:1")
        stack.resources[logical_id] = arn
        stack.attributes[logical_id] = {"Arn": arn}
    else:
        name = _physical_name(stack, logical_id)
        stack.resources[logical_id] = name
        stack.attributes[logical_id] = {"Arn": _arn(kind.split("::")[1].lower(), name)}


def _use_declared_name(stack: Stack, logical_id: str) -> None:
    """A log group named in the template is known by that name (/aws/lambda/<stack>/<name>)."""
    resource = stack.template.resources[logical_id]
    if resource["Type"] == "AWS::Logs::LogGroup" and "LogGroupName" in resource["Properties"]:
        name = str(stack.resolve(resource["Properties"]["LogGroupName"]))
        stack.resources[logical_id] = name
        stack.attributes[logical_id] = {"Arn": _arn("logs", f"log-group:{name}:*")}


# -- one maker per resource type: (stack, logical_id, resolved properties) -> (ref, attributes)

Maker = Callable[[Stack, str, dict[str, Any]], tuple[str, dict[str, str]]]


def _make_key(stack: Stack, logical_id: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    kms = stack.client("kms")
    request: dict[str, Any] = {"Description": props.get("Description", "")}
    if "KeyPolicy" in props:
        request["Policy"] = json.dumps(props["KeyPolicy"])
    metadata = kms.create_key(**request)["KeyMetadata"]
    if props.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=metadata["KeyId"])
    return metadata["KeyId"], {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]}


def _make_alias(stack: Stack, logical_id: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    kms = stack.client("kms")
    kms.create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    return props["AliasName"], {}


def _make_role(stack: Stack, logical_id: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    iam = stack.client("iam")
    name = props.get("RoleName") or _physical_name(stack, logical_id, max_length=64)
    role = iam.create_role(
        RoleName=name,
        Path=props.get("Path", "/"),
        AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
        Description=props.get("Description", ""),
    )["Role"]
    for policy in props.get("Policies", []):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(policy["PolicyDocument"]),
        )
    for arn in props.get("ManagedPolicyArns", []):
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}


def _make_policy(
    stack: Stack, logical_id: str, props: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    iam = stack.client("iam")
    for role in props.get("Roles", []):
        iam.put_role_policy(
            RoleName=role,
            PolicyName=props["PolicyName"],
            PolicyDocument=json.dumps(props["PolicyDocument"]),
        )
    name = _physical_name(stack, logical_id)
    return name, {"Id": name}


def _make_table(stack: Stack, logical_id: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    dynamodb = stack.client("dynamodb")
    name = props.get("TableName") or _physical_name(stack, logical_id, max_length=255)
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput"):
        if key in props:
            request[key] = props[key]
    sse = props.get("SSESpecification")
    if sse:
        request["SSESpecification"] = {
            "Enabled": bool(sse.get("SSEEnabled")),
            **({"SSEType": sse["SSEType"]} if "SSEType" in sse else {}),
            **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
        }
    stream = props.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream["StreamViewType"],
        }
    description = dynamodb.create_table(**request)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr and pitr.get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    attributes = {"Arn": description["TableArn"]}
    if "LatestStreamArn" in description:
        attributes["StreamArn"] = description["LatestStreamArn"]
    return name, attributes


def _attribute_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


# CloudFormation properties of AWS::SQS::Queue that are not queue attributes of the API.
_QUEUE_NOT_ATTRIBUTES = frozenset({"QueueName", "Tags"})


def _make_queue(stack: Stack, logical_id: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    sqs = stack.client("sqs")
    fifo = _attribute_string(props.get("FifoQueue", False)) == "true"
    name = props.get("QueueName") or _physical_name(
        stack, logical_id, max_length=75 if fifo else 80
    )
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {
        key: _attribute_string(value)
        for key, value in props.items()
        if key not in _QUEUE_NOT_ATTRIBUTES
    }
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}


def _make_queue_policy(
    stack: Stack, logical_id: str, props: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    sqs = stack.client("sqs")
    for url in props["Queues"]:
        sqs.set_queue_attributes(
            QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
        )
    return _physical_name(stack, logical_id), {}


# CloudFormation properties of AWS::SNS::Topic that are topic attributes of the API.
_TOPIC_ATTRIBUTES = frozenset(
    {
        "ArchivePolicy",
        "ContentBasedDeduplication",
        "DeliveryStatusLogging",
        "DisplayName",
        "FifoTopic",
        "KmsMasterKeyId",
        "SignatureVersion",
        "TracingConfig",
    }
)


def _make_topic(stack: Stack, logical_id: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    sns = stack.client("sns")
    fifo = _attribute_string(props.get("FifoTopic", False)) == "true"
    name = props.get("TopicName") or _physical_name(stack, logical_id, max_length=251)
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {
        key: _attribute_string(value) for key, value in props.items() if key in _TOPIC_ATTRIBUTES
    }
    arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
    for subscription in props.get("Subscription", []):
        sns.subscribe(
            TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"]
        )
    return arn, {"TopicArn": arn, "TopicName": name}


# CloudFormation properties of AWS::SNS::Subscription that are subscription attributes.
_SUBSCRIPTION_ATTRIBUTES = frozenset(
    {"DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy"}
)


def _make_subscription(
    stack: Stack, logical_id: str, props: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    sns = stack.client("sns")
    attributes = {
        key: _attribute_string(value)
        for key, value in props.items()
        if key in _SUBSCRIPTION_ATTRIBUTES
    }
    arn = sns.subscribe(
        TopicArn=props["TopicArn"],
        Protocol=props["Protocol"],
        Endpoint=props["Endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return arn, {"Arn": arn}


def _make_topic_policy(
    stack: Stack, logical_id: str, props: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    sns = stack.client("sns")
    for arn in props["Topics"]:
        sns.set_topic_attributes(
            TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
        )
    return _physical_name(stack, logical_id), {}


_MAKERS: dict[str, Maker] = {
    "AWS::KMS::Key": _make_key,
    "AWS::KMS::Alias": _make_alias,
    "AWS::IAM::Role": _make_role,
    "AWS::IAM::Policy": _make_policy,
    "AWS::DynamoDB::Table": _make_table,
    "AWS::SQS::Queue": _make_queue,
    "AWS::SQS::QueuePolicy": _make_queue_policy,
    "AWS::SNS::Topic": _make_topic,
    "AWS::SNS::Subscription": _make_subscription,
    "AWS::SNS::TopicPolicy": _make_topic_policy,
}


def _create_secrets(
    stack: Stack, tuya_secret: Mapping[str, str] | None, slack_webhook_url: str | None
) -> None:
    tuya = dict(
        tuya_secret or {"access_id": DEFAULT_ACCESS_ID, "access_secret": DEFAULT_ACCESS_SECRET}
    )
    _put_secret(stack, str(stack.parameters["TuyaSecretName"]), json.dumps(tuya))
    slack_name = str(stack.parameters.get("SlackWebhookSecretName", ""))
    if slack_webhook_url is not None and slack_name:
        _put_secret(stack, slack_name, slack_webhook_url)


def _put_secret(stack: Stack, name: str, value: str) -> None:
    secretsmanager = stack.client("secretsmanager")
    try:
        arn = secretsmanager.create_secret(Name=name, SecretString=value)["ARN"]
    except secretsmanager.exceptions.ResourceExistsException:
        arn = secretsmanager.put_secret_value(SecretId=name, SecretString=value)["ARN"]
    stack.secrets[name] = arn
