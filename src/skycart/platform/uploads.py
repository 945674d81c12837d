"""One file out of a multipart/form-data request, kept in memory and cut off at a byte limit as it arrives.

Starlette's form parser spools files of any size to a temporary folder; an upload here must stop at its
limit while streaming (never buffer an unbounded body) and write nothing to disk (read-only containers),
so this feeds python-multipart chunk by chunk and keeps only the wanted field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from skycart.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed

if TYPE_CHECKING:
    # Defined by python-multipart for type checkers only.
    from python_multipart.multipart import MultipartCallbacks

# Room for the multipart framing around the file: boundaries, part headers, a few small fields.
FRAMING_BYTES = 64 * 1024


class _OneField:
    """python-multipart callbacks that keep the bytes of the first part named `field`."""

    def __init__(self, field: str, max_bytes: int) -> None:
        self.field = field.encode()
        self.max_bytes = max_bytes
        self.data = bytearray()
        self.found = False
        self._wanted = False
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_part,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
        }

    def _begin(self) -> None:
        self._wanted = False
        self._disposition = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_part(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._wanted = options.get(b"name") == self.field
        if self._wanted:
            if self.found:
                name = self.field.decode()
                raise ValidationFailed(f"body.{name}: send one file", errors=_errors(name, "send one file"))
            self.found = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._wanted:
            if len(self.data) + (end - start) > self.max_bytes:
                raise PayloadTooLarge(f"the file is larger than {self.max_bytes} bytes")
            self.data += data[start:end]


def _errors(field: str, message: str) -> list[dict]:
    return [{"loc": ["body", field], "message": message, "type": "value_error"}]


async def read_file_field(request: Request, *, field: str, max_bytes: int) -> bytes:
    """The bytes of the multipart field `field`: 415 for another body type, 413 past `max_bytes`, 422 if absent."""
    media_type, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType(f"send multipart/form-data with the file in the field `{field}`")
    body_limit = max_bytes + FRAMING_BYTES
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > body_limit:
        raise PayloadTooLarge(f"the body is larger than the {max_bytes} bytes allowed for the file")
    wanted = _OneField(field, max_bytes)
    parser = MultipartParser(boundary, wanted.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise PayloadTooLarge(f"the body is larger than the {max_bytes} bytes allowed for the file")
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise ValidationFailed(f"body: not a well-formed multipart body ({exc})") from exc
    if not wanted.found:
        raise ValidationFailed(f"body.{field}: field required", errors=_errors(field, "field required"))
    return bytes(wanted.data)
