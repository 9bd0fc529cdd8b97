"""Least-privilege policy statements with explicit actions (no wildcard actions anywhere).

CDK's ``grant*`` helpers add prefix wildcards (``s3:GetObject*``, ``dynamodb:BatchGet*``); these
helpers name each action instead, so a reader (and cdk-nag) sees exactly what a function may do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aws_cdk import Aws
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from quarry.adapters.dynamodb.tables import TableSpec

__all__ = [
    "PROFILE_PREFIXES",
    "TABLE_READ",
    "TABLE_WRITE",
    "bedrock_model_arns",
    "bedrock_statements",
    "bucket_statements",
    "table_arns",
    "table_statement",
]

TABLE_READ = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
)
TABLE_WRITE = (
    *TABLE_READ,
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
)

S3_ACTIONS = {
    "read": ("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging"),
    "write": ("s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload"),
    "delete": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
}


def table_arns(table: dynamodb.ITable, spec: TableSpec) -> list[str]:
    """The table and each of its indexes by name (no ``index/*`` wildcard)."""
    indexes = (*spec.global_indexes, *spec.local_indexes)
    return [table.table_arn, *(f"{table.table_arn}/index/{index.name}" for index in indexes)]


def table_statement(arns: Iterable[str], *, write: bool) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=list(TABLE_WRITE if write else TABLE_READ), resources=list(arns))


def bucket_statements(bucket: s3.IBucket, *modes: str, prefix: str = "*") -> list[iam.PolicyStatement]:
    """Object-level access (``read``, ``write``, ``delete``; ``list`` adds ListBucket on the bucket)."""
    actions: list[str] = []
    for mode in modes:
        if mode != "list":
            actions += S3_ACTIONS[mode]
    out = []
    if actions:
        out.append(iam.PolicyStatement(actions=actions, resources=[bucket.arn_for_objects(prefix)]))
    if "list" in modes:
        out.append(
            iam.PolicyStatement(actions=["s3:ListBucket", "s3:ListBucketVersions"], resources=[bucket.bucket_arn])
        )
    return out


PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "ca.", "jp.", "au.")


def bedrock_model_arns(model_id: str) -> list[str]:
    """ARNs that InvokeModel is checked against for a foundation model or a cross-region inference profile."""
    if model_id.startswith("arn:"):
        return [model_id]
    if model_id.startswith(PROFILE_PREFIXES):
        base = model_id.split(".", 1)[1]
        return [
            f"arn:{Aws.PARTITION}:bedrock:{Aws.REGION}:{Aws.ACCOUNT_ID}:inference-profile/{model_id}",
            # a profile routes to the model in any of its regions
            f"arn:{Aws.PARTITION}:bedrock:*::foundation-model/{base}",
        ]
    return [f"arn:{Aws.PARTITION}:bedrock:{Aws.REGION}::foundation-model/{model_id}"]


def bedrock_statements(model_ids: Sequence[str], *, rerank: bool = False) -> list[iam.PolicyStatement]:
    arns: list[str] = []
    for model_id in model_ids:
        arns += bedrock_model_arns(model_id)
    if not arns:
        return []
    out = [
        iam.PolicyStatement(
            actions=["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
            resources=sorted(set(arns)),
        )
    ]
    if rerank:
        # bedrock:Rerank supports no resource-level permission: the model is authorised by InvokeModel above.
        out.append(iam.PolicyStatement(actions=["bedrock:Rerank"], resources=["*"]))
    return out
