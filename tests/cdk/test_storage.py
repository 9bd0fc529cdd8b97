"""Storage: private, encrypted, TLS-only buckets; DynamoDB tables built from the adapter's TABLES data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from quarry.adapters.dynamodb.tables import TABLES
from tests.cdk.cdk_synth import Synth, flatten, logical_id

pytestmark = pytest.mark.cdk


def test_every_bucket_is_private_and_encrypted(any_synth: Synth) -> None:
    buckets = any_synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 4  # access logs, uploads, processing, site
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def _denies_insecure_transport(policy: dict[str, Any]) -> bool:
    return any(
        s["Effect"] == "Deny"
        and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and s["Principal"] == {"AWS": "*"}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def test_every_bucket_policy_is_tls_only(any_synth: Synth) -> None:
    policies = any_synth.resources("AWS::S3::BucketPolicy")
    assert len(policies) == 4
    assert all(_denies_insecure_transport(p) for p in policies.values())


def test_uploads_bucket_versioning_lifecycle_and_cors(default_synth: Synth) -> None:
    uploads = [
        b["Properties"]
        for b in default_synth.resources("AWS::S3::Bucket").values()
        if "uploads" in flatten(b["Properties"].get("BucketName", ""))
    ]
    assert len(uploads) == 1
    props = uploads[0]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = props["LifecycleConfiguration"]["Rules"][0]
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    cors = props["CorsConfiguration"]["CorsRules"][0]
    assert cors["AllowedMethods"] == ["POST"]
    assert any(flatten(o).startswith("https://") for o in cors["AllowedOrigins"])  # the CloudFront origin
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "s3/uploads/"


def test_tables_match_the_adapter_definitions(any_synth: Synth) -> None:
    resources = any_synth.resources("AWS::DynamoDB::Table")
    tables = {key: resources[logical_id(any_synth, table)] for key, table in any_synth.stack.storage.tables.items()}
    assert set(tables) == set(TABLES) and len(resources) == len(TABLES)
    for key, spec in TABLES.items():
        props = tables[key]["Properties"]
        keys = {k["AttributeName"]: k["KeyType"] for k in props["KeySchema"]}
        expected = {spec.partition_key.name: "HASH"} | ({spec.sort_key.name: "RANGE"} if spec.sort_key else {})
        assert keys == expected
        assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == {
            a.name: a.type for a in spec.attributes()
        }
        assert {g["IndexName"] for g in props.get("GlobalSecondaryIndexes", [])} == {
            i.name for i in spec.global_indexes
        }
        assert {i["IndexName"] for i in props.get("LocalSecondaryIndexes", [])} == {i.name for i in spec.local_indexes}
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}
        ttl = props.get("TimeToLiveSpecification")
        if spec.ttl_attribute:
            assert ttl == {"AttributeName": spec.ttl_attribute, "Enabled": True}
        else:
            assert ttl is None


def test_removal_policy_follows_config(default_synth: Synth, full_synth: Synth) -> None:
    for synth, expected in ((default_synth, "RetainExceptOnCreate"), (full_synth, "Delete")):
        for type_ in ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::Cognito::UserPool", "AWS::KMS::Key"):
            assert {r["DeletionPolicy"] for r in synth.resources(type_).values()} == {expected}, (synth, type_)
    aurora = next(iter(default_synth.resources("AWS::RDS::DBCluster").values()))
    assert aurora["DeletionPolicy"] == "Snapshot"


# Properties holding a physical name that must be unique in the account (or globally, for buckets).
_UNIQUE_NAMES = ("BucketName", "TableName", "KeyAlias", "AliasName", "Name", "FunctionName", "TopicName", "QueueName")
# Cognito allows any number of user pools with the same name: a kept pool never blocks a new one.
_NOT_UNIQUE = {("AWS::Cognito::UserPool", "UserPoolName")}


def _mentions_stack_id(value: Any) -> bool:
    return "AWS::StackId" in json.dumps(value)


def test_a_failed_first_deploy_leaves_nothing_that_blocks_the_next(default_synth: Synth) -> None:
    """Resources kept beyond the stack go away when its first create rolls back, and have no fixed name.

    ``RetainExceptOnCreate`` deletes what a failed create made (nothing left to collide with); names that are
    CloudFormation's own or carry the stack's id (new per stack instance) cannot collide with a copy kept
    from an earlier stack either; deletion protection would stop the rollback from deleting them.
    """
    kept = {k: r for k, r in default_synth.json["Resources"].items() if r.get("DeletionPolicy", "Delete") != "Delete"}
    assert len(kept) >= 9  # key, 4 buckets, 3 tables, user pool, Aurora
    for logical, resource in kept.items():
        type_, props = resource["Type"], resource.get("Properties", {})
        if type_ == "AWS::RDS::DBCluster":  # a final snapshot on deletion; CloudFormation names the cluster
            assert resource["DeletionPolicy"] == "Snapshot" and "DBClusterIdentifier" not in props
            continue
        assert resource["DeletionPolicy"] == "RetainExceptOnCreate", logical
        assert resource["UpdateReplacePolicy"] == "Retain", logical
        for name in _UNIQUE_NAMES:
            if name in props and (type_, name) not in _NOT_UNIQUE:
                assert _mentions_stack_id(props[name]), (logical, name, props[name])
        assert not props.get("DeletionProtectionEnabled"), logical  # DynamoDB
        assert props.get("DeletionProtection", "INACTIVE") == "INACTIVE", logical  # Cognito
    uploads = kept[logical_id(default_synth, default_synth.stack.storage.uploads)]["Properties"]["BucketName"]
    assert _mentions_stack_id(uploads)  # the UI's CSP names it, so CloudFormation cannot pick it
