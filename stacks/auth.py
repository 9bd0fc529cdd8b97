"""Cognito: a user pool (no self sign-up by default, strong passwords), an SPA app client, groups."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from stacks.config import DeployConfig
from stacks.storage import data_removal

__all__ = ["GROUPS", "Auth"]

GROUPS = ("admin", "user")

_MFA = {"off": cognito.Mfa.OFF, "optional": cognito.Mfa.OPTIONAL, "required": cognito.Mfa.REQUIRED}


class Auth(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        mfa = _MFA[config.auth.mfa]
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=f"{config.prefix}-users",
            self_sign_up_enabled=config.auth.self_sign_up,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=config.auth.password_min_length,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=mfa,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False) if mfa != cognito.Mfa.OFF else None,
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            # Kept on stack deletion, removed when the first create rolls back (no deletion protection,
            # which would block that); the pool name is not unique in Cognito, so a kept pool blocks nothing.
            removal_policy=data_removal(config),
        )
        self.client = self.user_pool.add_client(
            "WebClient",
            user_pool_client_name=f"{config.prefix}-web",
            generate_secret=False,  # a browser app cannot keep a secret
            # SRP for the browser; ADMIN_USER_PASSWORD_AUTH needs IAM credentials (cognito-idp:AdminInitiateAuth),
            # so the public client gains nothing: `quarry smoke` signs its temporary user in with it.
            auth_flows=cognito.AuthFlow(user_srp=True, admin_user_password=True),
            prevent_user_existence_errors=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
            enable_token_revocation=True,
        )
        self.groups = {
            name: cognito.CfnUserPoolGroup(
                self,
                f"Group{name.title()}",
                user_pool_id=self.user_pool.user_pool_id,
                group_name=name,
                description=f"Quarry {name}s",
                precedence=0 if name == "admin" else 10,
            )
            for name in GROUPS
        }
