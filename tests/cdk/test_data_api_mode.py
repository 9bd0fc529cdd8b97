"""aurora.access = "data_api": no Lambda in the VPC, no NAT, the Data API on and granted to Postgres users."""

from __future__ import annotations

import pytest

from stacks.functions import FUNCTIONS
from tests.cdk.cdk_synth import Synth, actions, function, logical_id, policy_statements

pytestmark = pytest.mark.cdk


def test_no_vpc_lambdas_and_no_nat(data_api_synth: Synth) -> None:
    t = data_api_synth.template
    t.resource_count_is("AWS::EC2::NatGateway", 0)
    t.resource_count_is("AWS::EC2::Instance", 0)
    for name in FUNCTIONS:
        assert "VpcConfig" not in function(data_api_synth, name)["Properties"], name
    t.has_resource_properties("AWS::RDS::DBCluster", {"EnableHttpEndpoint": True})


def test_postgres_users_get_the_data_api_and_the_secret(data_api_synth: Synth) -> None:
    for name in ("rest_api", "chat_worker", "ingest_status", "workspace_setup"):
        env = function(data_api_synth, name)["Properties"]["Environment"]["Variables"]
        assert "QUARRY_PG_CLUSTER_ARN" in env and "QUARRY_PG_DSN" not in env
        role = logical_id(data_api_synth, data_api_synth.stack.functions.roles[name])
        granted = {a for s in policy_statements(data_api_synth, role) for a in actions(s)}
        assert {"rds-data:ExecuteStatement", "secretsmanager:GetSecretValue"} <= granted, name
    # the Batch worker keeps psycopg inside the VPC
    job = next(iter(data_api_synth.resources("AWS::Batch::JobDefinition").values()))
    names = {e["Name"] for e in job["Properties"]["ContainerProperties"]["Environment"]}
    assert "QUARRY_PG_DSN" in names
