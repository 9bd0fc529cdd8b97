"""The template's resources, created in moto server from the template's own properties.

Each supported resource type is created with the properties the template gives it (bucket notifications,
queue redrive policies, topic subscriptions with filter policies, table keys and indexes, the user pool and
its client, the state machine definitions, the schedule group, KMS keys, secrets) and contributes what
CloudFormation's ``Ref`` and ``Fn::GetAtt`` would return for it. Resources the rehearsal does not run (VPC,
CloudFront, alarms...) get plausible physical ids so references to them resolve; the Aurora cluster is the
rehearsal's PostgreSQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from tests.rehearsal.template import ACCOUNT, REGION, Resolver, UnresolvedReference

__all__ = ["Cloud", "Postgres"]

# The order CloudFormation would need: what others reference first.
_ORDER = (
    "AWS::KMS::Key",
    "AWS::SecretsManager::Secret",
    "AWS::SecretsManager::SecretTargetAttachment",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::GlobalTable",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::SNS::Subscription",
    "Custom::S3BucketNotifications",
    "AWS::StepFunctions::StateMachine",
    "AWS::Scheduler::ScheduleGroup",
)


_CORS_KEYS = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds", "Id": "ID"}  # CloudFormation -> S3 API


@dataclass(frozen=True)
class Postgres:
    """The rehearsal's stand-in for the Aurora cluster: where it listens and the role the secret names."""

    host: str
    port: int
    database: str


def _physical_name(logical_id: str, suffix: str = "rehearsal", limit: int = 63) -> str:
    base = re.sub(r"[^a-z0-9-]", "", logical_id.lower())
    return f"{base[: limit - len(suffix) - 1]}-{suffix}"


@dataclass
class Cloud:
    """Creates the template's resources in the moto server at ``endpoint``; ``resolver`` then resolves the
    template against them."""

    template: Mapping[str, Any]
    endpoint: str
    postgres: Postgres
    api_endpoints: Mapping[str, str] = field(default_factory=dict)  # WebSocket/REST API logical id -> host
    resolver: Resolver = field(init=False)
    created: dict[str, str] = field(default_factory=dict)  # logical id -> resource type

    def __post_init__(self) -> None:
        self.resolver = Resolver(self.template, fallback=self._placeholder)
        self._session = boto3.Session(
            aws_access_key_id="rehearsal", aws_secret_access_key="rehearsal", region_name=REGION
        )

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    # ------------------------------------------------------------------ creation

    def create(self) -> Cloud:
        resources = self.template["Resources"]
        self._describe_passive(resources)
        for kind in _ORDER:
            for logical_id, resource in resources.items():
                if resource["Type"] == kind and self._wanted(resource):
                    getattr(self, "_" + re.sub(r"\W+", "_", kind).strip("_").lower())(logical_id, resource)
                    self.created[logical_id] = kind
        return self

    def _wanted(self, resource: Mapping[str, Any]) -> bool:
        condition = resource.get("Condition")
        return condition is None or self.resolver.condition(condition)

    def _props(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.resolver(resource.get("Properties", {})))

    def _aws_kms_key(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        key = self.client("kms").create_key(Description=logical_id)["KeyMetadata"]
        self.resolver.refs[logical_id] = key["KeyId"]
        self.resolver.attrs[(logical_id, "Arn")] = key["Arn"]
        self.resolver.attrs[(logical_id, "KeyId")] = key["KeyId"]

    def _aws_secretsmanager_secret(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(resource)
        generate = props.get("GenerateSecretString", {})
        value = json.loads(generate.get("SecretStringTemplate", "{}"))
        # What the Aurora secret attachment adds; the password is the rehearsal's (trust auth ignores it).
        value |= {
            "password": "rehearsal",
            "engine": "postgres",
            "host": self.postgres.host,
            "port": self.postgres.port,
            "dbname": self.postgres.database,
        }
        name = props.get("Name") or _physical_name(logical_id)
        arn = self.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(value))["ARN"]
        self.resolver.refs[logical_id] = arn

    def _aws_secretsmanager_secrettargetattachment(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        # Its Ref is the attached secret's ARN; the host and port were written into the secret above.
        self.resolver.refs[logical_id] = self._props(resource)["SecretId"]

    def _aws_sqs_queue(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(resource)
        name = props.get("QueueName") or _physical_name(logical_id, limit=80)
        attributes = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
            if key in props:
                attributes[key] = str(props[key])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = self.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        self.resolver.refs[logical_id] = url
        self.resolver.attrs |= {
            (logical_id, "Arn"): arn,
            (logical_id, "QueueName"): name,
            (logical_id, "QueueUrl"): url,
        }

    def _aws_sns_topic(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(resource)
        name = props.get("TopicName") or _physical_name(logical_id, limit=256)
        arn = self.client("sns").create_topic(Name=name)["TopicArn"]
        self.resolver.refs[logical_id] = arn
        self.resolver.attrs |= {(logical_id, "TopicArn"): arn, (logical_id, "TopicName"): name}

    def _aws_sns_subscription(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(resource)
        attributes = {"RawMessageDelivery": str(props.get("RawMessageDelivery", False)).lower()}
        if "FilterPolicy" in props:
            attributes["FilterPolicy"] = json.dumps(props["FilterPolicy"])
            attributes["FilterPolicyScope"] = props.get("FilterPolicyScope", "MessageAttributes")
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        arn = self.client("sns").subscribe(
            TopicArn=props["TopicArn"],
            Protocol=props["Protocol"],
            Endpoint=props["Endpoint"],
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        self.resolver.refs[logical_id] = arn

    def _aws_s3_bucket(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(resource)
        name = props.get("BucketName") or _physical_name(logical_id)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if "CorsConfiguration" in props:
            rules = [
                {_CORS_KEYS.get(k, k): v for k, v in rule.items()} for rule in props["CorsConfiguration"]["CorsRules"]
            ]
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
        self.resolver.refs[logical_id] = name
        self.resolver.attrs |= {
            (logical_id, "Arn"): f"arn:aws:s3:::{name}",
            (logical_id, "DomainName"): f"{name}.s3.amazonaws.com",
            (logical_id, "RegionalDomainName"): f"{name}.s3.{REGION}.amazonaws.com",
        }

    def _custom_s3bucketnotifications(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(resource)
        config = props.get("NotificationConfiguration", {})
        self.client("s3").put_bucket_notification_configuration(
            Bucket=props["BucketName"], NotificationConfiguration=config
        )

    def _aws_dynamodb_table(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(resource)
        name = props.get("TableName") or _physical_name(logical_id, limit=255)
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = [
                {k: v for k, v in index.items() if k in ("IndexName", "KeySchema", "Projection")}
                for index in props["GlobalSecondaryIndexes"]
            ]
        if props.get("LocalSecondaryIndexes"):
            kwargs["LocalSecondaryIndexes"] = props["LocalSecondaryIndexes"]
        dynamodb = self.client("dynamodb")
        table = dynamodb.create_table(**kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        self.resolver.refs[logical_id] = name
        self.resolver.attrs[(logical_id, "Arn")] = table["TableArn"]

    _aws_dynamodb_globaltable = _aws_dynamodb_table

    def _aws_cognito_userpool(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(resource)
        pool = self.client("cognito-idp").create_user_pool(PoolName=props.get("UserPoolName") or logical_id)
        pool_id = pool["UserPool"]["Id"]
        self.resolver.refs[logical_id] = pool_id
        self.resolver.attrs |= {
            (logical_id, "Arn"): pool["UserPool"]["Arn"],
            (logical_id, "ProviderName"): f"cognito-idp.{REGION}.amazonaws.com/{pool_id}",
            (logical_id, "ProviderURL"): f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}",
        }

    def _aws_cognito_userpoolclient(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(resource)
        client = self.client("cognito-idp").create_user_pool_client(
            UserPoolId=props["UserPoolId"],
            ClientName=props.get("ClientName") or logical_id,
            ExplicitAuthFlows=props.get("ExplicitAuthFlows", []),
        )
        self.resolver.refs[logical_id] = client["UserPoolClient"]["ClientId"]

    def _aws_stepfunctions_statemachine(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(resource)
        name = props.get("StateMachineName") or _physical_name(logical_id, limit=80)
        definition = props["DefinitionString"]
        json.loads(definition)  # the resolved definition must be valid JSON, as Step Functions requires
        arn = self.client("stepfunctions").create_state_machine(
            name=name, definition=definition, roleArn=props["RoleArn"], type=props.get("StateMachineType", "STANDARD")
        )["stateMachineArn"]
        self.resolver.refs[logical_id] = arn
        self.resolver.attrs[(logical_id, "Name")] = name

    def _aws_scheduler_schedulegroup(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(resource)
        name = props.get("Name") or _physical_name(logical_id, limit=64)
        arn = self.client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
        self.resolver.refs[logical_id] = name
        self.resolver.attrs[(logical_id, "Arn")] = arn

    # ------------------------------------------------------------------ resources not run, only named

    def _describe_passive(self, resources: Mapping[str, Any]) -> None:
        """Ref/GetAtt values of what the rehearsal names but does not run."""
        r = self.resolver
        for logical_id, resource in resources.items():
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind == "AWS::Lambda::Function":
                name = props.get("FunctionName") or _physical_name(logical_id, limit=64)
                r.refs[logical_id] = name
                r.attrs[(logical_id, "Arn")] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
            elif kind == "AWS::IAM::Role":
                name = props.get("RoleName") or _physical_name(logical_id, limit=64)
                r.refs[logical_id] = name
                r.attrs[(logical_id, "Arn")] = f"arn:aws:iam::{ACCOUNT}:role/{name}"
            elif kind == "AWS::RDS::DBCluster":
                name = props.get("DBClusterIdentifier") or _physical_name(logical_id)
                r.refs[logical_id] = name
                r.attrs |= {
                    (logical_id, "DBClusterArn"): f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:{name}",
                    (logical_id, "Endpoint.Address"): self.postgres.host,
                    (logical_id, "Endpoint.Port"): str(self.postgres.port),
                    (logical_id, "ReadEndpoint.Address"): self.postgres.host,
                }
            elif kind in ("AWS::ApiGatewayV2::Api", "AWS::ApiGateway::RestApi"):
                api_id = re.sub(r"[^a-z0-9]", "", logical_id.lower())[:10]
                r.refs[logical_id] = api_id
                host = self.api_endpoints.get(logical_id, f"{api_id}.execute-api.{REGION}.amazonaws.com")
                scheme = "wss" if kind == "AWS::ApiGatewayV2::Api" else "https"
                r.attrs |= {(logical_id, "ApiEndpoint"): f"{scheme}://{host}", (logical_id, "RootResourceId"): "root"}
            elif kind == "AWS::Batch::JobQueue":
                name = props.get("JobQueueName") or _physical_name(logical_id)
                r.refs[logical_id] = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/{name}"
            elif kind == "AWS::Batch::JobDefinition":
                name = props.get("JobDefinitionName") or _physical_name(logical_id)
                r.refs[logical_id] = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/{name}:1"

    def _placeholder(self, logical_id: str, attribute: str | None) -> Any:
        resources = self.template["Resources"]
        if logical_id not in resources:
            raise UnresolvedReference(f"{logical_id} is not a resource of the template")
        kind = resources[logical_id]["Type"]
        if kind in _ORDER:
            raise UnresolvedReference(f"{logical_id} ({kind}) was not created or lacks attribute {attribute}")
        name = _physical_name(logical_id)
        if attribute is None:
            return name
        if attribute.endswith("Arn") or attribute == "Arn":
            service = kind.split("::")[1].lower()
            return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"
        return f"{name}.{attribute.lower()}"
