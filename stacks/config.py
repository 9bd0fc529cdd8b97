"""``DeployConfig`` for the CDK app: the schema lives in the installed package, :mod:`quarry.deployment.config`.

Pure pydantic, so ``quarry cost`` (:mod:`quarry.deployment.cost`) prices the very configuration ``app.py``
deploys; the stacks keep importing it from here.
"""

from __future__ import annotations

from quarry.deployment.config import (
    ApiConfig,
    AuroraConfig,
    AuthConfig,
    BedrockConfig,
    DeployConfig,
    EndpointConfig,
    FrontendConfig,
    IngestionConfig,
    MonitoringConfig,
    NetworkConfig,
    OpenSearchConfig,
    RolloutConfig,
    SageMakerConfig,
    SpendConfig,
    WafConfig,
    load_config,
)

__all__ = [
    "ApiConfig",
    "AuroraConfig",
    "AuthConfig",
    "BedrockConfig",
    "DeployConfig",
    "EndpointConfig",
    "FrontendConfig",
    "IngestionConfig",
    "MonitoringConfig",
    "NetworkConfig",
    "OpenSearchConfig",
    "RolloutConfig",
    "SageMakerConfig",
    "SpendConfig",
    "WafConfig",
    "load_config",
]
