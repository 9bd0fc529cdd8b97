"""The rehearsal's IAM check: every AWS call a function makes must be allowed by its own synthesized role.

Pure Python, no AWS calls. Three steps:

1. :func:`required_permissions` maps one recorded botocore call (:class:`ApiCall`) to the IAM actions and
   resource ARNs AWS authorises for it (the Service Authorization Reference's actions and ARN formats, plus
   the services' own IAM pages where one call needs several actions: DynamoDB transactions, the Data API
   reading its secret, Bedrock inference profiles and Rerank, S3 copies).
2. :func:`statements_of_role` collects the policy statements a CloudFormation template attaches to a role
   (inline ``Policies``, ``AWS::IAM::Policy`` and ``AWS::IAM::ManagedPolicy`` resources naming the role,
   customer managed policies of the template listed in ``ManagedPolicyArns``). AWS managed policy ARNs are
   only reported (:func:`managed_policy_arns`): their documents are not in the template.
3. :func:`is_allowed` evaluates identity-policy statements the way IAM does, and :func:`check_calls` /
   :func:`format_denials` turn the calls a role does not allow into readable failures.

Evaluation model (:func:`is_allowed`), after the IAM policy evaluation logic for one identity policy set:

- an explicit ``Deny`` whose ``Action``/``NotAction`` and ``Resource``/``NotResource`` match wins;
- else an ``Allow`` that matches allows; else the implicit deny applies;
- actions match case-insensitively, resources case-sensitively; ``*`` matches any run of characters
  (including none) and ``?`` exactly one, across ``:`` and ``/`` alike (the whole ARN is one pattern);
- ``Condition`` blocks are treated as satisfied (the rehearsal has no request context: no source IP, no
  tags, no ``dynamodb:EnclosingOperation``), so a conditional Allow allows and a conditional Deny denies;
- permission boundaries, SCPs, session policies and resource-based policies are not evaluated; policy
  variables (``${aws:username}``) are not substituted and only match themselves literally.

Not visible in the API call and so not checked: permissions a service uses on the caller's behalf beyond
those listed here (for example ``kms:GenerateDataKey`` when S3 encrypts an object with SSE-KMS).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = [
    "SECRET_NAME_SUFFIX",
    "ApiCall",
    "Denial",
    "Permission",
    "UnknownCall",
    "check_calls",
    "format_denials",
    "is_allowed",
    "managed_policy_arns",
    "required_permissions",
    "statements_of_role",
]

# Secrets Manager appends "-" and six random characters to a secret's name in its ARN. A call that names a
# secret by name (not ARN) is authorised against that full ARN, which the call does not reveal: the
# rehearsal uses this stand-in suffix, so a grant on ``...:secret:<name>-??????`` or ``<name>*`` allows it.
SECRET_NAME_SUFFIX = "-XXXXXX"

# Geographic prefixes of Bedrock cross-region (system-defined) inference profile ids (as stacks/iam.py).
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "ca.", "jp.", "au.")


@dataclass(frozen=True)
class ApiCall:
    """One botocore call as recorded in the Lambda process."""

    service: str  # botocore service name ("dynamodb", "stepfunctions", "bedrock-runtime", ...)
    operation: str  # botocore operation name ("PutItem", "PostToConnection", ...)
    params: Mapping[str, Any]  # the operation's parameters as passed to the client
    region: str
    account: str
    endpoint: str = ""  # scheme://host[/path-prefix] of the request URL

    def __str__(self) -> str:
        return f"{self.service}.{self.operation}"


@dataclass(frozen=True)
class Permission:
    """One IAM authorisation: an action (``service:Action``) on one resource ARN (or ``*``)."""

    action: str
    resource: str


@dataclass(frozen=True)
class Denial:
    """A permission a function's call needs that its role does not grant."""

    function: str
    action: str
    resource: str
    call: str  # "service.Operation"

    def __str__(self) -> str:
        return f"{self.function}: {self.action} on {self.resource} ({self.call}) is not allowed by its role"


class UnknownCall(LookupError):
    """A call the rehearsal cannot map to IAM permissions: extend :func:`required_permissions`."""

    def __init__(self, call: ApiCall, reason: str = "") -> None:
        self.call = call
        self.reason = reason
        detail = reason or "no IAM mapping for this service/operation"
        super().__init__(
            f"{call.service}.{call.operation}: {detail}; extend tests/rehearsal/iam_check.py required_permissions"
        )


# --------------------------------------------------------------------------------------------------------
# Calls -> permissions
# --------------------------------------------------------------------------------------------------------


def partition_of(region: str) -> str:
    """The ARN partition of a region (``aws``, ``aws-cn``, ``aws-us-gov``, ...)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    if region.startswith("us-iso-"):
        return "aws-iso"
    return "aws"


def _arn(call: ApiCall, service: str, resource: str, *, region: str | None = None, account: str | None = None) -> str:
    region = call.region if region is None else region
    account = call.account if account is None else account
    return f"arn:{partition_of(call.region)}:{service}:{region}:{account}:{resource}"


def _param(call: ApiCall, name: str) -> Any:
    if name not in call.params:
        raise UnknownCall(call, f"parameter {name!r} missing from the recorded call")
    return call.params[name]


def _unique(perms: Iterable[Permission]) -> list[Permission]:
    return list(dict.fromkeys(perms))


# DynamoDB ------------------------------------------------------------------------------------------------

_DDB_TABLE_OPS = {
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "DescribeTable",
    "ConditionCheckItem",
    "DescribeTimeToLive",
    "UpdateTimeToLive",
    "DescribeContinuousBackups",
}
# TransactWriteItems: each item is authorised as the single-item action it performs (AWS "Using IAM with
# DynamoDB transactions"); TransactGetItems' Get items as GetItem.
_DDB_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _ddb_table(call: ApiCall, table: str) -> str:
    # TableName may be a table ARN (DynamoDB accepts both)
    return table if table.startswith("arn:") else _arn(call, "dynamodb", f"table/{table}")


def _dynamodb(call: ApiCall) -> list[Permission]:
    op = call.operation
    if op in _DDB_TABLE_OPS:
        resource = _ddb_table(call, _param(call, "TableName"))
        index = call.params.get("IndexName")
        if op in ("Query", "Scan") and index:
            resource = f"{resource}/index/{index}"
        return [Permission(f"dynamodb:{op}", resource)]
    if op in ("BatchGetItem", "BatchWriteItem"):
        # the Service Authorization Reference: BatchGetItem / BatchWriteItem, on every table of the request
        return _unique(Permission(f"dynamodb:{op}", _ddb_table(call, t)) for t in _param(call, "RequestItems"))
    if op in ("TransactWriteItems", "TransactGetItems"):
        perms = []
        for item in _param(call, "TransactItems"):
            for kind, body in item.items():
                if kind not in _DDB_TRANSACT_ACTIONS:
                    raise UnknownCall(call, f"transaction item kind {kind!r}")
                perms.append(Permission(f"dynamodb:{_DDB_TRANSACT_ACTIONS[kind]}", _ddb_table(call, body["TableName"])))
        return _unique(perms)
    if op == "ListTables":
        return [Permission("dynamodb:ListTables", "*")]
    raise UnknownCall(call)


# S3 ------------------------------------------------------------------------------------------------------


def _s3_bucket(call: ApiCall, bucket: str) -> str:
    # an access point (or Object Lambda / Outposts) ARN given as Bucket names itself
    return bucket if bucket.startswith("arn:") else f"arn:{partition_of(call.region)}:s3:::{bucket}"


def _s3_object(call: ApiCall, bucket: str, key: str) -> str:
    if bucket.startswith("arn:"):
        return f"{bucket}/object/{key}"
    return f"{_s3_bucket(call, bucket)}/{key}"


def _copy_source(call: ApiCall, source: Any) -> tuple[str, str, str | None]:
    """(bucket, key, version) of CopyObject's CopySource: ``"bucket/key[?versionId=v]"`` or a dict."""
    if isinstance(source, Mapping):
        return str(source["Bucket"]), str(source["Key"]), source.get("VersionId")
    text = str(source)
    version = None
    if "?versionId=" in text:
        text, version = text.split("?versionId=", 1)
    text = unquote(text).lstrip("/")
    if text.startswith("arn:"):
        bucket, _, key = text.partition("/object/")
    else:
        bucket, _, key = text.partition("/")
    if not bucket or not key:
        raise UnknownCall(call, f"cannot read CopySource {source!r}")
    return bucket, key, version


_S3_OBJECT_OPS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "PutObjectTagging": "s3:PutObjectTagging",
    "SelectObjectContent": "s3:GetObject",
    # not an API call, but a presigned POST is authorised with the signer's (the function's) credentials
    "GeneratePresignedPost": "s3:PutObject",
}
# operations that read an object: the action, and the one AWS checks instead when VersionId is given
_S3_VERSIONED_OPS = {
    "GetObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "HeadObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "DeleteObject": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "GetObjectTagging": ("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    "DeleteObjectTagging": ("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
    "GetObjectAttributes": ("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
}
_S3_BUCKET_OPS = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "GetBucketLocation": "s3:GetBucketLocation",
}


def _s3(call: ApiCall) -> list[Permission]:
    op = call.operation
    bucket = str(_param(call, "Bucket"))
    if op in _S3_BUCKET_OPS:
        return [Permission(_S3_BUCKET_OPS[op], _s3_bucket(call, bucket))]
    if op in _S3_VERSIONED_OPS:
        plain, versioned = _S3_VERSIONED_OPS[op]
        action = versioned if call.params.get("VersionId") else plain
        return [Permission(action, _s3_object(call, bucket, str(_param(call, "Key"))))]
    if op in _S3_OBJECT_OPS:
        target = _s3_object(call, bucket, str(_param(call, "Key")))
        perms = [Permission(_S3_OBJECT_OPS[op], target)]
        if op in ("PutObject", "CreateMultipartUpload"):
            perms += _s3_put_extras(call, target)
        return perms
    if op == "DeleteObjects":
        perms = []
        for obj in _param(call, "Delete").get("Objects", []):
            action = "s3:DeleteObjectVersion" if obj.get("VersionId") else "s3:DeleteObject"
            perms.append(Permission(action, _s3_object(call, bucket, str(obj["Key"]))))
        return _unique(perms)
    if op in ("CopyObject", "UploadPartCopy"):
        src_bucket, src_key, version = _copy_source(call, _param(call, "CopySource"))
        target = _s3_object(call, bucket, str(_param(call, "Key")))
        perms = [
            Permission("s3:GetObjectVersion" if version else "s3:GetObject", _s3_object(call, src_bucket, src_key)),
            Permission("s3:PutObject", target),
        ]
        if op == "CopyObject":
            perms += _s3_put_extras(call, target)
        return perms
    raise UnknownCall(call)


def _s3_put_extras(call: ApiCall, target: str) -> list[Permission]:
    """A write that also sets tags or an ACL needs those actions too (PutObject's API reference)."""
    extras = []
    if call.params.get("Tagging"):
        extras.append(Permission("s3:PutObjectTagging", target))
    if call.params.get("ACL") or any(k.startswith("Grant") for k in call.params):
        extras.append(Permission("s3:PutObjectAcl", target))
    return extras


# SNS / SQS -----------------------------------------------------------------------------------------------


def _sns(call: ApiCall) -> list[Permission]:
    if call.operation in ("Publish", "PublishBatch"):
        topic = call.params.get("TopicArn") or call.params.get("TargetArn")
        # a direct SMS (PhoneNumber) has no resource
        return [Permission("sns:Publish", str(topic) if topic else "*")]
    if call.operation in ("GetTopicAttributes", "ListSubscriptionsByTopic"):
        return [Permission(f"sns:{call.operation}", str(_param(call, "TopicArn")))]
    raise UnknownCall(call)


_SQS_ACTIONS = {
    "SendMessage": "SendMessage",
    "SendMessageBatch": "SendMessage",
    "ReceiveMessage": "ReceiveMessage",
    "DeleteMessage": "DeleteMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibility": "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    "GetQueueAttributes": "GetQueueAttributes",
    "PurgeQueue": "PurgeQueue",
}


def _sqs_queue_arn(call: ApiCall, url: str) -> str:
    """``https://sqs.<region>.amazonaws.com/<account>/<name>`` -> ``arn:aws:sqs:<region>:<account>:<name>``."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if len(parts) < 2:
        raise UnknownCall(call, f"cannot read the queue of QueueUrl {url!r}")
    return _arn(call, "sqs", parts[-1], account=parts[-2])


def _sqs(call: ApiCall) -> list[Permission]:
    op = call.operation
    if op in _SQS_ACTIONS:
        return [Permission(f"sqs:{_SQS_ACTIONS[op]}", _sqs_queue_arn(call, str(_param(call, "QueueUrl"))))]
    if op == "GetQueueUrl":
        owner = call.params.get("QueueOwnerAWSAccountId") or call.account
        return [Permission("sqs:GetQueueUrl", _arn(call, "sqs", str(_param(call, "QueueName")), account=owner))]
    raise UnknownCall(call)


# Step Functions ------------------------------------------------------------------------------------------

_SFN_RESOURCE_PARAM = {
    "StartExecution": "stateMachineArn",
    "StartSyncExecution": "stateMachineArn",
    "ListExecutions": "stateMachineArn",
    "DescribeStateMachine": "stateMachineArn",
    "DescribeExecution": "executionArn",
    "StopExecution": "executionArn",
    "GetExecutionHistory": "executionArn",
    "DescribeStateMachineForExecution": "executionArn",
}


def _stepfunctions(call: ApiCall) -> list[Permission]:
    # botocore's "stepfunctions" is IAM's "states"
    if call.operation in _SFN_RESOURCE_PARAM:
        arn = str(_param(call, _SFN_RESOURCE_PARAM[call.operation]))
        return [Permission(f"states:{call.operation}", arn)]
    raise UnknownCall(call)


# EventBridge Scheduler / Lambda --------------------------------------------------------------------------

_SCHEDULER_OPS = ("CreateSchedule", "UpdateSchedule", "GetSchedule", "DeleteSchedule")


def _scheduler(call: ApiCall) -> list[Permission]:
    """``scheduler:<Operation>`` on ``schedule/<group>/<name>`` (the ``default`` group when none is named); a
    schedule runs as its target's role, so creating or updating one also passes that role (``iam:PassRole``,
    EventBridge Scheduler's "Set up the execution role")."""
    if call.operation not in _SCHEDULER_OPS:
        raise UnknownCall(call)
    group = call.params.get("GroupName") or "default"
    name = str(_param(call, "Name"))
    perms = [Permission(f"scheduler:{call.operation}", _arn(call, "scheduler", f"schedule/{group}/{name}"))]
    if call.operation in ("CreateSchedule", "UpdateSchedule"):
        role = _param(call, "Target").get("RoleArn")
        if not role:
            raise UnknownCall(call, "Target.RoleArn missing from the recorded call")
        perms.append(Permission("iam:PassRole", str(role)))
    return perms


def _lambda(call: ApiCall) -> list[Permission]:
    """``lambda:InvokeFunction`` on the function (a name, ``name:qualifier``, or an ARN), with its qualifier."""
    if call.operation not in ("Invoke", "InvokeWithResponseStream"):
        raise UnknownCall(call)
    name = str(_param(call, "FunctionName"))
    arn = name if name.startswith("arn:") else _arn(call, "lambda", f"function:{name}")
    qualifier = call.params.get("Qualifier")
    if qualifier and arn.count(":") == 6:  # arn:partition:lambda:region:account:function:name
        arn = f"{arn}:{qualifier}"
    return [Permission("lambda:InvokeFunction", arn)]


# API Gateway management API ------------------------------------------------------------------------------

_APIGW_METHODS = {"PostToConnection": "POST", "DeleteConnection": "DELETE", "GetConnection": "GET"}


def _apigatewaymanagementapi(call: ApiCall) -> list[Permission]:
    """execute-api:ManageConnections on ``<apiId>/<stage>/<METHOD>/@connections/<connectionId>``: the
    ``@connections`` API uses the REST ARN format (API Gateway's "Control access to WebSocket APIs with IAM
    authorization"); the method is the one of the HTTP request the operation makes."""
    if call.operation not in _APIGW_METHODS:
        raise UnknownCall(call)
    split = urlsplit(call.endpoint)
    host = split.hostname or ""
    if ".execute-api." not in host:
        raise UnknownCall(call, f"endpoint {call.endpoint!r} is not <apiId>.execute-api.<region>.<domain>/<stage>")
    api_id = host.split(".", 1)[0]
    path = split.path.split("/@connections", 1)[0]
    stage = path.strip("/")
    if not stage:
        raise UnknownCall(call, f"endpoint {call.endpoint!r} has no stage")
    connection = str(_param(call, "ConnectionId"))
    method = _APIGW_METHODS[call.operation]
    return [
        Permission(
            "execute-api:ManageConnections",
            _arn(call, "execute-api", f"{api_id}/{stage}/{method}/@connections/{connection}"),
        )
    ]


# Bedrock -------------------------------------------------------------------------------------------------

_BEDROCK_ACTIONS = {
    "Converse": "bedrock:InvokeModel",
    "InvokeModel": "bedrock:InvokeModel",
    "ConverseStream": "bedrock:InvokeModelWithResponseStream",
    "InvokeModelWithResponseStream": "bedrock:InvokeModelWithResponseStream",
}


def bedrock_model_resources(call: ApiCall, model_id: str) -> list[str]:
    """The ARNs an invocation of ``model_id`` is authorised against.

    A foundation model id -> its ``foundation-model`` ARN (no account). A cross-region inference profile id
    (``us.``/``eu.``/``apac.``/``global.``... prefix) -> the profile's ARN in the calling region AND the
    foundation model it routes to (Bedrock checks both; the call's region stands for the destination region,
    a ``global.`` profile's model has no region). An ARN (application profile, provisioned model, prompt, or
    an inference profile named by ARN) is used as is.
    """
    if model_id.startswith("arn:"):
        return [model_id]
    if model_id.startswith(_PROFILE_PREFIXES):
        base = model_id.split(".", 1)[1]
        model_region = "" if model_id.startswith("global.") else call.region
        return [
            _arn(call, "bedrock", f"inference-profile/{model_id}"),
            _arn(call, "bedrock", f"foundation-model/{base}", region=model_region, account=""),
        ]
    return [_arn(call, "bedrock", f"foundation-model/{model_id}", account="")]


def _guardrail(call: ApiCall, identifier: str) -> Permission:
    arn = identifier if identifier.startswith("arn:") else _arn(call, "bedrock", f"guardrail/{identifier}")
    return Permission("bedrock:ApplyGuardrail", arn)


def _bedrock_runtime(call: ApiCall) -> list[Permission]:
    if call.operation not in _BEDROCK_ACTIONS:
        raise UnknownCall(call)
    action = _BEDROCK_ACTIONS[call.operation]
    perms = [Permission(action, arn) for arn in bedrock_model_resources(call, str(_param(call, "modelId")))]
    # a guardrail on the call is applied with the caller's permissions (bedrock:ApplyGuardrail)
    config = call.params.get("guardrailConfig")
    if isinstance(config, Mapping) and config.get("guardrailIdentifier"):
        perms.append(_guardrail(call, str(config["guardrailIdentifier"])))
    elif call.params.get("guardrailIdentifier"):
        perms.append(_guardrail(call, str(call.params["guardrailIdentifier"])))
    return perms


def _bedrock_agent_runtime(call: ApiCall) -> list[Permission]:
    if call.operation != "Rerank":
        raise UnknownCall(call)
    # bedrock:Rerank has no resource type; the reranker model itself needs bedrock:InvokeModel
    # (Bedrock's "Permissions for reranking").
    perms = [Permission("bedrock:Rerank", "*")]
    config = call.params.get("rerankingConfiguration", {}).get("bedrockRerankingConfiguration", {})
    model_arn = config.get("modelConfiguration", {}).get("modelArn")
    if model_arn:
        perms += [Permission("bedrock:InvokeModel", arn) for arn in bedrock_model_resources(call, str(model_arn))]
    return perms


# SageMaker runtime ---------------------------------------------------------------------------------------


def _sagemaker_runtime(call: ApiCall) -> list[Permission]:
    if call.operation not in ("InvokeEndpoint", "InvokeEndpointWithResponseStream", "InvokeEndpointAsync"):
        raise UnknownCall(call)
    # SageMaker ARNs carry resource names in lower case
    name = str(_param(call, "EndpointName")).lower()
    return [Permission(f"sagemaker:{call.operation}", _arn(call, "sagemaker", f"endpoint/{name}"))]


# RDS Data API / Secrets Manager / KMS --------------------------------------------------------------------

_RDS_DATA_OPS = {
    "ExecuteStatement",
    "BatchExecuteStatement",
    "BeginTransaction",
    "CommitTransaction",
    "RollbackTransaction",
}


def _rds_data(call: ApiCall) -> list[Permission]:
    if call.operation not in _RDS_DATA_OPS:
        raise UnknownCall(call)
    # the Data API reads the database secret with the caller's permissions
    return [
        Permission(f"rds-data:{call.operation}", str(_param(call, "resourceArn"))),
        Permission("secretsmanager:GetSecretValue", _secret_arn(call, str(_param(call, "secretArn")))),
    ]


def _secret_arn(call: ApiCall, secret_id: str) -> str:
    if secret_id.startswith("arn:"):
        return secret_id
    return _arn(call, "secretsmanager", f"secret:{secret_id}{SECRET_NAME_SUFFIX}")


_SECRETS_OPS = {"GetSecretValue", "DescribeSecret", "PutSecretValue", "UpdateSecret", "GetResourcePolicy"}


def _secretsmanager(call: ApiCall) -> list[Permission]:
    if call.operation not in _SECRETS_OPS:
        raise UnknownCall(call)
    return [Permission(f"secretsmanager:{call.operation}", _secret_arn(call, str(_param(call, "SecretId"))))]


_KMS_OPS = {
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "DescribeKey",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
}


def _kms_key(call: ApiCall, key_id: str) -> str:
    if key_id.startswith("arn:") and ":alias/" not in key_id:
        return key_id
    if key_id.startswith("alias/") or ":alias/" in key_id:
        # KMS authorises the key an alias points to, which the call does not reveal
        raise UnknownCall(call, f"KeyId {key_id!r} is an alias; the rehearsal cannot resolve it to its key")
    return _arn(call, "kms", f"key/{key_id}")


def _kms(call: ApiCall) -> list[Permission]:
    if call.operation == "ReEncrypt":
        source = call.params.get("SourceKeyId")
        if not source:
            raise UnknownCall(call, "ReEncrypt without SourceKeyId: the key is inside the ciphertext")
        return [
            Permission("kms:ReEncryptFrom", _kms_key(call, str(source))),
            Permission("kms:ReEncryptTo", _kms_key(call, str(_param(call, "DestinationKeyId")))),
        ]
    if call.operation not in _KMS_OPS:
        raise UnknownCall(call)
    key_id = call.params.get("KeyId")
    if not key_id:
        raise UnknownCall(call, "no KeyId: the key is inside the ciphertext; pass KeyId to make it checkable")
    return [Permission(f"kms:{call.operation}", _kms_key(call, str(key_id)))]


# Cognito -------------------------------------------------------------------------------------------------

# user-pool API operations authorised by the user's tokens (or none), not by IAM
_COGNITO_PUBLIC_OPS = {
    "InitiateAuth",
    "RespondToAuthChallenge",
    "SignUp",
    "ConfirmSignUp",
    "ResendConfirmationCode",
    "ForgotPassword",
    "ConfirmForgotPassword",
    "GetUser",
    "ChangePassword",
    "GlobalSignOut",
    "RevokeToken",
    "GetTokensFromRefreshToken",
    "UpdateUserAttributes",
    "DeleteUser",
    "VerifyUserAttribute",
    "GetUserAttributeVerificationCode",
}


def _cognito_idp(call: ApiCall) -> list[Permission]:
    if call.operation in _COGNITO_PUBLIC_OPS:
        return []
    pool = call.params.get("UserPoolId")
    if not pool:
        raise UnknownCall(call)
    return [Permission(f"cognito-idp:{call.operation}", _arn(call, "cognito-idp", f"userpool/{pool}"))]


_MAPPERS: dict[str, Callable[[ApiCall], list[Permission]]] = {
    "dynamodb": _dynamodb,
    "s3": _s3,
    "sns": _sns,
    "sqs": _sqs,
    "stepfunctions": _stepfunctions,
    "scheduler": _scheduler,
    "lambda": _lambda,
    "apigatewaymanagementapi": _apigatewaymanagementapi,
    "bedrock-runtime": _bedrock_runtime,
    "bedrock-agent-runtime": _bedrock_agent_runtime,
    "sagemaker-runtime": _sagemaker_runtime,
    "rds-data": _rds_data,
    "secretsmanager": _secretsmanager,
    "kms": _kms,
    "cognito-idp": _cognito_idp,
}


def required_permissions(call: ApiCall) -> list[Permission]:
    """The IAM permissions (action, resource ARN) AWS authorises for ``call``, without duplicates.

    Raises :class:`UnknownCall` for a service or operation the rehearsal does not know, or a call whose
    resource cannot be told from its parameters (a KMS alias, an API Gateway custom domain...).
    """
    mapper = _MAPPERS.get(call.service)
    if mapper is None:
        raise UnknownCall(call, f"service {call.service!r} unknown")
    return _unique(mapper(call))


# --------------------------------------------------------------------------------------------------------
# Template -> statements
# --------------------------------------------------------------------------------------------------------

_STATEMENT_LISTS = ("Action", "NotAction", "Resource", "NotResource")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _resolve_strings(values: Any, resolve: Callable[[Any], Any]) -> list[str]:
    out: list[str] = []
    for value in _as_list(values):
        resolved = value if isinstance(value, str) else resolve(value)
        out += [str(v) for v in _as_list(resolved)]
    return out


def _normalise_statement(statement: Any, resolve: Callable[[Any], Any]) -> dict[str, Any] | None:
    if not (isinstance(statement, Mapping) and "Effect" in statement):
        statement = resolve(statement)  # e.g. an Fn::If around a statement
        if not isinstance(statement, Mapping):
            return None  # AWS::NoValue
    out: dict[str, Any] = {}
    for key, value in statement.items():
        if key in _STATEMENT_LISTS:
            out[key] = _resolve_strings(value, resolve)
        elif key == "Effect":
            out[key] = value if isinstance(value, str) else str(resolve(value))
        else:
            out[key] = value  # Sid, Condition: kept as written
    return out


def _document_statements(document: Any, resolve: Callable[[Any], Any]) -> list[dict[str, Any]]:
    if document is None:
        return []
    if not isinstance(document, Mapping):
        document = resolve(document)
        if not isinstance(document, Mapping):
            raise TypeError(f"a PolicyDocument resolved to {document!r}, not a policy document")
    out = []
    for statement in _as_list(document.get("Statement")):
        normalised = _normalise_statement(statement, resolve)
        if normalised is not None:
            out.append(normalised)
    return out


def _resources(template: Mapping[str, Any]) -> Mapping[str, Any]:
    resources: Mapping[str, Any] = template.get("Resources", {})
    return resources


def _role(template: Mapping[str, Any], role_logical_id: str) -> Mapping[str, Any]:
    role = _resources(template).get(role_logical_id)
    if not isinstance(role, Mapping) or role.get("Type") != "AWS::IAM::Role":
        raise KeyError(f"{role_logical_id} is not an AWS::IAM::Role of the template")
    return role


def _names_role(entry: Any, role_logical_id: str, role_name: Any) -> bool:
    if isinstance(entry, Mapping):
        return entry.get("Ref") == role_logical_id
    return role_name is not None and entry == role_name


def statements_of_role(
    template: Mapping[str, Any], role_logical_id: str, resolve: Callable[[Any], Any]
) -> list[dict[str, Any]]:
    """All identity-policy statements the template attaches to role ``role_logical_id``.

    The role's inline ``Policies[*].PolicyDocument``; every ``AWS::IAM::Policy`` and
    ``AWS::IAM::ManagedPolicy`` whose ``Roles`` names the role (``{"Ref": role}``, or the role's literal
    ``RoleName``); every ``AWS::IAM::ManagedPolicy`` of the template listed by ``{"Ref": ...}`` in the role's
    ``ManagedPolicyArns``. Intrinsics are resolved with ``resolve``; ``Action``/``NotAction``/``Resource``/
    ``NotResource`` become lists of strings, ``Effect`` a string; ``Condition`` is kept as written.
    """
    role = _role(template, role_logical_id)
    props = role.get("Properties", {})
    role_name = props.get("RoleName")
    statements: list[dict[str, Any]] = []
    for policy in _as_list(props.get("Policies")):
        statements += _document_statements(policy.get("PolicyDocument"), resolve)

    attached = {
        entry["Ref"]
        for entry in _as_list(props.get("ManagedPolicyArns"))
        if isinstance(entry, Mapping) and isinstance(entry.get("Ref"), str)
    }
    for logical_id, resource in _resources(template).items():
        if not isinstance(resource, Mapping):
            continue
        kind = resource.get("Type")
        if kind not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        policy_props = resource.get("Properties", {})
        names = any(_names_role(e, role_logical_id, role_name) for e in _as_list(policy_props.get("Roles")))
        if names or (kind == "AWS::IAM::ManagedPolicy" and logical_id in attached):
            statements += _document_statements(policy_props.get("PolicyDocument"), resolve)
    return statements


def managed_policy_arns(template: Mapping[str, Any], role_logical_id: str, resolve: Callable[[Any], Any]) -> list[str]:
    """The role's ``ManagedPolicyArns`` that are not policies of the template (AWS managed policies such as
    ``arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole``), resolved: reported, not evaluated."""
    role = _role(template, role_logical_id)
    own = {
        k
        for k, v in _resources(template).items()
        if isinstance(v, Mapping) and v.get("Type") == "AWS::IAM::ManagedPolicy"
    }
    out: list[str] = []
    for entry in _as_list(role.get("Properties", {}).get("ManagedPolicyArns")):
        if isinstance(entry, Mapping) and entry.get("Ref") in own:
            continue
        out += _resolve_strings(entry, resolve)
    return out


# --------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _matches(pattern: str, value: str, *, ignore_case: bool) -> bool:
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching: ``*`` and ``?`` wildcards, case-insensitive (``s3:get*`` matches ``s3:GetObject``)."""
    return _matches(pattern, action, ignore_case=True)


def resource_matches(pattern: str, resource: str) -> bool:
    """IAM resource matching: ``*`` (any run, across ``:`` and ``/``) and ``?`` (one character), case-sensitive."""
    return _matches(pattern, resource, ignore_case=False)


def _element(statement: Mapping[str, Any], key: str) -> list[str] | None:
    if key not in statement:
        return None
    return [str(v) for v in _as_list(statement[key])]


def _applies(statement: Mapping[str, Any], permission: Permission) -> bool:
    """Whether the statement's action and resource elements cover ``permission`` (conditions: satisfied)."""
    actions, not_actions = _element(statement, "Action"), _element(statement, "NotAction")
    if actions is not None:
        if not any(action_matches(p, permission.action) for p in actions):
            return False
    elif not_actions is not None:
        if any(action_matches(p, permission.action) for p in not_actions):
            return False
    else:
        return False
    resources, not_resources = _element(statement, "Resource"), _element(statement, "NotResource")
    if resources is not None:
        return any(resource_matches(p, permission.resource) for p in resources)
    if not_resources is not None:
        return not any(resource_matches(p, permission.resource) for p in not_resources)
    return False


def is_allowed(statements: Sequence[Mapping[str, Any]], permission: Permission) -> bool:
    """IAM's decision for one identity-policy set: an explicit Deny that applies wins; else an Allow that
    applies allows; else implicit deny. ``Condition`` blocks are treated as satisfied (see the module doc).
    Action/NotAction/Resource/NotResource may be a string or a list."""
    allowed = False
    for statement in statements:
        if not _applies(statement, permission):
            continue
        effect = str(statement.get("Effect", ""))
        if effect == "Deny":
            return False
        if effect == "Allow":
            allowed = True
    return allowed


def _denials(function: str, calls: Iterable[ApiCall], statements: Sequence[Mapping[str, Any]]) -> Iterator[Denial]:
    for call in calls:
        for permission in required_permissions(call):
            if not is_allowed(statements, permission):
                yield Denial(function, permission.action, permission.resource, str(call))


def check_calls(function: str, calls: Iterable[ApiCall], statements: Sequence[Mapping[str, Any]]) -> list[Denial]:
    """The permissions ``function``'s calls need that ``statements`` (its role's) do not grant, each once, in
    call order. Raises :class:`UnknownCall` for a call the rehearsal cannot map."""
    return list(dict.fromkeys(_denials(function, calls, statements)))


def format_denials(denials: Sequence[Denial]) -> str:
    """One line per denial: ``<function>: <action> on <resource> (<call>) is not allowed by its role``."""
    return "\n".join(str(d) for d in denials)
