"""``QuarryStack``: the whole platform in one deployable stack, one construct per concern.

One stack keeps every cross-concern reference a plain constructor argument (no exports that pin
resources between stacks); each concern stays a separate module and is tested on its own resources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags, Token
from constructs import Construct

from stacks.access import Access
from stacks.api import Api
from stacks.auth import Auth
from stacks.config import DeployConfig
from stacks.frontend import Frontend
from stacks.functions import Functions
from stacks.ingestion import BatchWorker, Workflows, schedule_sweeper
from stacks.messaging import Messaging
from stacks.models import Models
from stacks.monitoring import Monitoring
from stacks.network import Network
from stacks.rollout import Rollout
from stacks.runtime_env import RuntimeResources, quarry_environment
from stacks.storage import Storage
from stacks.summaries import Summaries
from stacks.vector_stores import SchemaSetup, VectorStores
from stacks.waf import ApiFirewall, needs_edge_stack, ui_web_acl_arn

__all__ = ["QuarryStack"]


class QuarryStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, root: Path, **kwargs: Any) -> None:
        # A UI web ACL outside us-east-1 lives in a us-east-1 stack whose ARN reaches this one (stacks/waf.py).
        kwargs.setdefault("cross_region_references", needs_edge_stack(config))
        super().__init__(scope, construct_id, description="Quarry: serverless RAG platform", **kwargs)
        Tags.of(self).add("project", "quarry")
        Tags.of(self).add("quarry:prefix", config.prefix)
        self.config = config
        self.network = Network(self, "Network", config=config)
        self.storage = Storage(self, "Storage", config=config)
        self.auth = Auth(self, "Auth", config=config)
        self.messaging = Messaging(self, "Messaging", config=config, storage=self.storage)
        self.models = Models(self, "Models", config=config, root=root, key=self.storage.key)
        self.vectors = VectorStores(self, "VectorStores", config=config, network=self.network)
        self.api = Api(self, "Api", config=config)

        resources = self._resources()
        self.functions = Functions(
            self, "Functions", config=config, root=root, network=self.network, resources=resources
        )
        # Before anything invokes the functions: under a gradual rollout callers get the live alias.
        self.rollout = Rollout(self, "Rollout", config=config, functions=self.functions)
        self.worker = BatchWorker(
            self,
            "Batch",
            config=config,
            root=root,
            network=self.network,
            environment=quarry_environment(config, resources, postgres="psycopg"),
        )
        self.workflows = Workflows(
            self, "Workflows", config=config, status_fn=self.functions.functions["ingest_status"], worker=self.worker
        )
        self.functions.add_workflow_environment(
            ["rest_api", "ingest_trigger"],
            self.workflows.ingest.state_machine_arn,
            self.workflows.delete.state_machine_arn,
        )
        self.summaries = Summaries(
            self,
            "Summaries",
            config=config,
            worker=self.functions.functions["summary_worker"],
            bucket=self.storage.processing,
        )
        for key, value in self.summaries.environment().items():
            self.functions.functions["rest_api"].add_environment(key, value)
        for key, value in self.summaries.purger_environment().items():  # deleting a workspace deletes its jobs
            self.functions.functions["ingest_status"].add_environment(key, value)
        schedule_sweeper(self, config, self.functions.functions["sweeper"])
        self.rest = self.api.add_rest(self.auth, self.functions)
        self.waf = ApiFirewall.build(self, config, self.rest.api)
        Access(
            scope=self,
            config=config,
            functions=self.functions,
            storage=self.storage,
            messaging=self.messaging,
            vectors=self.vectors,
            models=self.models,
            websocket=self.api.websocket,
            workflows=self.workflows,
            worker=self.worker,
            summaries=self.summaries,
        ).apply()
        if self.vectors.opensearch is not None:
            self.vectors.opensearch.finalize()
        self.schema_setup: SchemaSetup | None = None
        if self.vectors.aurora is not None:
            self.schema_setup = SchemaSetup(
                self,
                "SchemaSetup",
                config=config,
                fn=self.functions.functions["workspace_setup"],
                aurora=self.vectors.aurora,
            )
        self.frontend = Frontend(
            self,
            "Frontend",
            config=config,
            root=root,
            storage=self.storage,
            auth=self.auth,
            rest=self.rest,
            websocket=self.api.websocket,
            web_acl_arn=ui_web_acl_arn(self, config),
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            storage=self.storage,
            messaging=self.messaging,
            functions=self.functions,
            api=self.api,
            workflows=self.workflows,
            models=self.models,
            rollout=self.rollout,
        )
        self._outputs()

    def _resources(self) -> RuntimeResources:
        aurora, opensearch = self.vectors.aurora, self.vectors.opensearch
        return RuntimeResources(
            upload_bucket=self.storage.uploads.bucket_name,
            processing_bucket=self.storage.processing.bucket_name,
            catalog_table=self.storage.tables["catalog"].table_name,
            chat_table=self.storage.tables["chat"].table_name,
            connections_table=self.storage.tables["connections"].table_name,
            chat_topic_arn=self.messaging.topic.topic_arn,
            websocket_endpoint=self.api.websocket.callback_url,
            cognito_user_pool_id=self.auth.user_pool.user_pool_id,
            cognito_client_id=self.auth.client.user_pool_client_id,
            pg_host=aurora.cluster.cluster_endpoint.hostname if aurora else "",
            pg_port=Token.as_string(aurora.cluster.cluster_endpoint.port) if aurora else "",
            pg_secret_arn=aurora.secret.secret_arn if aurora else "",
            pg_cluster_arn=aurora.cluster.cluster_arn if aurora else "",
            opensearch_endpoint=opensearch.endpoint if opensearch else "",
            sagemaker_embedding_endpoint=self.models.embedding.name if self.models.embedding else "",
            sagemaker_llm_endpoint=self.models.llm.name if self.models.llm else "",
        )

    def _outputs(self) -> None:
        assert self.rest is not None
        values = {
            "AppUrl": self.frontend.url,
            "RestApiUrl": self.rest.api.url,
            "WebSocketUrl": self.api.websocket.url,
            "UserPoolId": self.auth.user_pool.user_pool_id,
            "UserPoolClientId": self.auth.client.user_pool_client_id,
            "UploadBucket": self.storage.uploads.bucket_name,
            "IngestStateMachine": self.workflows.ingest.state_machine_arn,
            "SummariesStateMachine": self.summaries.state_machine.state_machine_arn,
            "AlarmTopic": self.monitoring.topic.topic_arn,
        }
        for name, value in values.items():
            CfnOutput(self, name, value=value)
