"""The key rule every ``BlobStore`` applies, so a key one store takes is a key every store takes.

S3 takes almost any 1..1024-byte key; a file system does not. The common ground: 1 to 1024 UTF-8
bytes, no NUL, ``/``-separated segments none of which is empty, ``.`` or ``..`` (so no leading ``/``
and no ``//``). A prefix follows the same rule except that its last segment may be empty
(``workspaces/w1/``) or partial: ``workspaces/w1`` also matches ``workspaces/w10/...``, as on S3.
"""

from __future__ import annotations

from quarry.errors import InvalidInput

__all__ = ["MAX_KEY_BYTES", "check_key", "check_prefix"]

MAX_KEY_BYTES = 1024  # S3's limit


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
