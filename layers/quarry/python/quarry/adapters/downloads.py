"""What every store's presigned GET shares: its limits and the ``Content-Disposition`` it asks for."""

from __future__ import annotations

from urllib.parse import quote

from quarry.errors import InvalidInput

__all__ = ["MAX_PRESIGN_SECONDS", "check_download", "inline_disposition"]

MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit, kept by every store
_MAX_FILENAME_CHARS = 255


def check_download(expires_in: int, filename: str) -> None:
    """Raise ``InvalidInput`` unless a link may live ``expires_in`` seconds and serve ``filename``."""
    if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
        raise InvalidInput(f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds")
    if not filename.strip():
        raise InvalidInput("filename must not be empty")
    if len(filename) > _MAX_FILENAME_CHARS or any(ord(ch) < 32 or ch == "\x7f" for ch in filename):
        raise InvalidInput(f"filename must be at most {_MAX_FILENAME_CHARS} printable characters")


def inline_disposition(filename: str) -> str:
    """``inline`` with the name twice (RFC 6266): an ASCII fallback, and the exact name UTF-8 encoded."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
