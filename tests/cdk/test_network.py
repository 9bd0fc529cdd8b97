"""Network: no NAT and no private egress by default (Lambdas reach Aurora through the Data API), free
gateway endpoints; in VPC mode a NAT instance (or gateway) and interface endpoints only when asked."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from stacks.config import load_config
from stacks.network import Network
from tests.cdk.cdk_synth import Synth

pytestmark = pytest.mark.cdk


def _endpoint_services(synth: Synth, kind: str) -> list[str]:
    out = []
    for r in synth.resources("AWS::EC2::VPCEndpoint").values():
        if r["Properties"].get("VpcEndpointType", "Gateway") == kind:
            name = r["Properties"]["ServiceName"]
            out.append(name if isinstance(name, str) else str(name))
    return out


def test_default_network_has_no_nat_and_free_gateway_endpoints(default_synth: Synth) -> None:
    t = default_synth.template
    t.resource_count_is("AWS::EC2::NatGateway", 0)
    t.resource_count_is("AWS::EC2::Instance", 0)
    gateways = " ".join(_endpoint_services(default_synth, "Gateway"))
    assert "s3" in gateways and "dynamodb" in gateways
    assert _endpoint_services(default_synth, "Interface") == []
    t.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "REJECT"})


def test_full_network_has_interface_endpoints_for_private_callers(full_synth: Synth) -> None:
    full_synth.template.resource_count_is("AWS::EC2::NatGateway", 1)
    services = " ".join(_endpoint_services(full_synth, "Interface"))
    for service in ("secretsmanager", "states", "bedrock-runtime", "sagemaker.runtime"):
        assert service in services, services
    sg_id = next(
        k
        for k, r in full_synth.resources("AWS::EC2::SecurityGroup").items()
        if r["Properties"]["GroupDescription"] == "Quarry interface endpoints"
    )
    assert "SecurityGroupIngress" not in full_synth.json["Resources"][sg_id]["Properties"]  # nothing open to a CIDR
    rules = [
        r["Properties"]
        for r in full_synth.resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [sg_id, "GroupId"]}
    ]
    assert [(r["FromPort"], "SourceSecurityGroupId" in r) for r in rules] == [(443, True)]


@pytest.mark.parametrize(("mode", "peers"), [("default", 1), ("vpc", 2)])  # Batch tasks (+ the VPC Lambdas)
def test_database_accepts_postgres_only_from_quarry_compute(
    mode: str, peers: int, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(f"{mode}_synth")
    ingress = [
        r["Properties"]
        for r in synth.resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"].get("FromPort") == 5432
    ]
    assert len(ingress) == peers
    assert all("SourceSecurityGroupId" in p and "CidrIp" not in p for p in ingress)


def test_data_api_network_has_no_nat_and_no_private_egress() -> None:
    stack = Stack(App(), "Net", env={"region": "us-east-1"})
    Network(stack, "Network", config=load_config({}))
    t = Template.from_stack(stack)
    t.resource_count_is("AWS::EC2::NatGateway", 0)
    t.resource_count_is("AWS::EC2::Instance", 0)
    subnets = t.find_resources("AWS::EC2::Subnet")
    types = {
        tag["Value"] for s in subnets.values() for tag in s["Properties"]["Tags"] if tag["Key"] == "aws-cdk:subnet-type"
    }
    assert types == {"Public", "Isolated"}
