"""S3's POST-policy checks, for the test S3 server.

moto 5 stores a browser POST upload without looking at its policy (see
``moto/s3/responses.py: _bucket_response_post``): no signature check, no
``content-length-range``, no field conditions. Real S3 does all three, and the
whole point of ``S3BlobStore.presigned_post`` is that it does. So the test server
puts this gate in front of moto: S3's documented rules
(https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html),
with the SigV4 signature recomputed from the secret key, applied to the real
multipart request before moto stores the object.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

__all__ = ["PolicyGate", "check_post"]

_UNSIGNED = {"x-amz-signature", "file", "policy"}


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _signature(secret_key: str, credential: str, policy_b64: str) -> str:
    _, day, region, service, terminator = credential.split("/")
    key = _hmac(("AWS4" + secret_key).encode("utf-8"), day)
    for part in (region, service, terminator):
        key = _hmac(key, part)
    return hmac.new(key, policy_b64.encode("utf-8"), hashlib.sha256).hexdigest()


def _field_matches(condition: Any, form: Mapping[str, str], bucket: str, size: int) -> bool:
    values = {**form, "bucket": bucket}
    if isinstance(condition, dict):
        ((name, expected),) = condition.items()
        return values.get(name.lower()) == expected
    operator, *args = condition
    if operator == "content-length-range":
        low, high = int(args[0]), int(args[1])
        return low <= size <= high
    name, expected = args[0].lstrip("$").lower(), args[1]
    if operator == "eq":
        return values.get(name) == expected
    if operator == "starts-with":
        return values.get(name, "").startswith(expected)
    raise AssertionError(f"unknown POST policy operator {operator!r}")


def _condition_names(conditions: Iterable[Any]) -> set[str]:
    names: set[str] = set()
    for condition in conditions:
        if isinstance(condition, dict):
            names.update(name.lower() for name in condition)
        elif condition[0] != "content-length-range":
            names.add(condition[1].lstrip("$").lower())
    return names


def check_post(
    form: Mapping[str, str], size: int, *, bucket: str, secret_key: str, now: datetime | None = None
) -> tuple[int, str, str] | None:
    """None when S3 would accept the upload, else (status, S3 error code, message)."""
    form = {name.lower(): value for name, value in form.items()}
    policy_b64 = form.get("policy", "")
    if not policy_b64 or form.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
        return 403, "AccessDenied", "missing policy or algorithm"
    if not hmac.compare_digest(_signature(secret_key, form["x-amz-credential"], policy_b64), form["x-amz-signature"]):
        return 403, "SignatureDoesNotMatch", "policy signature does not match"
    policy = json.loads(base64.b64decode(policy_b64))
    if datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00")) <= (now or datetime.now(UTC)):
        return 403, "AccessDenied", "Invalid according to Policy: Policy expired."
    for condition in policy["conditions"]:
        if not _field_matches(condition, form, bucket, size):
            if isinstance(condition, list) and condition[0] == "content-length-range":
                code = "EntityTooLarge" if size > int(condition[2]) else "EntityTooSmall"
                return 400, code, "Your proposed upload is outside the allowed size range"
            return 403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {condition}"
    unlisted = {name for name in form if name not in _UNSIGNED and not name.startswith("x-ignore-")}
    unlisted -= _condition_names(policy["conditions"])
    if unlisted:
        return 403, "AccessDenied", f"Invalid according to Policy: Extra input fields: {sorted(unlisted)}"
    return None


class PolicyGate:
    """WSGI middleware: multipart POSTs to ``/{bucket}`` pass only if ``check_post`` accepts them."""

    def __init__(self, app: Callable[..., Any], *, secret_key: str) -> None:
        self.app = app
        self.secret_key = secret_key

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        is_form = environ.get("CONTENT_TYPE", "").startswith("multipart/form-data")
        if environ["REQUEST_METHOD"] != "POST" or not is_form:
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        request = Request(environ, populate_request=False)
        upload = request.files.get("file")
        size = len(upload.read()) if upload is not None else 0
        bucket = request.path.strip("/").split("/")[0]
        failure = check_post(dict(request.form), size, bucket=bucket, secret_key=self.secret_key)
        environ["wsgi.input"] = io.BytesIO(body)
        if failure is None:
            return self.app(environ, start_response)
        status, code, message = failure
        xml = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        return Response(xml, status=status, content_type="application/xml")(environ, start_response)
