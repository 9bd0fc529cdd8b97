"""The rehearsal's IAM check: call -> permission mappings, IAM evaluation, statements of a template's role."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.rehearsal.iam_check import (
    SECRET_NAME_SUFFIX,
    ApiCall,
    Denial,
    Permission,
    UnknownCall,
    check_calls,
    format_denials,
    is_allowed,
    managed_policy_arns,
    required_permissions,
    statements_of_role,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table"


def call(service: str, operation: str, endpoint: str = "", region: str = REGION, **params: Any) -> ApiCall:
    return ApiCall(service, operation, params, region, ACCOUNT, endpoint)


def perms(*pairs: tuple[str, str]) -> list[Permission]:
    return [Permission(a, r) for a, r in pairs]


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


# ---------------------------------------------------------------------------------------------- DynamoDB


@pytest.mark.parametrize(
    "op", ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "DescribeTable", "ConditionCheckItem"]
)
def test_dynamodb_single_table_operations(op: str) -> None:
    assert required_permissions(call("dynamodb", op, TableName="docs", Key={})) == perms(
        (f"dynamodb:{op}", f"{TABLE}/docs")
    )


def test_dynamodb_query_and_scan_on_an_index_name_the_index() -> None:
    assert required_permissions(call("dynamodb", "Query", TableName="docs", IndexName="by_owner")) == perms(
        ("dynamodb:Query", f"{TABLE}/docs/index/by_owner")
    )
    assert required_permissions(call("dynamodb", "Scan", TableName="docs", IndexName="g")) == perms(
        ("dynamodb:Scan", f"{TABLE}/docs/index/g")
    )
    assert required_permissions(call("dynamodb", "Query", TableName="docs")) == perms(
        ("dynamodb:Query", f"{TABLE}/docs")
    )


def test_dynamodb_table_name_may_be_an_arn() -> None:
    arn = "arn:aws:dynamodb:eu-west-1:999999999999:table/other"
    assert required_permissions(call("dynamodb", "GetItem", TableName=arn)) == perms(("dynamodb:GetItem", arn))


def test_dynamodb_batch_operations_need_their_action_on_each_table_once() -> None:
    write = call(
        "dynamodb",
        "BatchWriteItem",
        RequestItems={"a": [{"PutRequest": {}}, {"DeleteRequest": {}}], "b": [{"PutRequest": {}}]},
    )
    assert required_permissions(write) == perms(
        ("dynamodb:BatchWriteItem", f"{TABLE}/a"), ("dynamodb:BatchWriteItem", f"{TABLE}/b")
    )
    read = call("dynamodb", "BatchGetItem", RequestItems={"a": {"Keys": []}})
    assert required_permissions(read) == perms(("dynamodb:BatchGetItem", f"{TABLE}/a"))


def test_dynamodb_transact_write_needs_each_items_own_action_on_its_table() -> None:
    items = [
        {"Put": {"TableName": "a", "Item": {}}},
        {"Update": {"TableName": "b", "Key": {}}},
        {"Delete": {"TableName": "a", "Key": {}}},
        {"ConditionCheck": {"TableName": "c", "Key": {}, "ConditionExpression": "x"}},
        {"Put": {"TableName": "a", "Item": {}}},
    ]
    assert required_permissions(call("dynamodb", "TransactWriteItems", TransactItems=items)) == perms(
        ("dynamodb:PutItem", f"{TABLE}/a"),
        ("dynamodb:UpdateItem", f"{TABLE}/b"),
        ("dynamodb:DeleteItem", f"{TABLE}/a"),
        ("dynamodb:ConditionCheckItem", f"{TABLE}/c"),
    )
    get = call("dynamodb", "TransactGetItems", TransactItems=[{"Get": {"TableName": "a", "Key": {}}}])
    assert required_permissions(get) == perms(("dynamodb:GetItem", f"{TABLE}/a"))


# ---------------------------------------------------------------------------------------------------- S3


def test_s3_object_reads_and_writes() -> None:
    assert required_permissions(call("s3", "GetObject", Bucket="b", Key="u/1/doc.pdf")) == perms(
        ("s3:GetObject", "arn:aws:s3:::b/u/1/doc.pdf")
    )
    assert required_permissions(call("s3", "GetObject", Bucket="b", Key="k", VersionId="v1")) == perms(
        ("s3:GetObjectVersion", "arn:aws:s3:::b/k")
    )
    assert required_permissions(call("s3", "HeadObject", Bucket="b", Key="k")) == perms(
        ("s3:GetObject", "arn:aws:s3:::b/k")
    )
    assert required_permissions(call("s3", "PutObject", Bucket="b", Key="k", Body=b"")) == perms(
        ("s3:PutObject", "arn:aws:s3:::b/k")
    )
    assert required_permissions(call("s3", "DeleteObject", Bucket="b", Key="k")) == perms(
        ("s3:DeleteObject", "arn:aws:s3:::b/k")
    )


def test_s3_put_with_tags_also_needs_put_object_tagging() -> None:
    assert required_permissions(call("s3", "PutObject", Bucket="b", Key="k", Tagging="a=1")) == perms(
        ("s3:PutObject", "arn:aws:s3:::b/k"), ("s3:PutObjectTagging", "arn:aws:s3:::b/k")
    )


def test_s3_listing_is_list_bucket_on_the_bucket() -> None:
    assert required_permissions(call("s3", "ListObjectsV2", Bucket="b", Prefix="u/")) == perms(
        ("s3:ListBucket", "arn:aws:s3:::b")
    )


def test_s3_delete_objects_is_delete_object_per_key() -> None:
    batch = call("s3", "DeleteObjects", Bucket="b", Delete={"Objects": [{"Key": "x"}, {"Key": "y", "VersionId": "1"}]})
    assert required_permissions(batch) == perms(
        ("s3:DeleteObject", "arn:aws:s3:::b/x"), ("s3:DeleteObjectVersion", "arn:aws:s3:::b/y")
    )


@pytest.mark.parametrize(
    ("source", "action"),
    [
        ("src/a%20b/c.txt", "s3:GetObject"),
        ("/src/a b/c.txt?versionId=v2", "s3:GetObjectVersion"),
        ({"Bucket": "src", "Key": "a b/c.txt"}, "s3:GetObject"),
        ({"Bucket": "src", "Key": "a b/c.txt", "VersionId": "v"}, "s3:GetObjectVersion"),
    ],
)
def test_s3_copy_reads_the_source_and_writes_the_destination(source: Any, action: str) -> None:
    copy = call("s3", "CopyObject", Bucket="dst", Key="k", CopySource=source)
    assert required_permissions(copy) == perms(
        (action, "arn:aws:s3:::src/a b/c.txt"), ("s3:PutObject", "arn:aws:s3:::dst/k")
    )


def test_arns_carry_the_regions_partition() -> None:
    assert required_permissions(call("s3", "GetObject", region="cn-north-1", Bucket="b", Key="k")) == perms(
        ("s3:GetObject", "arn:aws-cn:s3:::b/k")
    )
    assert required_permissions(call("dynamodb", "GetItem", region="us-gov-west-1", TableName="t")) == perms(
        ("dynamodb:GetItem", f"arn:aws-us-gov:dynamodb:us-gov-west-1:{ACCOUNT}:table/t")
    )


# ---------------------------------------------------------------------------------- SNS, SQS, Step Functions


def test_sns_publish_on_the_topic() -> None:
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:events"
    assert required_permissions(call("sns", "Publish", TopicArn=topic, Message="m")) == perms(("sns:Publish", topic))


@pytest.mark.parametrize(
    ("op", "action"),
    [
        ("SendMessage", "sqs:SendMessage"),
        ("SendMessageBatch", "sqs:SendMessage"),
        ("ReceiveMessage", "sqs:ReceiveMessage"),
        ("DeleteMessage", "sqs:DeleteMessage"),
        ("DeleteMessageBatch", "sqs:DeleteMessage"),
        ("ChangeMessageVisibility", "sqs:ChangeMessageVisibility"),
        ("GetQueueAttributes", "sqs:GetQueueAttributes"),
    ],
)
def test_sqs_queue_url_becomes_the_queue_arn(op: str, action: str) -> None:
    url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/jobs-dlq"
    assert required_permissions(call("sqs", op, QueueUrl=url)) == perms(
        (action, f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs-dlq")
    )


def test_stepfunctions_is_states_in_iam() -> None:
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:ingest"
    execution = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:ingest:run-1"
    assert required_permissions(call("stepfunctions", "StartExecution", stateMachineArn=machine, input="{}")) == perms(
        ("states:StartExecution", machine)
    )
    assert required_permissions(call("stepfunctions", "DescribeExecution", executionArn=execution)) == perms(
        ("states:DescribeExecution", execution)
    )
    assert required_permissions(call("stepfunctions", "StopExecution", executionArn=execution)) == perms(
        ("states:StopExecution", execution)
    )


# ------------------------------------------------------------------------------- API Gateway @connections

WS_ENDPOINT = f"https://abc123.execute-api.{REGION}.amazonaws.com/prod"


@pytest.mark.parametrize(
    ("op", "method"), [("PostToConnection", "POST"), ("DeleteConnection", "DELETE"), ("GetConnection", "GET")]
)
def test_connections_are_manage_connections_on_the_rest_style_arn(op: str, method: str) -> None:
    found = required_permissions(call("apigatewaymanagementapi", op, WS_ENDPOINT, ConnectionId="Xy1=", Data=b"{}"))
    assert found == perms(
        (
            "execute-api:ManageConnections",
            f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/prod/{method}/@connections/Xy1=",
        )
    )
    # the grant stacks/functions.py writes covers every method on that stage
    grant = allow(
        "execute-api:ManageConnections", f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/prod/*/@connections/*"
    )
    assert is_allowed([grant], found[0])
    other_stage = allow(
        "execute-api:ManageConnections", f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/dev/*/@connections/*"
    )
    assert not is_allowed([other_stage], found[0])


@pytest.mark.parametrize(
    "endpoint", ["https://abc123.execute-api.us-east-1.amazonaws.com", "https://ws.example.com/prod"]
)
def test_connections_endpoint_without_api_id_or_stage_is_an_unknown_call(endpoint: str) -> None:
    with pytest.raises(UnknownCall, match="PostToConnection"):
        required_permissions(call("apigatewaymanagementapi", "PostToConnection", endpoint, ConnectionId="c"))


# ------------------------------------------------------------------------------------ Bedrock, SageMaker


def test_bedrock_foundation_model_has_no_account() -> None:
    converse = call("bedrock-runtime", "Converse", modelId="anthropic.claude-3-haiku-20240307-v1:0", messages=[])
    assert required_permissions(converse) == perms(
        ("bedrock:InvokeModel", f"arn:aws:bedrock:{REGION}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0")
    )
    stream = call("bedrock-runtime", "ConverseStream", modelId="amazon.nova-lite-v1:0", messages=[])
    assert required_permissions(stream) == perms(
        ("bedrock:InvokeModelWithResponseStream", f"arn:aws:bedrock:{REGION}::foundation-model/amazon.nova-lite-v1:0")
    )
    invoke = call("bedrock-runtime", "InvokeModelWithResponseStream", modelId="m", body=b"")
    assert required_permissions(invoke)[0].action == "bedrock:InvokeModelWithResponseStream"


def test_bedrock_inference_profile_needs_the_profile_and_its_model() -> None:
    found = required_permissions(call("bedrock-runtime", "Converse", modelId="us.amazon.nova-pro-v1:0"))
    assert found == perms(
        ("bedrock:InvokeModel", f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/us.amazon.nova-pro-v1:0"),
        ("bedrock:InvokeModel", f"arn:aws:bedrock:{REGION}::foundation-model/amazon.nova-pro-v1:0"),
    )
    # the grant stacks/iam.py writes for a profile covers both
    grant = allow(
        ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
        [
            f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/us.amazon.nova-pro-v1:0",
            "arn:aws:bedrock:*::foundation-model/amazon.nova-pro-v1:0",
        ],
    )
    assert all(is_allowed([grant], p) for p in found)
    global_profile = required_permissions(call("bedrock-runtime", "Converse", modelId="global.m-v1:0"))
    assert global_profile[1] == Permission("bedrock:InvokeModel", "arn:aws:bedrock:::foundation-model/m-v1:0")
    assert is_allowed([grant | {"Resource": "arn:aws:bedrock:*::foundation-model/m-v1:0"}], global_profile[1])


def test_bedrock_model_arn_is_used_as_is() -> None:
    arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:application-inference-profile/abc"
    assert required_permissions(call("bedrock-runtime", "InvokeModel", modelId=arn, body=b"")) == perms(
        ("bedrock:InvokeModel", arn)
    )


def test_bedrock_rerank_needs_rerank_and_invoke_on_the_reranker() -> None:
    model = f"arn:aws:bedrock:{REGION}::foundation-model/amazon.rerank-v1:0"
    config = {
        "type": "BEDROCK_RERANKING_MODEL",
        "bedrockRerankingConfiguration": {"modelConfiguration": {"modelArn": model}},
    }
    rerank = call("bedrock-agent-runtime", "Rerank", queries=[], sources=[], rerankingConfiguration=config)
    assert required_permissions(rerank) == perms(("bedrock:Rerank", "*"), ("bedrock:InvokeModel", model))


def test_sagemaker_endpoint_name_is_lowercased() -> None:
    invoke = call("sagemaker-runtime", "InvokeEndpoint", EndpointName="Quarry-Embedder", Body=b"")
    assert required_permissions(invoke) == perms(
        ("sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/quarry-embedder")
    )
    stream = call("sagemaker-runtime", "InvokeEndpointWithResponseStream", EndpointName="e", Body=b"")
    assert required_permissions(stream)[0].action == "sagemaker:InvokeEndpointWithResponseStream"


# ------------------------------------------------------------------------------- RDS Data, secrets, KMS

CLUSTER = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:quarry"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:quarry-db-AbCdEf"


@pytest.mark.parametrize(
    "op", ["ExecuteStatement", "BatchExecuteStatement", "BeginTransaction", "CommitTransaction", "RollbackTransaction"]
)
def test_rds_data_needs_the_cluster_and_reads_the_secret_as_the_caller(op: str) -> None:
    found = required_permissions(call("rds-data", op, resourceArn=CLUSTER, secretArn=SECRET, sql="select 1"))
    assert found == perms((f"rds-data:{op}", CLUSTER), ("secretsmanager:GetSecretValue", SECRET))


def test_secret_by_name_stands_for_the_suffixed_arn() -> None:
    assert required_permissions(call("secretsmanager", "GetSecretValue", SecretId=SECRET)) == perms(
        ("secretsmanager:GetSecretValue", SECRET)
    )
    by_name = required_permissions(call("secretsmanager", "GetSecretValue", SecretId="quarry-db"))
    assert by_name == perms(
        (
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:quarry-db{SECRET_NAME_SUFFIX}",
        )
    )
    grant = allow("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:quarry-db-??????")
    assert is_allowed([grant], by_name[0])
    assert is_allowed([grant], Permission("secretsmanager:GetSecretValue", SECRET))


def test_kms_key_id_becomes_the_key_arn_and_aliases_are_refused() -> None:
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    assert required_permissions(call("kms", "Decrypt", KeyId=key_id, CiphertextBlob=b"x")) == perms(
        ("kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}")
    )
    key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"
    assert required_permissions(call("kms", "GenerateDataKey", KeyId=key_arn)) == perms(
        ("kms:GenerateDataKey", key_arn)
    )
    with pytest.raises(UnknownCall, match="alias"):
        required_permissions(call("kms", "GenerateDataKey", KeyId="alias/quarry"))
    with pytest.raises(UnknownCall, match="KeyId"):
        required_permissions(call("kms", "Decrypt", CiphertextBlob=b"x"))


def test_cognito_token_operations_need_no_iam_and_admin_ones_the_pool() -> None:
    assert required_permissions(call("cognito-idp", "InitiateAuth", ClientId="c", AuthFlow="x")) == []
    assert required_permissions(call("cognito-idp", "AdminGetUser", UserPoolId="us-east-1_P", Username="u")) == perms(
        ("cognito-idp:AdminGetUser", f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/us-east-1_P")
    )


@pytest.mark.parametrize(
    ("service", "op"),
    [
        ("lambda", "CreateFunction"),
        ("dynamodb", "CreateTable"),
        ("s3", "PutBucketPolicy"),
        ("states", "StartExecution"),
        ("scheduler", "CreateScheduleGroup"),
    ],
)
def test_unknown_calls_fail_clearly(service: str, op: str) -> None:
    with pytest.raises(UnknownCall, match=rf"{service}\.{op}: .*extend tests/rehearsal/iam_check\.py") as info:
        required_permissions(call(service, op, Bucket="b", TableName="t"))
    assert info.value.call.operation == op


def test_scheduler_schedules_are_in_their_group_and_pass_their_role() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/scheduler"
    schedule = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/summaries/job-1"
    target = {"Arn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:s", "RoleArn": role, "Input": "{}"}
    for op in ("CreateSchedule", "UpdateSchedule"):
        got = required_permissions(call("scheduler", op, Name="job-1", GroupName="summaries", Target=target))
        assert got == perms((f"scheduler:{op}", schedule), ("iam:PassRole", role))
    for op in ("GetSchedule", "DeleteSchedule"):
        got = required_permissions(call("scheduler", op, Name="job-1", GroupName="summaries"))
        assert got == perms((f"scheduler:{op}", schedule))
    assert required_permissions(call("scheduler", "GetSchedule", Name="job-1")) == perms(
        ("scheduler:GetSchedule", f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/job-1")
    )


def test_lambda_invoke_is_invoke_function_on_the_function_and_its_qualifier() -> None:
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:quarry-summary-worker"
    assert required_permissions(call("lambda", "Invoke", FunctionName=fn)) == perms(("lambda:InvokeFunction", fn))
    assert required_permissions(call("lambda", "Invoke", FunctionName="quarry-summary-worker", Qualifier="live")) == (
        perms(("lambda:InvokeFunction", f"{fn}:live"))
    )
    assert required_permissions(call("lambda", "Invoke", FunctionName=f"{fn}:3")) == perms(
        ("lambda:InvokeFunction", f"{fn}:3")
    )


def test_a_missing_parameter_is_an_unknown_call_not_a_key_error() -> None:
    with pytest.raises(UnknownCall, match="TableName"):
        required_permissions(call("dynamodb", "GetItem", Key={}))


# --------------------------------------------------------------------------------------------- evaluation

OBJ = Permission("s3:GetObject", "arn:aws:s3:::bucket/u/1/doc.pdf")


def test_action_wildcards_and_case_insensitive_actions() -> None:
    assert is_allowed([allow("s3:Get*", "*")], OBJ)
    assert is_allowed([allow("S3:getobject", "*")], OBJ)
    assert is_allowed([allow("s3:*", "*")], OBJ)
    assert is_allowed([allow("*", "*")], OBJ)
    assert is_allowed([allow("s3:GetObjec?", "*")], OBJ)
    assert not is_allowed([allow("s3:Put*", "*")], OBJ)
    assert not is_allowed([allow("s3:Get", "*")], OBJ)  # no implicit prefix match
    assert not is_allowed([allow("s3:GetObject?", "*")], OBJ)  # ? is exactly one character


def test_resource_wildcards_cross_slashes_and_colons_and_are_case_sensitive() -> None:
    assert is_allowed([allow("s3:GetObject", "arn:aws:s3:::bucket/*")], OBJ)
    assert not is_allowed(
        [allow("s3:GetObject", "arn:aws:s3:::bucket/*")], Permission("s3:GetObject", "arn:aws:s3:::bucket")
    )
    assert not is_allowed([allow("s3:GetObject", "arn:aws:s3:::Bucket/*")], OBJ)
    assert not is_allowed([allow("s3:GetObject", "arn:aws:s3:::bucket/U/*")], OBJ)
    assert is_allowed([allow("s3:GetObject", "arn:aws:s3:::buck?t/u/?/doc.pdf")], OBJ)
    assert not is_allowed([allow("s3:GetObject", "arn:aws:s3:::bucket/u/??/doc.pdf")], OBJ)
    index = Permission("dynamodb:Query", f"{TABLE}/docs/index/by_owner")
    assert is_allowed([allow("dynamodb:Query", "arn:aws:dynamodb:*")], index)
    assert is_allowed([allow("dynamodb:Query", f"{TABLE}/docs/index/*")], index)
    assert not is_allowed([allow("dynamodb:Query", f"{TABLE}/docs")], index)
    # a literal dot is not a regex wildcard
    assert not is_allowed(
        [allow("s3:GetObject", "arn:aws:s3:::bucket/u/1/doc.pdf")],
        Permission("s3:GetObject", "arn:aws:s3:::bucket/u/1/docxpdf"),
    )


def test_explicit_deny_wins_in_any_order() -> None:
    statements = [allow("s3:*", "*"), deny("s3:GetObject", "arn:aws:s3:::bucket/u/*")]
    assert not is_allowed(statements, OBJ)
    assert not is_allowed(list(reversed(statements)), OBJ)
    assert is_allowed(statements, Permission("s3:PutObject", OBJ.resource))
    assert is_allowed(statements, Permission("s3:GetObject", "arn:aws:s3:::bucket/v/1"))


def test_not_action_and_not_resource() -> None:
    everything_but_delete = {"Effect": "Allow", "NotAction": ["s3:Delete*"], "Resource": "*"}
    assert is_allowed([everything_but_delete], OBJ)
    assert not is_allowed([everything_but_delete], Permission("s3:DeleteObject", OBJ.resource))
    outside_private = {"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::bucket/private/*"}
    assert is_allowed([outside_private], OBJ)
    assert not is_allowed([outside_private], Permission("s3:GetObject", "arn:aws:s3:::bucket/private/x"))
    deny_all_but_dynamodb = {"Effect": "Deny", "NotAction": "dynamodb:*", "Resource": "*"}
    assert not is_allowed([allow("*", "*"), deny_all_but_dynamodb], OBJ)
    assert is_allowed([allow("*", "*"), deny_all_but_dynamodb], Permission("dynamodb:GetItem", f"{TABLE}/t"))


def test_string_or_list_elements() -> None:
    as_strings = allow("s3:GetObject", "arn:aws:s3:::bucket/*")
    as_lists = allow(["s3:PutObject", "s3:GetObject"], ["arn:aws:s3:::other/*", "arn:aws:s3:::bucket/*"])
    assert is_allowed([as_strings], OBJ)
    assert is_allowed([as_lists], OBJ)
    assert not is_allowed([allow(["s3:PutObject"], ["arn:aws:s3:::bucket/*"])], OBJ)


def test_implicit_deny_and_conditions_treated_as_satisfied() -> None:
    assert not is_allowed([], OBJ)
    assert not is_allowed([{"Effect": "Allow", "Action": "s3:GetObject"}], OBJ)  # no Resource: applies to nothing
    conditional = allow("s3:GetObject", "*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    assert is_allowed([conditional], OBJ)
    assert not is_allowed(
        [allow("*", "*"), deny("s3:*", "*", Condition={"Bool": {"aws:SecureTransport": "false"}})], OBJ
    )


# ------------------------------------------------------------------------------------- template statements

NAMES = {
    "Table": "docs",
    "Bucket": "uploads",
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
}


def resolve(value: Any) -> Any:
    """A stand-in for the rehearsal's resolver: Ref, Fn::GetAtt (Arn), Fn::Join."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [resolve(v) for v in value]
    assert isinstance(value, Mapping) and len(value) == 1, value
    (fn, arg), *_ = value.items()
    if fn == "Ref":
        return NAMES[arg]
    if fn == "Fn::GetAtt":
        logical_id, attribute = arg
        assert attribute == "Arn"
        return {"Table": f"{TABLE}/docs", "Bucket": "arn:aws:s3:::uploads"}[logical_id]
    if fn == "Fn::Join":
        separator, parts = arg
        return separator.join(str(resolve(p)) for p in parts)
    raise AssertionError(f"unexpected intrinsic {fn}")


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "FnRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]},
                "ManagedPolicyArns": [
                    {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                ":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                            ],
                        ]
                    },
                    {"Ref": "SharedManaged"},
                ],
                "Policies": [
                    {
                        "PolicyName": "inline",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": {
                                "Effect": "Allow",
                                "Action": "dynamodb:GetItem",
                                "Resource": {"Fn::GetAtt": ["Table", "Arn"]},
                            },
                        },
                    }
                ],
            },
        },
        "OtherRole": {"Type": "AWS::IAM::Role", "Properties": {}},
        "FnRoleDefaultPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "FnRoleDefaultPolicy",
                "Roles": [{"Ref": "FnRole"}],
                "PolicyDocument": {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject"],
                            "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "/*"]]},
                        },
                        {
                            "Effect": "Allow",
                            "Action": "dynamodb:Query",
                            "Resource": [
                                {"Fn::GetAtt": ["Table", "Arn"]},
                                {"Fn::Join": ["", [{"Fn::GetAtt": ["Table", "Arn"]}, "/index/*"]]},
                            ],
                            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
                        },
                    ]
                },
            },
        },
        "OtherRolePolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "OtherRolePolicy",
                "Roles": [{"Ref": "OtherRole"}],
                "PolicyDocument": {
                    "Statement": [{"Effect": "Allow", "Action": "dynamodb:DeleteItem", "Resource": "*"}]
                },
            },
        },
        "SharedManaged": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "PolicyDocument": {
                    "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:aws:sns:*"}]
                }
            },
        },
        "DenyManaged": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Roles": [{"Ref": "FnRole"}, {"Ref": "OtherRole"}],
                "PolicyDocument": {
                    "Statement": [
                        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::uploads/locked/*"}
                    ]
                },
            },
        },
    }
}


def test_statements_of_role_collects_inline_attached_and_managed_policies() -> None:
    statements = statements_of_role(TEMPLATE, "FnRole", resolve)
    assert statements == [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": [f"{TABLE}/docs"]},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": ["arn:aws:s3:::uploads/*"]},
        {
            "Effect": "Allow",
            "Action": ["dynamodb:Query"],
            "Resource": [f"{TABLE}/docs", f"{TABLE}/docs/index/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        },
        {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": ["arn:aws:sns:*"]},
        {"Effect": "Deny", "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::uploads/locked/*"]},
    ]


def test_a_policy_of_another_role_does_not_count() -> None:
    statements = statements_of_role(TEMPLATE, "FnRole", resolve)
    assert not is_allowed(statements, Permission("dynamodb:DeleteItem", f"{TABLE}/docs"))
    other = statements_of_role(TEMPLATE, "OtherRole", resolve)
    assert is_allowed(other, Permission("dynamodb:DeleteItem", f"{TABLE}/docs"))
    assert not is_allowed(other, Permission("dynamodb:GetItem", f"{TABLE}/docs"))


def test_managed_policy_arns_reports_only_aws_managed_policies() -> None:
    assert managed_policy_arns(TEMPLATE, "FnRole", resolve) == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ]
    assert managed_policy_arns(TEMPLATE, "OtherRole", resolve) == []


def test_statements_of_a_logical_id_that_is_no_role() -> None:
    with pytest.raises(KeyError, match="Table"):
        statements_of_role(TEMPLATE, "Table", resolve)


def test_check_calls_names_function_action_resource_and_call() -> None:
    statements = statements_of_role(TEMPLATE, "FnRole", resolve)
    calls = [
        call("dynamodb", "GetItem", TableName="docs", Key={}),
        call("dynamodb", "Query", TableName="docs", IndexName="by_owner"),
        call("s3", "PutObject", Bucket="uploads", Key="u/1"),
        call("s3", "PutObject", Bucket="uploads", Key="locked/1"),
        call("s3", "PutObject", Bucket="uploads", Key="locked/1"),
        call("dynamodb", "DeleteItem", TableName="docs", Key={}),
        call("sns", "Publish", TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:t", Message="m"),
    ]
    denials = check_calls("quarry-api", calls, statements)
    assert denials == [
        Denial("quarry-api", "s3:PutObject", "arn:aws:s3:::uploads/locked/1", "s3.PutObject"),
        Denial("quarry-api", "dynamodb:DeleteItem", f"{TABLE}/docs", "dynamodb.DeleteItem"),
    ]
    assert format_denials(denials) == (
        "quarry-api: s3:PutObject on arn:aws:s3:::uploads/locked/1 (s3.PutObject) is not allowed by its role\n"
        f"quarry-api: dynamodb:DeleteItem on {TABLE}/docs (dynamodb.DeleteItem) is not allowed by its role"
    )
    assert check_calls("quarry-api", calls[:3], statements) == []
    assert format_denials([]) == ""


def test_check_calls_lets_unknown_calls_raise() -> None:
    with pytest.raises(UnknownCall):
        check_calls("f", [call("lambda", "CreateFunction", FunctionName="x")], [allow("*", "*")])
