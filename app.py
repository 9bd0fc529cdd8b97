#!/usr/bin/env python3
"""CDK entry point: load the DeployConfig (cdk.json context ``quarry`` + ``-c config=FILE``), build the stack.

The Lambda layer is built here when ``build/layer`` is missing or older than its sources (as
``stacks/models.py`` builds the default SageMaker archive), so ``cdk synth`` works on a fresh clone and never
ships a stale package: pip runs only when the dependencies changed, otherwise the package is copied offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import aws_cdk as cdk

from quarry.deployment.layer import ensure_project_layer
from stacks.config import load_config
from stacks.nag import apply_nag
from stacks.quarry_stack import QuarryStack

ROOT = Path(__file__).resolve().parent

app = cdk.App()
context = app.node.try_get_context("quarry") or {}
config = load_config(json.loads(context) if isinstance(context, str) else context, app.node.try_get_context("config"))
ensure_project_layer(ROOT, config.resolve(config.layer_asset_dir, ROOT))
QuarryStack(
    app,
    config.stack_name,
    config=config,
    root=ROOT,
    env=cdk.Environment(account=config.account or os.environ.get("CDK_DEFAULT_ACCOUNT"), region=config.region),
)
apply_nag(app)
app.synth()
