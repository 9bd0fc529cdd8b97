"""The rehearsal's network, shared by its Lambda runtime (``bootstrap.py``) and its container (``container.py``).

Every AWS host the process calls is routed to a loopback server (``REHEARSAL_ROUTES``:
``[[host regex, "http://127.0.0.1:port"], ...]``), keeping the original ``Host`` header, as if DNS pointed
there; any other host is refused, so nothing leaks out. Every botocore API call (service, operation,
parameters, region, endpoint) is recorded in ``CALLS`` for the IAM check. Standard library only.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

CALLS: list[dict[str, Any]] = []


ROUTES = [(re.compile(pattern), target) for pattern, target in json.loads(os.environ.get("REHEARSAL_ROUTES", "[]"))]


class NoRoute(ConnectionError):
    pass


def route(url: str) -> tuple[str, str]:
    """(the loopback URL to connect to, the original host). Raises NoRoute for a host the rehearsal does not serve."""
    parts = urlsplit(url)
    host = parts.netloc
    for pattern, target in ROUTES:
        if pattern.search(parts.hostname or ""):
            t = urlsplit(target)
            return urlunsplit((t.scheme, t.netloc, parts.path, parts.query, parts.fragment)), host
    raise NoRoute(f"rehearsal network: no route to {host} (the function called a host the rehearsal does not serve)")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return repr(value)[:200]


def _patch_botocore() -> None:
    import botocore.client
    import botocore.httpsession

    original_send = botocore.httpsession.URLLib3Session.send

    def send(self: Any, request: Any) -> Any:
        target, host = route(request.url)
        request.url = target
        request.headers["Host"] = host
        return original_send(self, request)

    botocore.httpsession.URLLib3Session.send = send  # type: ignore[method-assign]

    original_call = botocore.client.BaseClient._make_api_call

    def make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        CALLS.append(
            {
                "service": self.meta.service_model.service_name,
                "operation": operation_name,
                "params": _jsonable(api_params),
                "region": self.meta.region_name,
                "endpoint": self.meta.endpoint_url,
            }
        )
        return original_call(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]


def _patch_urllib() -> None:
    """Every urllib opener (``urlopen`` and ``build_opener().open``, as PyJWT's JWKS client uses) is routed."""
    import urllib.request

    original = urllib.request.OpenerDirector.open

    def open(self: Any, fullurl: Any, data: Any = None, *args: Any, **kwargs: Any) -> Any:
        request = fullurl if isinstance(fullurl, urllib.request.Request) else urllib.request.Request(fullurl, data)
        target, host = route(request.full_url)
        routed = urllib.request.Request(target, data=request.data, method=request.get_method())
        for key, value in request.header_items():
            routed.add_header(key, value)
        routed.add_header("Host", host)
        return original(self, routed, None, *args, **kwargs)

    urllib.request.OpenerDirector.open = open  # type: ignore[method-assign]


def install() -> None:
    """Route urllib and botocore through the rehearsal's network and record botocore calls."""
    _patch_urllib()
    _patch_botocore()
