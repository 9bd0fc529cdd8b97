"""cfn-lint on the synthesized templates: no error and no warning.

W3005 ("dependency already enforced") is ignored: CDK adds ``DependsOn`` on a role *and* its default
policy so a function never starts before its permissions exist; the role half is redundant, not wrong.
"""

from __future__ import annotations

import pytest
from cfnlint.api import ManualArgs, lint

from tests.cdk.cdk_synth import Synth

pytestmark = pytest.mark.cdk

IGNORED = ["W3005"]


def test_templates_are_cfn_lint_clean(any_synth: Synth) -> None:
    template = (any_synth.outdir / f"{any_synth.stack.stack_name}.template.json").read_text()
    matches = lint(template, config=ManualArgs(regions=[any_synth.config.region], ignore_checks=IGNORED))
    assert [f"{m.rule.id} {m.message}" for m in matches] == []
