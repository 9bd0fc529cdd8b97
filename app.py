#!/usr/bin/env python3
"""CDK entry point: load the DeployConfig (cdk.json context ``quarry`` + ``-c config=FILE``), build the stack."""

from __future__ import annotations

import json
import os
from pathlib import Path

import aws_cdk as cdk

from stacks.config import load_config
from stacks.nag import apply_nag
from stacks.quarry_stack import QuarryStack

ROOT = Path(__file__).resolve().parent

app = cdk.App()
context = app.node.try_get_context("quarry") or {}
config = load_config(json.loads(context) if isinstance(context, str) else context, app.node.try_get_context("config"))
QuarryStack(
    app,
    config.stack_name,
    config=config,
    root=ROOT,
    env=cdk.Environment(account=config.account or os.environ.get("CDK_DEFAULT_ACCOUNT"), region=config.region),
)
apply_nag(app)
app.synth()
