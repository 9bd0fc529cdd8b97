"""Vector stores (at least one on): Aurora PostgreSQL Serverless v2 with pgvector, OpenSearch Serverless.

Aurora scales to 0 ACUs and pauses after ``aurora.auto_pause_minutes`` without connections, so an idle
deployment pays only for storage. Credentials live in a generated Secrets Manager secret; the
``workspace_setup`` Lambda creates the pgvector extension and schema as a custom resource on deploy.

OpenSearch Serverless is opt-in (it bills at least one OCU around the clock): a VECTORSEARCH collection
with an encryption policy (AWS-owned key), a network policy (public endpoint, IAM-authenticated) and a
data-access policy naming exactly the roles that read or write vectors.
"""

from __future__ import annotations

import json

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchserverless as aoss
from aws_cdk import aws_rds as rds
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.config import DeployConfig
from stacks.functions import retention
from stacks.network import Network
from stacks.runtime_env import PG_PORT

__all__ = ["SCHEMA_VERSION", "AuroraStore", "OpenSearchStore", "SchemaSetup", "VectorStores"]

_INDEX_READ = ["aoss:DescribeIndex", "aoss:ReadDocument"]
_INDEX_WRITE = [*_INDEX_READ, "aoss:CreateIndex", "aoss:UpdateIndex", "aoss:DeleteIndex", "aoss:WriteDocument"]


class AuroraStore(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, network: Network) -> None:
        super().__init__(scope, construct_id)
        aurora = config.aurora
        major = aurora.engine_version.split(".")[0]
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(
                version=rds.AuroraPostgresEngineVersion.of(
                    aurora.engine_version, major, serverless_v2_auto_pause_supported=True
                )
            ),
            writer=rds.ClusterInstance.serverless_v2("writer", auto_minor_version_upgrade=True),
            serverless_v2_min_capacity=aurora.min_capacity,
            serverless_v2_max_capacity=aurora.max_capacity,
            serverless_v2_auto_pause_duration=Duration.minutes(aurora.auto_pause_minutes)
            if aurora.min_capacity == 0
            else None,
            vpc=network.vpc,
            vpc_subnets=network.data_subnets,
            security_groups=[network.db_sg],
            port=PG_PORT,
            default_database_name=aurora.database_name,
            credentials=rds.Credentials.from_generated_secret("quarry_admin"),
            storage_encrypted=True,
            iam_authentication=True,
            enable_data_api=aurora.access == "data_api",
            deletion_protection=not config.is_destroy,
            backup=rds.BackupProps(retention=Duration.days(aurora.backup_days)),
            cloudwatch_logs_exports=["postgresql"],
            cloudwatch_logs_retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY if config.is_destroy else RemovalPolicy.SNAPSHOT,
        )
        assert self.cluster.secret is not None
        self.secret = self.cluster.secret
        self.config = config

    def allow_connections_from(self, *peers: ec2.ISecurityGroup) -> None:
        for peer in peers:
            self.cluster.connections.allow_from(peer, ec2.Port.tcp(PG_PORT), "Postgres from Quarry compute")

    def statements(self) -> list[iam.PolicyStatement]:
        """What a consumer needs: the credentials secret, plus the Data API in that mode."""
        out = [
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[self.secret.secret_arn],
            )
        ]
        if self.config.aurora.access == "data_api":
            out.append(
                iam.PolicyStatement(
                    actions=[
                        "rds-data:ExecuteStatement",
                        "rds-data:BatchExecuteStatement",
                        "rds-data:BeginTransaction",
                        "rds-data:CommitTransaction",
                        "rds-data:RollbackTransaction",
                    ],
                    resources=[self.cluster.cluster_arn],
                )
            )
        return out


class OpenSearchStore(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        name = config.opensearch_collection
        self._readers: list[iam.IRole] = []
        self._writers: list[iam.IRole] = []
        resource = [f"collection/{name}"]
        encryption = aoss.CfnSecurityPolicy(
            self,
            "Encryption",
            name=f"{name}-enc"[:32],
            type="encryption",
            policy=json.dumps({"Rules": [{"ResourceType": "collection", "Resource": resource}], "AWSOwnedKey": True}),
        )
        network = aoss.CfnSecurityPolicy(
            self,
            "NetworkPolicy",
            name=f"{name}-net"[:32],
            type="network",
            # Public endpoint, but every request is SigV4-signed and checked against the data-access policy.
            policy=json.dumps(
                [{"Rules": [{"ResourceType": "collection", "Resource": resource}], "AllowFromPublic": True}]
            ),
        )
        self.collection = aoss.CfnCollection(
            self,
            "Collection",
            name=name,
            type="VECTORSEARCH",
            standby_replicas="ENABLED" if config.opensearch.standby_replicas else "DISABLED",
            description="Quarry chunks: knn_vector (HNSW) + BM25",
        )
        self.collection.add_dependency(encryption)
        self.collection.add_dependency(network)
        self.name = name
        self.access: aoss.CfnAccessPolicy | None = None
        self.endpoint = self.collection.attr_collection_endpoint
        self.arn = self.collection.attr_arn

    def _data_policy(self, name: str) -> str:
        rules = []
        for roles, actions in ((self._writers, _INDEX_WRITE), (self._readers, _INDEX_READ)):
            if roles:
                rules.append(
                    {
                        "Rules": [
                            {"ResourceType": "index", "Resource": [f"index/{name}/*"], "Permission": actions},
                            {
                                "ResourceType": "collection",
                                "Resource": [f"collection/{name}"],
                                "Permission": ["aoss:DescribeCollectionItems"],
                            },
                        ],
                        "Principal": [r.role_arn for r in roles],
                    }
                )
        return Stack.of(self).to_json_string(rules)

    def finalize(self) -> aoss.CfnAccessPolicy:
        """The data-access policy, once every reader and writer has been named with :meth:`allow`."""
        if self.access is None:
            self.access = aoss.CfnAccessPolicy(
                self, "DataAccess", name=f"{self.name}-data"[:32], type="data", policy=self._data_policy(self.name)
            )
            self.access.add_dependency(self.collection)
        return self.access

    def allow(self, role: iam.IRole, *, write: bool) -> list[iam.PolicyStatement]:
        if self.access is not None:
            raise RuntimeError("OpenSearchStore.allow() after finalize()")
        (self._writers if write else self._readers).append(role)
        return [iam.PolicyStatement(actions=["aoss:APIAccessAll"], resources=[self.arn])]


class VectorStores(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, network: Network) -> None:
        super().__init__(scope, construct_id)
        self.aurora = AuroraStore(self, "Aurora", config=config, network=network) if config.aurora.enabled else None
        self.opensearch = OpenSearchStore(self, "OpenSearch", config=config) if config.opensearch.enabled else None
        if self.aurora is not None:
            # The VPC Lambdas only in "vpc" access mode; with the Data API they never open a connection.
            peers = [network.app_sg, network.batch_sg] if config.lambdas_in_vpc else [network.batch_sg]
            self.aurora.allow_connections_from(*peers)

    def statements(self, role: iam.IRole, *, write: bool) -> list[iam.PolicyStatement]:
        out: list[iam.PolicyStatement] = []
        if self.aurora is not None:
            out += self.aurora.statements()
        if self.opensearch is not None:
            out += self.opensearch.allow(role, write=write)
        return out


SCHEMA_VERSION = "1"


class SchemaSetup(Construct):
    """Runs ``workspace_setup`` as a CloudFormation custom resource (CDK provider framework) on every deploy
    that changes its properties: the handler receives ``RequestType`` Create/Update/Delete and
    ``ResourceProperties`` ``{"VectorIndex": "pgvector", "Database", "SchemaVersion"}``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeployConfig, fn: lambda_.IFunction, aurora: AuroraStore
    ) -> None:
        super().__init__(scope, construct_id)
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=fn,
            log_group=logs.LogGroup(
                self,
                "ProviderLogs",
                retention=retention(config.log_retention_days),
                removal_policy=RemovalPolicy.DESTROY,
            ),
        )
        self.resource = CustomResource(
            self,
            "Schema",
            service_token=provider.service_token,
            resource_type="Custom::QuarrySchema",
            properties={
                "VectorIndex": "pgvector",
                "Database": config.aurora.database_name,
                "SchemaVersion": SCHEMA_VERSION,
            },
        )
        self.resource.node.add_dependency(aurora.cluster)
