"""Lazily made boto3 clients (Powertools style).

An adapter takes an optional injected client (or boto3 ``Session``) and makes
its own only on first use, so importing an adapter never touches AWS or the
environment, and tests inject moto- or Stubber-backed clients.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

__all__ = ["LazyClient", "error_code"]


class LazyClient:
    """Holds an injected client, or builds one from ``session``/``region`` when first called."""

    def __init__(
        self,
        service: str,
        *,
        client: Any = None,
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        config: Config | None = None,
    ) -> None:
        self._service = service
        self._client = client
        self._session = session
        self._region = region
        self._endpoint_url = endpoint_url
        self._config = config
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    # A Session per adapter: boto3's default session is not thread-safe.
                    session = self._session or boto3.Session()
                    self._client = session.client(
                        self._service,  # type: ignore[call-overload,unused-ignore]  # stubs differ by version
                        region_name=self._region,
                        endpoint_url=self._endpoint_url or None,
                        config=self._config,
                    )
        return self._client


def error_code(exc: ClientError) -> str:
    """The service's error code (``NoSuchKey``, ``ConditionalCheckFailedException``...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))
