"""Buckets (uploads, processing, access logs) and the DynamoDB tables, plus the stack's KMS key.

The tables are built from ``quarry.adapters.dynamodb.tables.TABLES``, the same data the adapter and
the moto tests create tables from, so the keys and indexes cannot drift apart.

Data resources are kept when the stack is deleted or a resource replaced (``removal = "retain"``) but not
when the stack's first create fails (:func:`data_removal`), and none has a name that a leftover copy
could hold: CloudFormation names the tables (the runtime gets the names as ``QUARRY_*_TABLE``) and the
uploads bucket's name carries the stack's unique id. A failed deploy therefore never leaves behind a
resource that makes the next one fail with "already exists".
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Fn, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from quarry.adapters.dynamodb.tables import TABLES, KeyAttr, TableSpec
from stacks.config import DeployConfig
from stacks.iam import table_arns

__all__ = ["Storage", "data_removal", "stack_suffix"]

_ATTR_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
_PROJECTIONS = {"ALL": dynamodb.ProjectionType.ALL, "KEYS_ONLY": dynamodb.ProjectionType.KEYS_ONLY}


def data_removal(config: DeployConfig) -> RemovalPolicy:
    """What happens to data (buckets, tables, user pool, key) when CloudFormation stops managing it.

    ``retain``: kept on stack deletion and on replacement, but deleted when the stack's *first* create
    rolls back (``DeletionPolicy: RetainExceptOnCreate``), so a failed first deploy leaves nothing behind.
    Such resources carry no deletion protection either: it would stop that rollback from deleting them.
    """
    return RemovalPolicy.DESTROY if config.is_destroy else RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE


def stack_suffix() -> str:
    """Eight hex digits of the stack's id (a UUID minted when the stack is created): unique per stack instance."""
    return Fn.select(0, Fn.split("-", Fn.select(2, Fn.split("/", Aws.STACK_ID))))


def _attr(key: KeyAttr) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_ATTR_TYPES[key.type])


def _optional_attr(key: KeyAttr | None) -> dynamodb.Attribute | None:
    return None if key is None else _attr(key)


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        removal = data_removal(config)

        self.key = kms.Key(
            self,
            "Key",
            description=f"{config.prefix}: SNS topics",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy "*" means this key
            )
        )

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            # CloudFront standard logs are delivered with ACLs.
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=removal,
            auto_delete_objects=config.is_destroy,
        )
        # Named from pseudo parameters (not a Ref) so the UI's CSP can name it without a dependency cycle
        # (bucket CORS -> distribution -> headers policy -> bucket). The stack id's suffix makes the name
        # new for every stack instance: a bucket kept from a deleted stack never blocks a new one.
        self.uploads_name = f"{config.prefix}-uploads-{Aws.ACCOUNT_ID}-{stack_suffix()}"
        self.uploads = self._bucket(
            "Uploads",
            removal,
            bucket_name=self.uploads_name,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
        )
        self.processing = self._bucket(
            "Processing",
            removal,
            versioned=False,
            lifecycle_rules=[s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(1))],
        )
        self.tables: dict[str, dynamodb.Table] = {key: self._table(spec, removal) for key, spec in TABLES.items()}

    def _bucket(
        self,
        construct_id: str,
        removal: RemovalPolicy,
        *,
        versioned: bool,
        lifecycle_rules: list[s3.LifecycleRule],
        bucket_name: str | None = None,
    ) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=versioned,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"s3/{construct_id.lower()}/",
            lifecycle_rules=lifecycle_rules,
            removal_policy=removal,
            auto_delete_objects=self.config.is_destroy,
        )

    def _table(self, spec: TableSpec, removal: RemovalPolicy) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            f"Table{spec.suffix.title().replace('-', '')}",
            partition_key=_attr(spec.partition_key),
            sort_key=_optional_attr(spec.sort_key),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=spec.ttl_attribute,
            removal_policy=removal,  # no fixed name and no deletion protection: see data_removal
        )
        for index in spec.global_indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attr(index.partition_key or spec.partition_key),
                sort_key=_optional_attr(index.sort_key),
                projection_type=_PROJECTIONS[index.projection],
            )
        for index in spec.local_indexes:
            if index.sort_key is None:
                raise ValueError(f"local index {index.name} of table {spec.suffix} needs a sort key")
            table.add_local_secondary_index(
                index_name=index.name,
                sort_key=_attr(index.sort_key),
                projection_type=_PROJECTIONS[index.projection],
            )
        return table

    def table_arns(self, *keys: str) -> list[str]:
        """ARNs of the named tables (keys of ``TABLES``) and of their indexes."""
        out: list[str] = []
        for key in keys:
            out += table_arns(self.tables[key], TABLES[key])
        return out

    def add_cors_origins(self, origins: list[str]) -> None:
        """Let the browser POST uploads (presigned POST) from the UI's origins."""
        self.uploads.add_cors_rule(
            allowed_methods=[s3.HttpMethods.POST],
            allowed_origins=origins,
            allowed_headers=["*"],
            exposed_headers=["ETag", "Location"],
            max_age=3000,
        )
