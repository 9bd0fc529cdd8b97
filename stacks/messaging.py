"""The bus: one SNS topic whose subscription filter routes chat requests to the chat queue, and the
ingestion queue fed by the upload bucket's ``ObjectCreated`` events. Every queue has a DLQ (3 receives),
server-side encryption and TLS-only access."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from quarry.services.chat_stream import CHAT_FILTER
from stacks.config import DeployConfig
from stacks.storage import Storage

__all__ = ["MAX_RECEIVES", "Messaging"]

MAX_RECEIVES = 3
CHAT_WORKER_TIMEOUT = Duration.minutes(5)
INGEST_TRIGGER_TIMEOUT = Duration.minutes(1)


class Messaging(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, storage: Storage) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Bus",
            topic_name=f"{config.prefix}-bus",
            master_key=storage.key,
            enforce_ssl=True,
        )
        self.chat_dlq = self._queue("ChatDlq", retention=Duration.days(14))
        self.chat_queue = self._queue(
            "ChatQueue",
            # at least 6x the consumer's timeout (AWS guidance for Lambda event sources)
            visibility=Duration.seconds(CHAT_WORKER_TIMEOUT.to_seconds() * 6),
            dlq=self.chat_dlq,
        )
        self.topic.add_subscription(
            subs.SqsSubscription(
                self.chat_queue,
                raw_message_delivery=True,
                filter_policy={
                    name: sns.SubscriptionFilter.string_filter(allowlist=values) for name, values in CHAT_FILTER.items()
                },
            )
        )
        self.ingest_dlq = self._queue("IngestDlq", retention=Duration.days(14))
        self.ingest_queue = self._queue(
            "IngestQueue",
            visibility=Duration.seconds(INGEST_TRIGGER_TIMEOUT.to_seconds() * 6),
            dlq=self.ingest_dlq,
        )
        storage.uploads.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.SqsDestination(self.ingest_queue))
        self.dlqs = {"chat": self.chat_dlq, "ingest": self.ingest_dlq}

    def _queue(
        self,
        construct_id: str,
        *,
        visibility: Duration | None = None,
        retention: Duration | None = None,
        dlq: sqs.Queue | None = None,
    ) -> sqs.Queue:
        return sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=visibility,
            retention_period=retention,
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=MAX_RECEIVES) if dlq else None,
        )
