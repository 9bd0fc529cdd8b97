"""Storage: private, encrypted, TLS-only buckets; DynamoDB tables built from the adapter's TABLES data."""

from __future__ import annotations

from typing import Any

import pytest

from quarry.adapters.dynamodb_tables import TABLES
from tests.cdk.cdk_synth import Synth, flatten

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
    tables = {t["Properties"]["TableName"]: t for t in any_synth.resources("AWS::DynamoDB::Table").values()}
    prefix = any_synth.config.prefix
    assert set(tables) == {spec.name(prefix) for spec in TABLES.values()}
    for spec in TABLES.values():
        props = tables[spec.name(prefix)]["Properties"]
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
    for synth, expected in ((default_synth, "Retain"), (full_synth, "Delete")):
        for type_ in ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::Cognito::UserPool"):
            assert {r["DeletionPolicy"] for r in synth.resources(type_).values()} == {expected}, (synth, type_)
    aurora = next(iter(default_synth.resources("AWS::RDS::DBCluster").values()))
    assert aurora["DeletionPolicy"] == "Snapshot"
