"""Synthesis of the CDK app for the tests, and helpers to read the templates.

The layer is a temporary folder holding only the quarry package source (no pip, no network); the Batch
image folder is the real ``batch_ingest/`` when its Dockerfile exists, otherwise a placeholder (the image
is only built by ``cdk deploy``).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the CDK app's `stacks` package lives at the repository root
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from stacks.config import DeployConfig, load_config  # noqa: E402
from stacks.nag import apply_nag  # noqa: E402
from stacks.quarry_stack import QuarryStack  # noqa: E402

FULL_OVERRIDES: dict[str, Any] = {
    "removal": "destroy",
    # The full configuration also covers the other Postgres access mode: VPC Lambdas behind a NAT gateway.
    "aurora": {"access": "vpc"},
    "network": {"nat": "gateway", "interface_endpoints": True},
    "opensearch": {"enabled": True},
    "sagemaker": {
        "embedding_endpoint": True,
        "llm_endpoint": True,
        "embedding": {
            "instance_type": "ml.m5.large",
            "image_uri": "763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-inference:2.1.0-cpu",
            "model_data": "s3://quarry-models/embedding/model.tar.gz",
        },
    },
    "bedrock": {
        "rerank_model_id": "cohere.rerank-v3-5:0",
        "chat_model_ids": ["anthropic.claude-3-haiku-20240307-v1:0", "us.anthropic.claude-3-5-haiku-20241022-v1:0"],
    },
    "ingestion": {"crawler": True, "spot": True},
    "monitoring": {"alarm_email": "ops@example.com", "dashboard": True, "function_alarms": True},
}

VPC_OVERRIDES: dict[str, Any] = {
    "aurora": {"access": "vpc"},
    "bedrock": {
        "chat_model_ids": [
            "amazon.nova-lite-v1:0",
            "amazon.nova-pro-v1:0",
            "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        ]
    },
}


@dataclass
class Synth:
    config: DeployConfig
    stack: QuarryStack
    template: Template
    outdir: Path

    @property
    def json(self) -> dict[str, Any]:
        return dict(self.template.to_json())

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.json["Resources"].items() if v["Type"] == type_}

    def validation_report(self) -> dict[str, Any]:
        return json.loads((self.outdir / "policy-validation-report.json").read_text())


def synthesize(overrides: dict[str, Any], code_dirs: dict[str, str], outdir: Path) -> Synth:
    context = {
        **overrides,
        "layer_asset_dir": code_dirs["layer_asset_dir"],
        "ingestion": {**overrides.get("ingestion", {}), "image_dir": code_dirs["image_dir"]},
    }
    config = load_config(context)
    flags = {k: v for k, v in json.loads((ROOT / "cdk.json").read_text())["context"].items() if k != "quarry"}
    app = App(outdir=str(outdir), context={**flags, "@aws-cdk/core:validationReportJson": True})
    stack = QuarryStack(app, config.stack_name, config=config, root=ROOT, env={"region": config.region})
    apply_nag(app)
    app.synth()  # raises when cdk-nag reports an unacknowledged error
    return Synth(config=config, stack=stack, template=Template.from_stack(stack), outdir=outdir)


def flatten(value: Any) -> str:
    """A CloudFormation string expression as text, every intrinsic replaced by ``<token>``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(flatten(p) for p in parts)
    return "<token>"


def state_machine(synth: Synth, name_fragment: str) -> dict[str, Any]:
    """The parsed ASL of the state machine whose logical id contains ``name_fragment``."""
    for logical_id, resource in synth.resources("AWS::StepFunctions::StateMachine").items():
        if name_fragment in logical_id:
            return json.loads(flatten(resource["Properties"]["DefinitionString"]))
    raise AssertionError(f"no state machine like {name_fragment}")


def policy_statements(synth: Synth, role_fragment: str | None = None) -> list[dict[str, Any]]:
    """Statements of every IAM::Policy (optionally only those attached to roles whose id contains a fragment)."""
    out: list[dict[str, Any]] = []
    for logical_id, policy in synth.resources("AWS::IAM::Policy").items():
        roles = [r.get("Ref", "") for r in policy["Properties"].get("Roles", [])]
        if role_fragment is None or any(role_fragment in r for r in roles) or role_fragment in logical_id:
            out += policy["Properties"]["PolicyDocument"]["Statement"]
    return out


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement.get("Action", [])
    return [value] if isinstance(value, str) else list(value)


def function(synth: Synth, name: str) -> dict[str, Any]:
    """The Lambda function resource named ``<prefix>-<name with dashes>``."""
    wanted = f"{synth.config.prefix}-{name.replace('_', '-')}"
    for resource in synth.resources("AWS::Lambda::Function").values():
        if resource["Properties"].get("FunctionName") == wanted:
            return resource
    raise AssertionError(f"no function {wanted}")


def logical_id(synth: Synth, construct: Any) -> str:
    return synth.stack.resolve(synth.stack.get_logical_id(construct.node.default_child))
