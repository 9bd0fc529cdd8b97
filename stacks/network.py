"""VPC: public subnets (Batch tasks with a public IP, the NAT when there is one), isolated subnets for Aurora,
private subnets with egress for the VPC-attached Lambdas (only when ``aurora.access == "vpc"``).

Gateway endpoints for S3 and DynamoDB are free and always there. Interface endpoints (about $7.30 per
month per AZ each) are created only when ``network.interface_endpoints`` is on, and then only for the
services the private code calls. A NAT instance (default) or gateway exists only when something private
needs the internet: the VPC Lambdas push to WebSocket connections through the API Gateway management API,
which no VPC endpoint serves for a public API.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import DeployConfig

__all__ = ["Network"]


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        nat = config.nat_kind
        self.nat_instance: ec2.NatInstanceProviderV2 | None = None
        subnets = [
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
            ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
        ]
        if nat != "none":
            subnets.append(
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22)
            )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
            max_azs=config.network.max_azs,
            subnet_configuration=subnets,
            nat_gateways=0 if nat == "none" else 1,
            nat_gateway_provider=self._nat_provider() if nat != "none" else None,
            restrict_default_security_group=True,
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDb": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        if self.nat_instance is not None:
            self.nat_instance.connections.allow_from(ec2.Peer.ipv4(self.vpc.vpc_cidr_block), ec2.Port.all_traffic())
        flow_logs = logs.LogGroup(
            self, "FlowLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
        )
        # Rejected traffic only: what a security review needs, at a fraction of the ingestion cost of ALL.
        self.vpc.add_flow_log(
            "RejectedFlows",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )

        # Lambdas in the VPC (psycopg to Aurora); egress only.
        self.app_sg = ec2.SecurityGroup(
            self, "AppSg", vpc=self.vpc, description="Quarry VPC Lambdas", allow_all_outbound=True
        )
        # Batch tasks: public IP for ECR, S3, Bedrock and the crawler; no ingress at all.
        self.batch_sg = ec2.SecurityGroup(
            self, "BatchSg", vpc=self.vpc, description="Quarry Batch ingestion tasks", allow_all_outbound=True
        )
        self.db_sg = ec2.SecurityGroup(
            self, "DbSg", vpc=self.vpc, description="Quarry Aurora PostgreSQL", allow_all_outbound=False
        )
        self.endpoint_services: list[str] = []
        self.endpoint_sg: ec2.SecurityGroup | None = None
        if config.network.interface_endpoints and config.lambdas_in_vpc:
            self._interface_endpoints()

    def _nat_provider(self) -> ec2.NatProvider:
        if self.config.nat_kind == "gateway":
            return ec2.NatProvider.gateway()
        instance_type = ec2.InstanceType(self.config.network.nat_instance_type)
        arm = instance_type.architecture == ec2.InstanceArchitecture.ARM_64
        self.nat_instance = ec2.NatProvider.instance_v2(
            instance_type=instance_type,
            machine_image=ec2.MachineImage.latest_amazon_linux2023(
                cpu_type=ec2.AmazonLinuxCpuType.ARM_64 if arm else ec2.AmazonLinuxCpuType.X86_64
            ),
            default_allowed_traffic=ec2.NatTrafficDirection.OUTBOUND_ONLY,
            associate_public_ip_address=True,
        )
        return self.nat_instance

    def _interface_endpoints(self) -> None:
        """Endpoints for the AWS APIs that VPC-attached Lambdas call (Aurora credentials, models, workflows)."""
        services: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
            "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            "StepFunctions": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
        }
        if self.config.bedrock.enabled:
            services["BedrockRuntime"] = ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME
        if self.config.sagemaker.embedding_endpoint or self.config.sagemaker.llm_endpoint:
            services["SageMakerRuntime"] = ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME
        endpoint_sg = self.endpoint_sg = ec2.SecurityGroup(
            self, "EndpointSg", vpc=self.vpc, description="Quarry interface endpoints", allow_all_outbound=False
        )
        endpoint_sg.add_ingress_rule(self.app_sg, ec2.Port.tcp(443), "HTTPS from the VPC Lambdas")
        for name, service in services.items():
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                security_groups=[endpoint_sg],
                private_dns_enabled=True,
                open=False,  # only the rule above: HTTPS from the VPC Lambdas
            )
            self.endpoint_services.append(name)

    @property
    def lambda_subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

    @property
    def data_subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

    @property
    def batch_subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
