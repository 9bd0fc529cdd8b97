"""Vector stores: Aurora Serverless v2 that pauses at 0 ACU, with a schema custom resource; OpenSearch
Serverless with encryption, network and data-access policies naming the consumers' roles."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from tests.cdk.cdk_synth import Synth, flatten, logical_id

pytestmark = pytest.mark.cdk


def test_aurora_scales_to_zero_and_is_private(default_synth: Synth) -> None:
    t = default_synth.template
    t.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "EngineVersion": default_synth.config.aurora.engine_version,
            "ServerlessV2ScalingConfiguration": {"MinCapacity": 0, "MaxCapacity": 4, "SecondsUntilAutoPause": 600},
            "StorageEncrypted": True,
            "EnableIAMDatabaseAuthentication": True,
            "DeletionProtection": True,
            "DatabaseName": "quarry",
            "EnableCloudwatchLogsExports": ["postgresql"],
            "EnableHttpEndpoint": True,  # the RDS Data API: Lambdas outside the VPC
        },
    )
    t.has_resource_properties("AWS::RDS::DBInstance", {"DBInstanceClass": "db.serverless", "PubliclyAccessible": False})
    t.has_resource_properties("AWS::SecretsManager::Secret", {"GenerateSecretString": Match.any_value()})


def test_schema_setup_runs_workspace_setup_after_the_cluster(default_synth: Synth) -> None:
    resources = default_synth.json["Resources"]
    schema = next(r for r in resources.values() if r["Type"] == "Custom::QuarrySchema")
    assert schema["Properties"]["VectorIndex"] == "pgvector"
    assert schema["Properties"]["Database"] == "quarry"
    aurora = default_synth.stack.vectors.aurora
    assert aurora is not None
    cluster = logical_id(default_synth, aurora.cluster)
    assert any(dep.startswith(cluster) for dep in schema["DependsOn"])


def test_opensearch_serverless_collection_and_policies(full_synth: Synth) -> None:
    t = full_synth.template
    t.has_resource_properties(
        "AWS::OpenSearchServerless::Collection",
        {"Name": "quarry-vectors", "Type": "VECTORSEARCH", "StandbyReplicas": "DISABLED"},
    )
    policies = {
        p["Properties"]["Type"]: p["Properties"]
        for p in full_synth.resources("AWS::OpenSearchServerless::SecurityPolicy").values()
    }
    assert json.loads(policies["encryption"]["Policy"])["AWSOwnedKey"] is True
    assert json.loads(policies["network"]["Policy"])[0]["AllowFromPublic"] is True
    access = next(iter(full_synth.resources("AWS::OpenSearchServerless::AccessPolicy").values()))
    text = flatten(access["Properties"]["Policy"])
    assert "aoss:WriteDocument" in text and "aoss:ReadDocument" in text
    roles = full_synth.stack.functions.roles
    expected = [logical_id(full_synth, roles[n]) for n in ("rest_api", "chat_worker", "ingest_status")]
    assert all(r in json.dumps(access["Properties"]["Policy"]) for r in expected)
    assert logical_id(full_synth, full_synth.stack.worker.job_role) in json.dumps(access["Properties"]["Policy"])


def test_no_opensearch_by_default(default_synth: Synth) -> None:
    default_synth.template.resource_count_is("AWS::OpenSearchServerless::Collection", 0)
