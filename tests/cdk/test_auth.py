"""Cognito: admin-created users by default, strong passwords, groups, a public SPA client."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from stacks.auth import GROUPS
from tests.cdk.cdk_synth import Synth

pytestmark = pytest.mark.cdk


def test_user_pool_is_locked_down(default_synth: Synth) -> None:
    default_synth.template.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
            "Policies": {
                "PasswordPolicy": Match.object_like(
                    {
                        "MinimumLength": 12,
                        "RequireLowercase": True,
                        "RequireUppercase": True,
                        "RequireNumbers": True,
                        "RequireSymbols": True,
                    }
                )
            },
            "MfaConfiguration": "OPTIONAL",
            # Kept by DeletionPolicy on stack deletion instead; protection would stop a failed first create
            # from rolling the pool back (see test_storage: a failed deploy leaves nothing behind).
            "DeletionProtection": Match.absent(),
        },
    )


def test_groups_and_spa_client(default_synth: Synth) -> None:
    groups = {g["Properties"]["GroupName"] for g in default_synth.resources("AWS::Cognito::UserPoolGroup").values()}
    assert groups == set(GROUPS)
    default_synth.template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "GenerateSecret": False,
            "PreventUserExistenceErrors": "ENABLED",
        },
    )
    flows = next(iter(default_synth.resources("AWS::Cognito::UserPoolClient").values()))["Properties"][
        "ExplicitAuthFlows"
    ]
    # SRP for the browser; the admin password flow (IAM credentials only) for `quarry smoke`'s temporary user.
    # No flow that sends a password from the browser (USER_PASSWORD_AUTH) or skips SRP publicly.
    assert sorted(flows) == ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"]
