"""The :class:`Simulator`: one loopback HTTP server speaking four video-generation protocols.

What lives here: the public class (start / stop / ``base_url`` / ``stats``), the dispatch of
each request (route, then the request-phase fault draw, then the protocol handler, then the
body-phase draw for video bytes) and the ``/_sim/*`` control endpoints (stats, reset,
fault rules; never subject to faults, never need a key). What does not: the protocols
(``gemini.py``, ``vertex.py``, ``openai.py``, ``relay.py``), storage and renders
(``engine.py``), the fault grammar (``faults.py``) or socket handling (``http.py``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from composer import ffmpeg
from composer.sim import google, openai, relay
from composer.sim.engine import Engine
from composer.sim.faults import FaultPlan, FaultSpec, parse_faults
from composer.sim.gemini import GeminiApi
from composer.sim.http import ApiError, Envelope, Request, Response, Route, Server, json_response, make_server
from composer.sim.openai import OpenAIApi
from composer.sim.relay import RelayApi
from composer.sim.vertex import VertexApi

log = logging.getLogger("composer.sim")
PROTOCOL_NAMES = ("gemini", "vertex", "openai", "relay")


class _Api(Protocol):
    name: str

    def routes(self) -> list[Route]: ...

    def fault_response(self, kind: str, delay_s: float) -> Response: ...


def _plain_envelope(error: ApiError) -> Response:
    return json_response({"error": {"code": error.status, "message": error.message}}, error.status)


def _envelope_for(path: str) -> Envelope:
    """The envelope a client of the protocol under ``path`` expects, for paths no route serves."""
    if path.startswith("/v1/videos"):
        return openai.envelope
    if path.startswith("/relay"):
        return relay.envelope
    if path.startswith(("/v1beta", "/v1/", "/v1beta1/", "/storage/", "/download/")):
        return google.envelope
    return _plain_envelope


#: What the ``huge`` fault claims to send: 50 GB, as the service in issue 17 did.
HUGE_BYTES = 50 * 1000**3
_LOGIN_PAGE = (
    b"<!doctype html><html><head><title>Sign in</title></head><body><form>sign in</form></body></html>"
)


def _body_fault(response: Response, kind: str, delay_s: float, plan: FaultPlan) -> Response:
    """``response`` (a video) as a body fault delivers it (``docs/simulator.md``, Faults)."""
    body = response.body
    if kind == "truncate":
        response.send_bytes = len(body) // 2
    elif kind == "corrupt":
        response.body = plan.garbage(len(body))
    elif kind == "wrongtype":
        # What a captive portal or a misrouted proxy answers: 200, HTML, not the video.
        response.content_type, response.body = "text/html; charset=utf-8", _LOGIN_PAGE
    elif kind == "huge":
        response.length, response.stream = HUGE_BYTES, _endless(body)
    elif kind == "trickle":
        response.stream = _trickle(body, delay_s)
    elif kind == "smaller":
        response.body = _smaller(body)
    return response


def _endless(body: bytes) -> Iterator[bytes]:
    """The video, then zeros up to :data:`HUGE_BYTES`; stops when the client hangs up."""
    yield body
    zeros, sent = bytes(1 << 20), len(body)
    while sent < HUGE_BYTES:
        yield zeros
        sent += len(zeros)


def _trickle(body: bytes, pause_s: float) -> Iterator[bytes]:
    """One byte every ``pause_s`` seconds: never idle long enough for a per-read timeout."""
    for index in range(len(body)):
        time.sleep(pause_s)
        yield body[index : index + 1]


def _smaller(body: bytes) -> bytes:
    """The same video at an eighth of its width and height (even sides)."""
    with tempfile.TemporaryDirectory(prefix="composer-sim-") as work:
        src, dest = Path(work) / "in.mp4", Path(work) / "out.mp4"
        src.write_bytes(body)
        info = ffmpeg.probe(src)
        width, height = info.width, info.height
        ffmpeg.rescale(src, dest, max(2, width // 16 * 2), max(2, height // 16 * 2))
        return dest.read_bytes()


class Simulator:
    """A real HTTP server on loopback serving Gemini, Vertex, OpenAI Videos and a relay shape.

    ``faults`` is a spec string (``docs/simulator.md``) or a :class:`FaultSpec`; a bad spec
    raises ValueError here, before anything starts. ``api_key`` None accepts any non-empty
    key or token. ``storage`` None keeps videos in a temporary folder removed on stop.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
        faults: str | FaultSpec | None = "",
        seed: int = 0,
        drift: float = 1.0,
        storage: str | Path | None = None,
        api_key: str | None = None,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.latency_s = float(latency_s)
        self.seed = int(seed)
        self.drift = float(drift)
        self.storage = None if storage is None else Path(storage)
        self.api_key = api_key or None
        self._spec = parse_faults(faults)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._plan: FaultPlan | None = None
        self._apis: dict[str, _Api] = {}
        self._routes: list[Route] = []

    # -- lifetime ---------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind and serve in background threads; returns self. OSError if the port is taken."""
        if self._server is not None:
            return self
        plan = FaultPlan(self._spec, self.seed)
        engine = Engine(
            latency_s=self.latency_s, drift=self.drift, seed=self.seed, faults=plan, storage=self.storage
        )
        apis: list[_Api] = [
            GeminiApi(engine, self.api_key),
            VertexApi(engine, self.api_key),
            OpenAIApi(engine, self.api_key),
            RelayApi(engine, self.api_key),
        ]
        try:
            server = make_server(self.host, self.port, self)
        except OSError:
            engine.close()
            raise
        self._plan, self._engine = plan, engine
        self._apis = {api.name: api for api in apis}
        self._routes = [r for api in apis for r in api.routes()]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="composer-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections, wait for renders in flight, drop temporary storage."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._engine is not None:
            self._engine.close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` with no trailing slash (a wildcard bind is reached on loopback)."""
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        host, port = self._server.server_address[:2]
        host = str(host)
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def _running(self) -> tuple[Engine, FaultPlan]:
        if self._engine is None or self._plan is None:
            raise RuntimeError("the simulator has not been started; call start() first")
        return self._engine, self._plan

    # -- control ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters per protocol, every operation and every injected fault (as GET /_sim/stats)."""
        return self._running()[0].stats()

    def reset(self) -> None:
        """Zero the statistics (operations stay pollable; fault rules and their counts stay)."""
        self._running()[0].reset_stats()

    def set_faults(self, faults: str | FaultSpec | None) -> None:
        """Replace the fault rules from now on (``Nx`` counts restart); ValueError for a bad spec."""
        spec = parse_faults(faults)
        self._spec = spec
        if self._plan is not None:
            self._plan.replace(spec)

    @property
    def faults(self) -> FaultSpec:
        return self._spec

    # -- dispatch ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            return self._handle(request)
        except Exception as error:
            # A bug here must not look like a protocol answer a client could act on.
            log.exception("simulator error on %s %s", request.method, request.path)
            message = f"simulator bug: {type(error).__name__}: {error}"
            return json_response({"error": {"code": 500, "message": message, "status": "INTERNAL"}}, 500)

    def _handle(self, request: Request) -> Response:
        _, plan = self._running()
        if request.path.startswith("/_sim/"):
            return self._control(request)
        found, allowed = self._match(request)
        if found is None:
            envelope = _envelope_for(request.path)
            if allowed:
                return envelope(ApiError(405, f"Method {request.method} is not allowed on {request.path}."))
            return envelope(ApiError(404, f"The simulator has no endpoint {request.method} {request.path}."))
        assert found.protocol is not None
        api = self._apis[found.protocol]
        lost = False
        if not found.hop:
            delay, rule = plan.draw("request", found.protocol, found.step)
            if delay:
                time.sleep(delay)
            if rule is not None:
                if rule.kind == "drop":
                    return Response(drop=True)
                if rule.kind != "lost":
                    return api.fault_response(rule.kind, rule.delay_s)
                lost = True
        try:
            response = found.handler(request)
        except ApiError as error:
            response = found.envelope(error)
        if lost:
            # The request was handled (an operation may now exist), but the answer never arrives.
            return Response(drop=True)
        if response.video and response.status == 200:
            _, rule = plan.draw("body", found.protocol, found.step)
            if rule is not None:
                response = _body_fault(response, rule.kind, rule.delay_s, plan)
        return response

    def _match(self, request: Request) -> tuple[Route | None, bool]:
        allowed = False
        for candidate in self._routes:
            match = candidate.pattern.match(request.path)
            if match is None:
                continue
            if candidate.method != request.method:
                allowed = True
                continue
            request.params = {k: v for k, v in match.groupdict().items() if v is not None}
            return candidate, False
        return None, allowed

    def _refuse_rule_change(self, request: Request) -> Response | None:
        """Why a request may not change the fault rules, or None.

        Only a JSON body: a web page open in a browser can send a plain-text POST to loopback
        without asking, but a JSON one needs a CORS preflight the simulator never grants. With
        ``--key``, the key too (``x-goog-api-key`` or ``Authorization: Bearer``).
        """
        if request.content_type != "application/json":
            return _plain_envelope(
                ApiError(
                    415,
                    'the fault rules change only with a JSON body: {"faults": "SPEC"} (content-type: application/json)',
                )
            )
        if self.api_key is not None:
            bearer = request.header("authorization").removeprefix("Bearer ").strip()
            if self.api_key not in (request.header("x-goog-api-key"), bearer):
                return _plain_envelope(
                    ApiError(401, "this simulator has a key: send it as Authorization: Bearer KEY")
                )
        return None

    def _control(self, request: Request) -> Response:
        path = request.path
        if path == "/_sim/stats" and request.method == "GET":
            return json_response(self.stats())
        if path == "/_sim/health" and request.method == "GET":
            return json_response({"ok": True, "protocols": list(PROTOCOL_NAMES)})
        if path == "/_sim/reset" and request.method == "POST":
            self.reset()
            return json_response({"ok": True})
        if path == "/_sim/faults" and request.method in ("GET", "POST", "PUT"):
            if request.method != "GET":
                refused = self._refuse_rule_change(request)
                if refused is not None:
                    return refused
                try:
                    text = json.loads(request.body.decode("utf-8") or "{}").get("faults", "")
                except (ValueError, AttributeError):
                    return _plain_envelope(ApiError(400, 'send {"faults": "SPEC"} as JSON'))
                if not isinstance(text, str):
                    return _plain_envelope(ApiError(400, 'send {"faults": "SPEC"}: the spec is a string'))
                try:
                    self.set_faults(text)
                except ValueError as error:
                    return _plain_envelope(ApiError(400, str(error)))
            return json_response({"faults": str(self._spec)})
        return _plain_envelope(ApiError(404, f"no control endpoint {request.method} {path}"))
