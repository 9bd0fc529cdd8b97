"""The key rule every ``BlobStore`` applies, so a key one store takes is a key every store takes.

S3 takes almost any 1..1024-byte key; a file system does not. The common ground: 1 to 1024 UTF-8
bytes, no NUL, ``/``-separated segments none of which is empty, ``.`` or ``..`` (so no leading ``/``
and no ``//``). A prefix follows the same rule except that its last segment may be empty
(``workspaces/w1/``) or partial: ``workspaces/w1`` also matches ``workspaces/w10/...``, as on S3.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from quarry.errors import InvalidInput

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_OBJECT_METADATA_BYTES",
    "OBJECT_METADATA_PREFIX",
    "check_key",
    "check_object_metadata",
    "check_prefix",
    "object_metadata_fields",
]

MAX_KEY_BYTES = 1024  # S3's limit
#: S3 keeps at most 2 KB of user metadata with an object (names and values, UTF-8).
MAX_OBJECT_METADATA_BYTES = 2048
#: How object metadata travels in a presigned POST form and in S3 headers.
OBJECT_METADATA_PREFIX = "x-amz-meta-"
_METADATA_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


def check_key(key: str) -> None:
    """Raise ``InvalidInput`` unless ``key`` names a blob on every store."""
    _check_segments(key, "blob key", last_may_be_empty=False)


def check_prefix(prefix: str) -> None:
    """Raise ``InvalidInput`` unless ``prefix`` is a key prefix every store can list (never empty)."""
    _check_segments(prefix, "blob prefix", last_may_be_empty=True)


def _check_segments(value: str, what: str, *, last_may_be_empty: bool) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what} must not be empty")
    if len(value.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidInput(f"{what} is longer than {MAX_KEY_BYTES} bytes")
    if "\x00" in value:
        raise InvalidInput(f"{what} {value!r} holds a NUL character")
    segments = value.split("/")
    if last_may_be_empty and segments[-1] == "":
        segments = segments[:-1]
    if any(segment in ("", ".", "..") for segment in segments):
        raise InvalidInput(f"{what} {value!r} has an empty, '.' or '..' segment (or starts with '/')")


def check_object_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """The metadata every store keeps with an object: lower-case names of letters, digits and ``-``, printable
    ASCII values (as S3 returns them), at most ``MAX_OBJECT_METADATA_BYTES`` in all; else ``InvalidInput``."""
    checked: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        if not isinstance(name, str) or not _METADATA_NAME.fullmatch(name):
            raise InvalidInput(f"object metadata name {name!r}: lower-case letters, digits and '-' only")
        if not isinstance(value, str) or not all(" " <= ch <= "~" for ch in value):
            raise InvalidInput(f"object metadata {name!r}: the value must be printable ASCII")
        checked[name] = value
    size = sum(len(name) + len(value) for name, value in checked.items())
    if size > MAX_OBJECT_METADATA_BYTES:
        raise InvalidInput(f"object metadata is {size} bytes; stores keep at most {MAX_OBJECT_METADATA_BYTES}")
    return checked


def object_metadata_fields(form: Mapping[str, str]) -> dict[str, str]:
    """The object metadata an upload form carries (its ``x-amz-meta-<name>`` fields), by name."""
    return {
        name[len(OBJECT_METADATA_PREFIX) :].lower(): value
        for name, value in form.items()
        if name.lower().startswith(OBJECT_METADATA_PREFIX)
    }
