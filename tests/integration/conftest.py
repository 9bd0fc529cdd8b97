"""Integration tier: the real local adapters (see tests/platform_fixtures.py)."""

from tests.platform_fixtures import LivePlatform, live, model_registry, services

__all__ = ["LivePlatform", "live", "model_registry", "services"]
