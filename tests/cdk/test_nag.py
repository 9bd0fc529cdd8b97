"""cdk-nag AwsSolutions: synthesis fails on any unacknowledged error (the fixtures synthesize with the
checks on), the checks really run, and every acknowledgement carries a reason."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from stacks.nag import apply_nag
from tests.cdk.cdk_synth import Synth

pytestmark = pytest.mark.cdk


def test_no_unacknowledged_errors(any_synth: Synth) -> None:
    report = any_synth.validation_report()
    errors = [v for p in report["pluginReports"] for v in p.get("violations", []) if v.get("severity") == "error"]
    assert errors == []


def test_the_checks_are_active() -> None:
    app = App()
    stack = Stack(app, "Probe")
    s3.Bucket(stack, "Plain")  # no TLS-only policy, no access logs
    apply_nag(app)
    with pytest.raises(RuntimeError, match="AwsSolutions-S10"):
        app.synth()


def test_every_acknowledgement_has_a_reason(any_synth: Synth) -> None:
    acks: dict[str, str] = {}
    for construct in any_synth.stack.node.find_all():
        for entry in construct.node.metadata:
            if "acknowledg" in str(entry.type).lower() and isinstance(entry.data, dict):
                acks.update({k: v for k, v in entry.data.items() if "AwsSolutions-" in k})
    assert len(acks) > 10
    for rule, reason in acks.items():
        assert isinstance(reason, str) and len(reason) > 30, (rule, reason)
