"""cdk-nag AwsSolutions checks (v3: a CDK validation plugin), and every acknowledgement with its reason.

Acknowledgements are made on the narrowest construct that owns the finding, and name the exact finding
(``Rule[Resource::...]`` for wildcards), so a new wildcard elsewhere still fails synthesis.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from aws_cdk import Acknowledgment, App, CfnResource, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from stacks.iam import PROFILE_PREFIXES as _PROFILE_PREFIXES
from stacks.quarry_stack import QuarryStack
from stacks.summaries import BLOB_PREFIX, schedule_group_name

__all__ = ["apply_nag"]

_XRAY_ENI = (
    "Resource::* only for actions that support no resource-level permission: X-Ray PutTraceSegments/"
    "PutTelemetryRecords (active tracing), bedrock:Rerank (the model is named by InvokeModel) and, for VPC "
    "Lambdas, ENI management (ec2:CreateNetworkInterface...)."
)
_OBJECTS = "Object-level access inside one named bucket: object keys are per workspace/document, known at run time."
_CONNECTIONS = "execute-api:ManageConnections on this WebSocket API's stage only; connection ids are known at run time."
_PYTHON = "Pinned to python3.12: the shared layer is built for cp312 manylinux2014_x86_64 wheels."
_CDK_HANDLER = "CDK-provided singleton handler; its role, policy and runtime are managed by aws-cdk-lib."


def apply_nag(app: App) -> None:
    for stack in [c for c in app.node.find_all() if isinstance(c, QuarryStack)]:
        acknowledge(stack)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def _ack(construct: IConstruct, reason: str, *ids: str) -> None:
    Validations.of(construct).acknowledge(*(Acknowledgment(id=f"AwsSolutions-{i}", reason=reason) for i in ids))


def _arn(stack: Stack, construct: IConstruct) -> str:
    """How cdk-nag prints ``Fn::GetAtt [X, Arn]`` of a construct's resource."""
    resource = construct.node.default_child
    assert isinstance(resource, CfnResource)
    return f"<{stack.resolve(stack.get_logical_id(resource))}.Arn>"


def _objects(stack: Stack, buckets: Iterable[IConstruct]) -> list[str]:
    return [f"IAM5[Resource::{_arn(stack, b)}/*]" for b in buckets]


def acknowledge(stack: QuarryStack) -> None:
    _network(stack)
    _models(stack)
    _auth_and_data(stack)
    _functions(stack)
    _api(stack)
    _workflows(stack)
    _summaries(stack)
    _rollout(stack)
    _frontend(stack)
    _cdk_singletons(stack)


def _network(stack: QuarryStack) -> None:
    if stack.network.endpoint_sg is not None:
        _ack(
            stack.network.endpoint_sg,
            "Ingress is HTTPS from the VPC Lambdas' security group only (the rule references a group id).",
            "EC23",
        )
    nat = stack.network.nat_instance
    if nat is None:
        return
    vpc = stack.network.vpc
    reason = (
        "NAT instance (t4g.nano, opt-out of a $33/month NAT gateway): stateless, no data on its root volume, "
        "replaced rather than protected; its security group admits only the VPC CIDR."
    )
    _ack(vpc, reason, "EC26", "EC28", "EC29", "EC23")


def _models(stack: QuarryStack) -> None:
    for endpoint in stack.models.endpoints:
        _ack(
            endpoint.role,
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData (namespace-conditioned) support no "
            "resource-level permission; the endpoint's log streams are created at run time in its own log group.",
            "IAM5[Resource::*]",
            f"IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
            f"/aws/sagemaker/Endpoints/{endpoint.name}:*]",
        )
    profiles = [m for m in stack.models.bedrock_model_ids if m.startswith(_PROFILE_PREFIXES)]
    reason = "A cross-region inference profile routes to the same model in any region of its geography."
    for model_id in profiles:
        base = model_id.split(".", 1)[1]
        _ack(
            stack.functions,
            reason,
            f"IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/{base}]",
        )


def _auth_and_data(stack: QuarryStack) -> None:
    _ack(
        stack.auth.user_pool,
        "Cognito Plus (threat protection) is billed per MAU; opt in per deployment. MFA is optional "
        "(TOTP) so that invited users can enrol on first sign-in.",
        "COG8",
        "COG2",
    )
    aurora = stack.vectors.aurora
    if aurora is not None:
        _ack(
            aurora.cluster,
            "Credentials are generated at deploy; rotation needs a rotation Lambda with network access to the "
            "cluster and would keep it awake. Enable with cluster.add_rotation_single_user() when required.",
            "SMG4",
        )
        if stack.config.is_destroy:
            _ack(aurora.cluster, "removal 'destroy' is the disposable-environment setting chosen in config.", "RDS10")


def _functions(stack: QuarryStack) -> None:
    fns = stack.functions
    _ack(fns, _PYTHON, "L1")
    _ack(fns, _XRAY_ENI, "IAM5[Resource::*]")
    s = stack.storage
    _ack(fns, _OBJECTS, *_objects(stack, [s.uploads, s.processing]))
    _ack(
        fns,
        _CONNECTIONS,
        f"IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
        f"{_ref(stack, stack.api.websocket.api)}/{stack.config.api.stage_name}/*/@connections/*]",
    )
    worker = stack.worker
    _ack(worker, _OBJECTS, *_objects(stack, [s.uploads, s.processing]))
    _ack(worker, "ecr:GetAuthorizationToken supports no resource-level permission.", "IAM5[Resource::*]")


def _ref(stack: Stack, construct: IConstruct) -> str:
    resource = construct.node.default_child
    assert isinstance(resource, CfnResource)
    return f"<{stack.resolve(stack.get_logical_id(resource))}>"


def _api(stack: QuarryStack) -> None:
    rest = stack.rest
    for path in ("health", "openapi.json"):
        method = rest.api.root.get_resource(path)
        assert method is not None
        _ack(
            method,
            f"GET /{path} is public on purpose (liveness probe / API description); it returns no user data.",
            "APIG4",
            "COG4",
        )
    _ack(
        rest.api,
        "The account-level API Gateway CloudWatch role uses the AWS managed push-to-logs policy, as documented.",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
    )
    if stack.waf is None:  # with waf.enabled the stage has a web ACL and APIG3 passes on its own
        _ack(
            rest.api,
            "AWS WAF is opt-in (waf.enabled in the deploy config, billed per web ACL, rule and request: see "
            "`quarry cost`); without it stage throttling and the Cognito authorizer protect the API.",
            "APIG3",
        )
    ws = stack.api.websocket.api
    _ack(
        ws,
        "WebSocket APIs authorise at $connect only; $disconnect and $default run on an authorised connection.",
        "APIG4",
    )


def _workflows(stack: QuarryStack) -> None:
    wf = stack.workflows
    status = _arn(stack, stack.functions.functions["ingest_status"])
    reason_versions = "Invoke any version/alias of the one ingest_status function (CDK LambdaInvoke grant)."
    for machine in (wf.ingest, wf.delete):
        _ack(machine, reason_versions, f"IAM5[Resource::{status}:*]")
        _ack(
            machine,
            "X-Ray tracing and CloudWatch Logs delivery (logs:CreateLogDelivery...) support no resource-level "
            "permission.",
            "IAM5[Resource::*]",
        )
    _ack(
        wf.ingest,
        "BatchSubmitJob .sync: the job definition ARN carries a revision number; the queue is named exactly.",
        f"IAM5[Resource::arn:<AWS::Partition>:batch:{stack.region}:<AWS::AccountId>:job-definition/*]",
        f"IAM5[Resource::arn:aws:batch:{stack.region}:<AWS::AccountId>:job-definition/*]",
    )


def _summaries(stack: QuarryStack) -> None:
    summaries = stack.summaries
    machine = summaries.state_machine
    _ack(
        machine,
        "Invoke any version/alias of the one summary_worker function (CDK LambdaInvoke grant); X-Ray tracing "
        "and CloudWatch Logs delivery support no resource-level permission; the Distributed Map's ItemReader "
        "reads the run's plan, whose key is per job and run, from the processing bucket.",
        f"IAM5[Resource::{_arn(stack, stack.functions.functions['summary_worker'])}:*]",
        "IAM5[Resource::*]",
        f"IAM5[Resource::arn:<AWS::Partition>:s3:::{_ref(stack, stack.storage.processing)}/*]",
    )
    # The Distributed Map's child executions (CDK's DistributedMapPolicy): named by Step Functions at run time.
    select = json.dumps(
        {"Fn::Select": [6, {"Fn::Split": [":", {"Ref": stack.resolve(stack.get_logical_id(_cfn(machine)))}]}]},
        separators=(",", ":"),
    )
    _ack(
        machine,
        "The Distributed Map starts, describes, stops and redrives its own child executions, which Step "
        "Functions names at run time.",
        *(
            f"IAM5[Resource::arn:{partition}:states:{stack.region}:<AWS::AccountId>:execution:{select}{label}:*]"
            for partition in ("aws", "<AWS::Partition>")
            for label in ("", "/*")
        ),
    )
    _ack(
        stack.functions,
        "Summary runs keep their plans, batch results and cancellation markers under summaries/ in the "
        "processing bucket (keys per workspace, job and run); rest_api keeps one schedule per scheduled job in "
        "the summaries schedule group (named from the job's ids at run time), which the workspace purge "
        "(ingest_status) deletes with the workspace's jobs.",
        f"IAM5[Resource::{_arn(stack, stack.storage.processing)}/{BLOB_PREFIX}*]",
        f"IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/"
        f"{schedule_group_name(stack.config)}/*]",
    )


def _cfn(construct: IConstruct) -> CfnResource:
    resource = construct.node.default_child
    assert isinstance(resource, CfnResource)
    return resource


def _rollout(stack: QuarryStack) -> None:
    for group in stack.rollout.groups.values():
        _ack(
            group,
            "CodeDeploy's service role for Lambda: aws-cdk-lib always attaches AWS's scoped "
            "AWSCodeDeployRoleForLambdaLimited (get/update an alias, read the group's alarms, hooks named "
            "CodeDeployHook_*).",
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited]",
        )


def _frontend(stack: QuarryStack) -> None:
    fe = stack.frontend
    _ack(
        fe.distribution,
        "The default *.cloudfront.net certificate allows TLSv1; set a custom domain with an ACM certificate "
        "to enforce TLSv1.2_2021.",
        "CFR4",
    )
    _ack(fe.distribution, "No geographic restriction: the platform serves any region.", "CFR1")
    if fe.web_acl_arn is None:  # with a web ACL on the distribution CFR2 passes on its own
        _ack(
            fe.distribution,
            "AWS WAF on the UI is opt-in (waf.enabled with waf.cloudfront in the deploy config, billed per web ACL, "
            "rule and request: see `quarry cost`); the UI is static and the API is authenticated.",
            "CFR2",
        )


def _cdk_singletons(stack: QuarryStack) -> None:
    basic = "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
    for child in stack.node.children:
        cid = child.node.id
        if cid.startswith("Custom::CDKBucketDeployment"):
            _ack(
                child,
                _CDK_HANDLER + " It copies the UI build and config.json from the CDK asset bucket to the site bucket.",
                "L1",
                basic,
                "IAM5[Resource::*]",
                "IAM5[Action::s3:GetBucket*]",
                "IAM5[Action::s3:GetObject*]",
                "IAM5[Action::s3:List*]",
                "IAM5[Action::s3:Abort*]",
                "IAM5[Action::s3:DeleteObject*]",
                *(
                    f"IAM5[Resource::arn:{partition}:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-{stack.region}/*]"
                    for partition in ("aws", "<AWS::Partition>")
                ),
                f"IAM5[Resource::{_arn(stack, stack.frontend.bucket)}/*]",
            )
        elif cid.startswith(("BucketNotificationsHandler", "LogRetention", "Custom::S3AutoDeleteObjects")):
            _ack(child, _CDK_HANDLER, basic, "IAM5[Resource::*]", "L1")
    if stack.schema_setup is not None:
        setup_fn = _arn(stack, stack.functions.functions["workspace_setup"])
        _ack(
            stack.schema_setup,
            _CDK_HANDLER + " (custom resource provider framework, invoking workspace_setup only)",
            basic,
            f"IAM5[Resource::{setup_fn}:*]",
            "L1",
        )
