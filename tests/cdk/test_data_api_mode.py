"""Postgres access modes. Default ("data_api"): no Lambda in the VPC, no NAT, the Data API on and granted
to the Postgres users. "vpc": psycopg Lambdas in private subnets behind a NAT instance."""

from __future__ import annotations

import pytest

from stacks.functions import FUNCTIONS
from tests.cdk.cdk_synth import Synth, actions, function, logical_id, policy_statements

pytestmark = pytest.mark.cdk

POSTGRES_USERS = ("rest_api", "chat_worker", "ingest_status", "workspace_setup")


def _granted(synth: Synth, name: str) -> set[str]:
    role = logical_id(synth, synth.stack.functions.roles[name])
    return {a for s in policy_statements(synth, role) for a in actions(s)}


def _worker_env(synth: Synth) -> set[str]:
    job = next(iter(synth.resources("AWS::Batch::JobDefinition").values()))
    return {e["Name"] for e in job["Properties"]["ContainerProperties"]["Environment"]}


def test_default_has_no_vpc_lambdas_and_no_nat(default_synth: Synth) -> None:
    t = default_synth.template
    t.resource_count_is("AWS::EC2::NatGateway", 0)
    t.resource_count_is("AWS::EC2::Instance", 0)
    for name in FUNCTIONS:
        assert "VpcConfig" not in function(default_synth, name)["Properties"], name
    t.has_resource_properties("AWS::RDS::DBCluster", {"EnableHttpEndpoint": True})


def test_default_postgres_users_get_the_data_api_and_the_secret(default_synth: Synth) -> None:
    for name in POSTGRES_USERS:
        env = function(default_synth, name)["Properties"]["Environment"]["Variables"]
        assert {"QUARRY_PG_CLUSTER_ARN", "QUARRY_PG_SECRET_ARN", "QUARRY_PG_DATABASE"} <= set(env), name
        assert "QUARRY_PG_DSN" not in env, name
        assert {"rds-data:ExecuteStatement", "rds-data:BeginTransaction", "secretsmanager:GetSecretValue"} <= (
            _granted(default_synth, name)
        ), name
    for name in set(FUNCTIONS) - set(POSTGRES_USERS):
        env = function(default_synth, name)["Properties"]["Environment"]["Variables"]
        assert "QUARRY_PG_CLUSTER_ARN" not in env and "QUARRY_PG_SECRET_ARN" not in env, name
        assert not {a for a in _granted(default_synth, name) if a.startswith("rds-data:")}, name
    # the Batch worker keeps psycopg (binary COPY) inside the VPC
    assert "QUARRY_PG_DSN" in _worker_env(default_synth)


def test_vpc_mode_puts_postgres_users_in_private_subnets_behind_a_nat_instance(vpc_synth: Synth) -> None:
    t = vpc_synth.template
    t.resource_count_is("AWS::EC2::NatGateway", 0)
    t.has_resource_properties("AWS::EC2::Instance", {"InstanceType": "t4g.nano", "SourceDestCheck": False})
    t.has_resource_properties("AWS::RDS::DBCluster", {"EnableHttpEndpoint": False})
    for name in FUNCTIONS:
        props = function(vpc_synth, name)["Properties"]
        env = props["Environment"]["Variables"]
        assert ("VpcConfig" in props) == (name in POSTGRES_USERS), name
        assert ("QUARRY_PG_DSN" in env) == (name in POSTGRES_USERS), name
        assert "QUARRY_PG_CLUSTER_ARN" not in env, name
        assert not {a for a in _granted(vpc_synth, name) if a.startswith("rds-data:")}, name
    assert "QUARRY_PG_DSN" in _worker_env(vpc_synth)
