"""The one way an adapter gets a boto3 client: ``LazyClient`` (Powertools style).

An adapter takes an optional injected client (or boto3 ``Session``) and makes
its own only on first use, so importing an adapter never touches AWS, boto3 or the
environment, and tests inject moto- or Stubber-backed clients. Error codes are read
with ``aws_errors.error_code``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config

__all__ = ["LazyClient"]


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
                    self._client = self._make()
        return self._client

    def _make(self) -> Any:
        import boto3

        # A Session per adapter: boto3's default session is not thread-safe.
        session = self._session or boto3.Session()
        return session.client(
            self._service,  # type: ignore[call-overload,unused-ignore]  # stubs differ by version
            region_name=self._region or None,
            endpoint_url=self._endpoint_url or None,
            config=self._config,
        )
