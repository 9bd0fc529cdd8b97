"""Tests never reach real AWS, whatever the developer's shell has set: static keys, a region, no profile."""

from __future__ import annotations

import pytest

__all__ = ["isolate_from_real_aws"]


def isolate_from_real_aws(
    monkeypatch: pytest.MonkeyPatch, *, region: str, access_key: str = "AKIAQUARRYTESTING000", secret_key: str = "test"
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
