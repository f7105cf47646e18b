"""The simulator's HTTP plumbing on the standard library: requests in, responses out.

What lives here: :class:`Request` and :class:`Response` (plain values the protocol modules
work with), :class:`ApiError` (what a handler raises for a non-2xx answer; each protocol
turns it into its own envelope), :class:`Route`, and the ``http.server`` pieces: a
keep-alive HTTP/1.1 handler that always sends Content-Length and a threading server that
can close its idle keep-alive connections on stop. What does not: routing decisions, faults
and protocols (``server.py`` and the protocol modules).

Why the standard library: the simulator must run wherever the tests run, with no server
dependency, and it needs byte-level control a framework hides (answer with half a body,
close a connection without answering).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("composer.sim")

#: The largest request body the simulator reads (a 148 s 1080p clip uploaded as base64 fits).
MAX_BODY = 512 * 1024 * 1024
#: Idle keep-alive connections are closed after this long, so threads do not pile up.
IDLE_TIMEOUT_S = 120.0


class ApiError(Exception):
    """A non-2xx answer: status, message and the protocol-specific words for it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        reason: str | None = None,
        param: str | None = None,
        code: str | None = None,
        kind: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason  # Google's status word: INVALID_ARGUMENT, NOT_FOUND, ...
        self.param = param  # OpenAI's "param"
        self.code = code  # OpenAI / relay "code"
        self.kind = kind  # OpenAI's "type"
        self.details = details or []
        self.headers = headers or {}


@dataclass
class Request:
    """One parsed HTTP request, plus the groups its route pattern captured."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        """host:port the client used (for absolute URLs that point back at the simulator)."""
        return str(self.headers.get("host") or "127.0.0.1")

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str:
        return str(self.headers.get(name) or "")

    @property
    def content_type(self) -> str:
        return self.header("content-type").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON; ValueError (with the parser's words) if it is not."""
        if not self.body.strip():
            return {}
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    """What to send: status, headers and body; or ``drop`` to close without answering.

    ``send_bytes`` below ``len(body)`` sends the full Content-Length header but only that many
    bytes, then closes (the ``truncate`` fault). ``video`` marks a body of video bytes, the
    only kind of answer the body faults touch. ``stream`` replaces ``body`` by chunks written
    as they come (``trickle``, ``huge``), under ``length`` as Content-Length (default: the
    body's); the connection is closed after it, or as soon as the client hangs up.
    """

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    send_bytes: int | None = None
    video: bool = False
    stream: Iterable[bytes] | None = None
    length: int | None = None


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return Response(status=status, body=body, headers=dict(headers or {}))


class Envelope(Protocol):
    """A protocol's way to turn an :class:`ApiError` into an answer."""

    def __call__(self, error: ApiError) -> Response: ...


@dataclass(frozen=True)
class Route:
    """One endpoint: method and path pattern -> handler, with what faults may see it.

    ``step`` is the fault step (create / poll / download, None for other calls such as
    listing); ``hop`` marks the second leg of a redirect, which request faults skip so a
    rule counts each download once.
    """

    method: str
    pattern: re.Pattern[str]
    handler: Callable[[Request], Response]
    protocol: str | None
    step: str | None
    envelope: Envelope
    hop: bool = False


def route(
    method: str,
    pattern: str,
    handler: Callable[[Request], Response],
    protocol: str | None,
    step: str | None,
    envelope: Envelope,
    *,
    hop: bool = False,
) -> Route:
    return Route(method, re.compile(pattern), handler, protocol, step, envelope, hop)


class App(Protocol):
    """What the server asks for each request (the :class:`~composer.sim.server.Simulator`)."""

    def handle(self, request: Request) -> Response: ...


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "composer-sim"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    server: Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size < 0:
                    # int("-5", 16) is -5: a negative size must not shrink the running total.
                    raise ValueError("negative chunk size")
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = int(self.headers.get("content-length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ValueError as error:
            # A malformed or negative size: say so once, then close (the rest of the stream is garbage).
            self.close_connection = True
            self._send(json_response({"error": {"code": 400, "message": f"bad request body: {error}"}}, 400))
            return
        except OSError:
            self.close_connection = True
            return
        if body is None:
            self._send(json_response({"error": {"code": 413, "message": "request body too large"}}, 413))
            self.close_connection = True
            return
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        response = self.server.app.handle(request)
        if response.drop:
            # Close without a single byte of answer: the client sees the connection end.
            self.close_connection = True
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        length = response.length if response.length is not None else len(response.body)
        self.send_header("Content-Length", str(length))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.stream is not None:
            self.close_connection = True  # a streamed answer's end is the connection's
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        if response.stream is not None:
            try:
                for chunk in response.stream:
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except OSError:  # the client hung up, as it should on a hostile answer
                pass
            return
        if response.send_bytes is not None and response.send_bytes < len(response.body):
            self.wfile.write(response.body[: response.send_bytes])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(response.body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's full name, which can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (as fault tests do on purpose) is not worth a traceback.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("connection from %s ended: %s", client_address, error)
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """End every open keep-alive connection (their threads then finish)."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)


def make_server(host: str, port: int, app: App) -> Server:
    return Server((host, port), app)
