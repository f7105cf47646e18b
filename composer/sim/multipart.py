"""A small, byte-exact ``multipart/form-data`` parser for the simulator (RFC 7578).

What lives here: :func:`parse_multipart` (a request body and its Content-Type -> the
:class:`Part` list) and :func:`header_param` (one parameter of a structured header such as
``boundary`` or ``name``). What does not: deciding what the fields mean (the protocol
modules) or reading the body off the socket (``http.py``).

Why not ``email.parser`` on the whole body: it reads the body as text lines, which is fine
for forms but makes it hard to be sure an uploaded MP4 comes back bit for bit; the simulator
matches uploaded videos by sha256, so here the body is split on the boundary as bytes and
only each part's small header block goes through ``email``'s header parser (which gets
quoting and RFC 2231 parameters right).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import HTTP


@dataclass(frozen=True)
class Part:
    """One form field: a plain value (``filename`` None) or an uploaded file."""

    name: str
    filename: str | None
    content_type: str
    data: bytes

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def header_param(value: str, param: str) -> str | None:
    """The parameter ``param`` of a header value like ``multipart/form-data; boundary=x``."""
    message = Message()
    message["content-type"] = value
    found = message.get_param(param, header="content-type")
    if found is None:
        return None
    if isinstance(found, tuple):  # an RFC 2231 (charset, language, value) triple
        return str(found[2])
    return str(found)


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """Split a multipart body into its parts; ValueError says what is malformed."""
    boundary = header_param(content_type, "boundary")
    if not boundary:
        raise ValueError("the multipart Content-Type has no boundary parameter")
    delimiter = b"--" + boundary.encode("latin-1")
    # The first delimiter may open the body or follow a preamble (which is ignored).
    if body.startswith(delimiter):
        position = len(delimiter)
    else:
        found = body.find(b"\r\n" + delimiter)
        if found < 0:
            raise ValueError("the multipart body does not contain its boundary")
        position = found + 2 + len(delimiter)
    parts: list[Part] = []
    while True:
        if body.startswith(b"--", position):
            return parts  # the closing delimiter; an epilogue after it is ignored
        # Transport padding (spaces or tabs) may follow a delimiter before its CRLF.
        line_end = body.find(b"\r\n", position)
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            raise ValueError("a multipart delimiter is not followed by a line break")
        start = line_end + 2
        end = body.find(b"\r\n" + delimiter, start)
        if end < 0:
            raise ValueError("the multipart body ends without its closing boundary")
        parts.append(_part(body[start:end]))
        position = end + 2 + len(delimiter)


def _part(raw: bytes) -> Part:
    split = raw.find(b"\r\n\r\n")
    if raw.startswith(b"\r\n"):
        head, data = b"", raw[2:]  # a part with no headers at all
    elif split < 0:
        raise ValueError("a multipart part has no blank line after its headers")
    else:
        head, data = raw[:split], raw[split + 4 :]
    headers = BytesHeaderParser(policy=HTTP).parsebytes(head + b"\r\n\r\n")
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise ValueError("a multipart part has no Content-Disposition header")
    message = Message()
    message["content-disposition"] = str(disposition)
    name = message.get_param("name", header="content-disposition")
    filename = message.get_param("filename", header="content-disposition")
    if isinstance(name, tuple):
        name = name[2]
    if isinstance(filename, tuple):
        filename = filename[2]
    if not name:
        raise ValueError("a multipart part has no name")
    content_type = str(
        headers.get("content-type") or ("application/octet-stream" if filename else "text/plain")
    )
    return Part(
        name=str(name),
        filename=None if filename is None else str(filename),
        content_type=content_type.split(";")[0].strip().lower(),
        data=data,
    )
