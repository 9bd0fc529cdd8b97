"""Request bodies read with a cap, as API Gateway and S3 enforce theirs: never more than the limit in memory.

A declared ``Content-Length`` over the cap is refused before a byte of the body is read; a body without
one (chunked) is read as it streams and refused the moment it passes the cap. The server then answers
and closes the connection without draining the rest.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing

from starlette.datastructures import FormData, Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

__all__ = ["BodyTooLarge", "MalformedForm", "capped", "read_body", "read_multipart"]


class BodyTooLarge(Exception):
    """The body is (or declares itself) over the cap."""


class MalformedForm(Exception):
    """Not a ``multipart/form-data`` body, or not one the parser can read."""


def _check_declared(headers: Headers, limit: int) -> None:
    declared = headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge


async def capped(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    """``stream``'s chunks, raising :class:`BodyTooLarge` as soon as their total passes ``limit``."""
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes of it."""
    _check_declared(request.headers, limit)
    async with aclosing(capped(request.stream(), limit)) as stream:
        return b"".join([chunk async for chunk in stream])


async def read_multipart(request: Request, limit: int, *, max_files: int, max_fields: int) -> FormData:
    """A ``multipart/form-data`` body parsed as it streams (files spool to disk past 1 MB), capped at ``limit``."""
    _check_declared(request.headers, limit)
    media_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type != "multipart/form-data":
        raise MalformedForm
    async with aclosing(capped(request.stream(), limit)) as stream:
        try:
            return await MultiPartParser(request.headers, stream, max_files=max_files, max_fields=max_fields).parse()
        except MultiPartException as exc:
            raise MalformedForm from exc
