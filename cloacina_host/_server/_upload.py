"""An uploaded archive, read as it streams and never past the size limit.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read; a body
sent without one (chunked) is counted as it arrives and refused the moment it passes the limit. The
body is the archive itself (any content type but multipart), or a ``multipart/form-data`` form whose
first file part is the archive. The refusal is the one ``register`` gives for a file over the limit.
"""

from __future__ import annotations

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from .._packaging._source import archive_too_large
from ._errors import ApiError

__all__ = ["read_upload"]

#: what a multipart form may hold besides the archive (boundaries, headers, small fields)
FORM_OVERHEAD = 64 * 1024


class _TooLarge(Exception):
    pass


class _Collected:
    """The archive's bytes, bounded by ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        if len(self.data) + len(chunk) > self.limit:
            raise _TooLarge
        self.data += chunk


class _FormState:
    """Where the streaming form parser is: the current header, whether this part is the archive."""

    def __init__(self, archive: _Collected) -> None:
        self.archive = archive
        self.field = b""
        self.disposition = b""
        self.in_file = False
        self.taken = False

    def on_part_begin(self) -> None:
        self.disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.field = data[start:end].lower()

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        if self.field == b"content-disposition":
            self.disposition += data[start:end]

    def on_headers_finished(self) -> None:
        _kind, params = parse_options_header(self.disposition)
        self.in_file = b"filename" in params and not self.taken

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.archive.add(data[start:end])

    def on_part_end(self) -> None:
        if self.in_file:
            self.taken, self.in_file = True, False


def _multipart(boundary: bytes, archive: _Collected) -> MultipartParser:
    """A streaming parser that keeps the first part carrying a filename (the archive)."""
    state = _FormState(archive)
    names = (
        "on_part_begin",
        "on_header_field",
        "on_header_value",
        "on_headers_finished",
        "on_part_data",
        "on_part_end",
    )
    callbacks = {name: getattr(state, name) for name in names}
    return MultipartParser(boundary, callbacks)  # type: ignore[arg-type]


async def read_upload(request: Request, *, limit: int, name: str) -> bytes:
    """The archive ``request`` carries; ``ApiError`` 413 over ``limit`` bytes, 400 for a form without a file."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    form = kind == b"multipart/form-data"
    allowed = limit + FORM_OVERHEAD if form else limit
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > allowed:
        raise ApiError(413, str(archive_too_large(name, None if form else int(declared), limit)))
    archive = _Collected(limit)
    parser = None
    if form:
        boundary = params.get(b"boundary")
        if not boundary:
            raise ApiError(400, "The multipart/form-data body has no boundary; send the archive as a file part.")
        parser = _multipart(boundary, archive)
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > allowed:
                raise _TooLarge
            if parser is not None:
                parser.write(chunk)
            else:
                archive.add(chunk)
        if parser is not None:
            parser.finalize()
    except _TooLarge:
        raise ApiError(413, str(archive_too_large(name, None, limit))) from None
    if not archive.data:
        what = "no file part" if form else "an empty body"
        raise ApiError(400, f"The upload has {what}: send the .cloacina archive as the body (or as a form's file).")
    return bytes(archive.data)
