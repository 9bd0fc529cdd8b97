"""Messaging: filtered SNS -> chat queue, S3 events -> ingestion queue, DLQs with 3 receives, encryption."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from quarry.services.chat_stream import CHAT_FILTER
from stacks.messaging import MAX_RECEIVES
from tests.cdk.cdk_synth import Synth, function, logical_id

pytestmark = pytest.mark.cdk


def test_queues_have_dlqs_and_encryption(any_synth: Synth) -> None:
    queues = any_synth.resources("AWS::SQS::Queue")
    assert len(queues) == 4
    redrive = [q["Properties"]["RedrivePolicy"] for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    assert len(redrive) == 2
    dlq_ids = {r["deadLetterTargetArn"]["Fn::GetAtt"][0] for r in redrive}
    assert all(r["maxReceiveCount"] == MAX_RECEIVES for r in redrive)
    assert dlq_ids == {k for k, q in queues.items() if "RedrivePolicy" not in q["Properties"]}
    assert all(q["Properties"]["SqsManagedSseEnabled"] for q in queues.values())
    for dlq in dlq_ids:
        assert queues[dlq]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_queue_policies_deny_insecure_transport(any_synth: Synth) -> None:
    for policy in any_synth.resources("AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_chat_subscription_filters_on_topic_and_direction(default_synth: Synth) -> None:
    chat_queue = logical_id(default_synth, default_synth.stack.messaging.chat_queue)
    default_synth.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "sqs",
            "RawMessageDelivery": True,
            "FilterPolicy": CHAT_FILTER,
            "Endpoint": {"Fn::GetAtt": [chat_queue, "Arn"]},
        },
    )
    default_synth.template.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value(), "TopicName": "quarry-bus"}
    )


def test_upload_events_feed_the_ingestion_queue(default_synth: Synth) -> None:
    ingest_queue = logical_id(default_synth, default_synth.stack.messaging.ingest_queue)
    default_synth.template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "NotificationConfiguration": {
                "QueueConfigurations": [
                    {"Events": ["s3:ObjectCreated:*"], "QueueArn": {"Fn::GetAtt": [ingest_queue, "Arn"]}}
                ]
            }
        },
    )


def test_consumers_report_partial_batch_failures(default_synth: Synth) -> None:
    mappings = list(default_synth.resources("AWS::Lambda::EventSourceMapping").values())
    assert len(mappings) == 2
    assert all(m["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)
    chat = logical_id(default_synth, default_synth.stack.functions.functions["chat_worker"])
    chat_mapping = next(m for m in mappings if m["Properties"]["FunctionName"] == {"Ref": chat})
    assert chat_mapping["Properties"]["BatchSize"] == 1
    # the queue hides a message for at least 6x the worker's timeout
    timeout = function(default_synth, "chat_worker")["Properties"]["Timeout"]
    chat_queue = default_synth.resources("AWS::SQS::Queue")[
        logical_id(default_synth, default_synth.stack.messaging.chat_queue)
    ]
    assert chat_queue["Properties"]["VisibilityTimeout"] >= 6 * timeout
