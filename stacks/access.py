"""Who may do what: one small function per consumer, each listing exactly the actions it needs.

Table keys: ``catalog`` (workspaces, documents, memberships, feedback), ``chat`` (sessions, messages),
``connections`` (WebSocket connections); see ``quarry.adapters.dynamodb.tables``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.api import WebSocketApi
from stacks.config import DeployConfig
from stacks.functions import Functions
from stacks.iam import bucket_statements, table_statement
from stacks.ingestion import BatchWorker, Workflows
from stacks.messaging import Messaging
from stacks.models import Models
from stacks.storage import Storage
from stacks.summaries import BLOB_PREFIX, Summaries
from stacks.vector_stores import VectorStores

__all__ = ["Access"]


def _start(*machines: sfn.IStateMachine) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=["states:StartExecution"], resources=[m.state_machine_arn for m in machines])


@dataclass
class Access:
    """Grants the runtime's permissions once every resource exists."""

    scope: Construct
    config: DeployConfig
    functions: Functions
    storage: Storage
    messaging: Messaging
    vectors: VectorStores
    models: Models
    websocket: WebSocketApi
    workflows: Workflows
    worker: BatchWorker
    summaries: Summaries

    def apply(self) -> None:
        self._rest_api()
        self._websocket()
        self._chat_worker()
        self._ingestion()
        self._batch_job()
        self._summaries()
        if "workspace_setup" in self.functions.functions:
            self._vectors("workspace_setup", write=True)
        self.functions.grant_manage_connections(
            ["ws_message", "chat_worker", "ingest_status", "sweeper"],
            self.websocket.api.api_id,
            self.config.api.stage_name,
        )

    # ------------------------------------------------------------------ helpers

    def _table(self, *names: str, write: bool) -> iam.PolicyStatement:
        return table_statement(self.storage.table_arns(*names), write=write)

    def _vectors(self, name: str, *, write: bool) -> None:
        self.functions.grant(name, self.vectors.statements(self.functions.roles[name], write=write))

    # ------------------------------------------------------------------ consumers

    def _rest_api(self) -> None:
        s = self.storage
        self.functions.grant(
            "rest_api",
            [
                self._table("catalog", "chat", write=True),
                self._table("connections", write=False),
                # read: also what a presigned GET of a cited document (GET .../source) is signed with.
                *bucket_statements(s.uploads, "read", "write"),
                *bucket_statements(s.processing, "read"),
                *self.models.statements(chat=True, embed=True),
                _start(self.workflows.ingest, self.workflows.delete),
                *self.summaries.manager_statements(),
            ],
        )
        self._vectors("rest_api", write=True)

    def _websocket(self) -> None:
        g = self.functions.grant
        g("ws_connect", [self._table("connections", write=True)])
        g("ws_disconnect", [self._table("connections", write=True)])
        g(
            "ws_message",
            [
                self._table("connections", "chat", write=True),
                self._table("catalog", write=False),
                iam.PolicyStatement(actions=["sns:Publish"], resources=[self.messaging.topic.topic_arn]),
                iam.PolicyStatement(
                    actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.storage.key.key_arn]
                ),
            ],
        )

    def _chat_worker(self) -> None:
        self.functions.grant(
            "chat_worker",
            [
                self._table("chat", "connections", write=True),
                self._table("catalog", write=False),
                *self.models.statements(chat=True, embed=True),
            ],
        )
        self._vectors("chat_worker", write=False)
        # At most spend.chat_max_concurrency workers at once: the bound on concurrent Bedrock calls (and spend);
        # further requests wait in the queue. Under a gradual rollout the live alias consumes the queue.
        self.functions.entry("chat_worker").add_event_source(
            sources.SqsEventSource(
                self.messaging.chat_queue,
                batch_size=1,
                report_batch_item_failures=True,
                max_concurrency=self.config.spend.chat_max_concurrency,
            )
        )

    def _ingestion(self) -> None:
        s, g = self.storage, self.functions.grant
        g(
            "ingest_trigger",
            [
                self._table("catalog", write=True),
                *bucket_statements(s.uploads, "read"),
                _start(self.workflows.ingest),
            ],
        )
        self.functions.functions["ingest_trigger"].add_event_source(
            sources.SqsEventSource(self.messaging.ingest_queue, batch_size=10, report_batch_item_failures=True)
        )
        g(
            "ingest_status",
            [
                self._table("catalog", "chat", "connections", write=True),
                *bucket_statements(s.uploads, "read", "delete", "list"),
                # the workspace purge: documents' processing blobs, and its summary jobs' runs and schedules
                *bucket_statements(s.processing, "read", "delete", "list"),
                *self.summaries.purger_statements(),
            ],
        )
        self._vectors("ingest_status", write=True)
        g("sweeper", [self._table("catalog", "connections", write=True)])

    def _batch_job(self) -> None:
        s, role = self.storage, self.worker.job_role
        # The crawler stores fetched pages as blobs of the crawl's sub-documents.
        upload_modes = ("read", "write") if self.config.ingestion.crawler else ("read",)
        statements = [
            self._table("catalog", write=True),
            *bucket_statements(s.uploads, *upload_modes),
            *bucket_statements(s.processing, "read", "write", "delete", "list"),
            *self.models.statements(chat=False, embed=True),
            *self.vectors.statements(role, write=True),
        ]
        for statement in statements:
            role.add_to_policy(statement)

    def _summaries(self) -> None:
        """The summaries state machine's steps: documents and jobs from the catalog table, the documents'
        preview text from the processing bucket, the runs' plans and results under ``summaries/`` there
        (list: a result not yet written reads as absent, not as denied), the chat model and the embedder;
        the usage counters in the chat table (each batch's tokens are counted as the job owner's, and read
        back for the daily allowance)."""
        processing = self.storage.processing
        self.functions.grant(
            "summary_worker",
            [
                self._table("catalog", "chat", write=True),
                *bucket_statements(processing, "read", "list"),
                *bucket_statements(processing, "write", prefix=f"{BLOB_PREFIX}*"),
                *self.models.statements(chat=True, embed=True, rerank=False),
            ],
        )
