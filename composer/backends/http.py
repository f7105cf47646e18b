"""HTTP for the API backends: the one module that uses httpx, and the map from answers to errors.

What lives here: :class:`Http` (an ``httpx.AsyncClient`` with proxy support, redirects
followed, auth headers sent only to the service's own hosts, secrets redacted from every
message), :func:`error_for` (a non-2xx answer ->
``RetryableError`` / ``TerminalError`` with the likely fix), :func:`retry_delay` (the wait a
service asks for, from ``retry-after-ms``, ``Retry-After`` or Google's
``RetryInfo.retryDelay``) and streamed downloads that notice truncation and are bounded
(:class:`DownloadLimits`: a size cap derived from what was asked for, video content types
only, a total deadline; error bodies are read up to :data:`ERROR_BODY_BYTES`). What does not:
any one protocol's paths and bodies (the backend modules) or the decision to retry (``jobs/``).

Proxies: httpx reads ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` from the
environment (``trust_env``); ``proxy=`` (the ``--proxy`` option) overrides them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import json
import math
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from composer.errors import ComposerError, EnvironmentProblem, ModelRefused, RetryableError, TerminalError
from composer.files import temp_beside
from composer.urls import redact_text, redact_url, secret_parts

#: Generation calls return quickly (the work is a long-running operation), downloads may be large.
TIMEOUT = httpx.Timeout(120.0, connect=15.0)
_RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}

#: An error answer is read up to this many bytes (and for at most ERROR_BODY_S seconds): a
#: message and a status word fit in a few hundred; a hostile or broken server may send gigabytes.
ERROR_BODY_BYTES = 64 * 1024
ERROR_BODY_S = 10.0
#: Bytes per pixel per frame a delivered video may take. H.264 from these services runs at
#: about 0.02 (1080p at 10 Mbit/s); 0.5 is a margin of 25 and still stops a 50 GB answer.
DOWNLOAD_BYTES_PER_PIXEL = 0.5
#: Added to every cap: audio, container, a short clip's keyframes.
DOWNLOAD_FLOOR_BYTES = 16 * 1024 * 1024
#: No download is ever larger than this, whatever was asked for.
DOWNLOAD_CEILING_BYTES = 2 * 1024 * 1024 * 1024
#: A download's total deadline: this, plus the cap read at DOWNLOAD_MIN_RATE (bytes per second).
DOWNLOAD_BASE_S = 60.0
DOWNLOAD_MIN_RATE = 4 * 1024 * 1024
#: Content types a video may come with: video/* and the generic binary types that object
#: stores (signed URLs, Cloud Storage) answer with (or none at all). Anything else (an HTML
#: login page, JSON) is not the video, whatever its size.
_BINARY_TYPES = {"application/octet-stream", "binary/octet-stream", "application/binary", "application/mp4"}


@dataclass(frozen=True)
class DownloadLimits:
    """What one download may be: at most ``max_bytes``, finished within ``deadline_s``.

    ``asked`` says what was asked for, in words, for messages ("8 s of 1280x720 at 24 fps").
    """

    max_bytes: int
    deadline_s: float
    asked: str

    @classmethod
    def for_video(
        cls, seconds: float, width: int, height: int, fps: float, *, deadline_s: float | None = None
    ) -> DownloadLimits:
        """The limits for a clip of ``seconds`` at ``width`` x ``height`` and ``fps``.

        Size: frames x pixels x :data:`DOWNLOAD_BYTES_PER_PIXEL` + :data:`DOWNLOAD_FLOOR_BYTES`,
        never above :data:`DOWNLOAD_CEILING_BYTES`. Deadline: :data:`DOWNLOAD_BASE_S` plus the
        cap at :data:`DOWNLOAD_MIN_RATE`, unless ``deadline_s`` is given.
        """
        frames = max(1.0, seconds * fps)
        size = int(frames * width * height * DOWNLOAD_BYTES_PER_PIXEL) + DOWNLOAD_FLOOR_BYTES
        max_bytes = min(DOWNLOAD_CEILING_BYTES, size)
        deadline = deadline_s if deadline_s is not None else DOWNLOAD_BASE_S + max_bytes / DOWNLOAD_MIN_RATE
        return cls(max_bytes, deadline, f"{seconds:g} s of {width}x{height} at {fps:g} fps")


#: Limits when nobody said what was asked for (a direct ``Http.download`` call).
DEFAULT_LIMITS = DownloadLimits(DOWNLOAD_CEILING_BYTES, 1800.0, "a video")
_LIMITS: ContextVar[DownloadLimits | None] = ContextVar("composer_download_limits", default=None)


@contextlib.contextmanager
def download_limits(limits: DownloadLimits) -> Iterator[DownloadLimits]:
    """Downloads started inside this block (in this task) use ``limits``.

    A context variable, so the job runner, which knows what was asked for, bounds the download
    of every protocol without each backend's ``download`` passing the request along.
    """
    token = _LIMITS.set(limits)
    try:
        yield limits
    finally:
        _LIMITS.reset(token)


def _megabytes(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


def _is_video_type(content_type: str) -> bool:
    """Whether an answer's Content-Type may be a video. None given is allowed (some file servers
    send none; the bytes are decoded and checked anyway); a declared non-video type is not."""
    kind = content_type.split(";")[0].strip().lower()
    return not kind or kind.startswith("video/") or kind in _BINARY_TYPES


async def _bounded_body(response: httpx.Response) -> bytes:
    """At most :data:`ERROR_BODY_BYTES` of an answer's body, read for at most :data:`ERROR_BODY_S`."""
    chunks: list[bytes] = []
    total = 0

    async def read() -> None:
        nonlocal total
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            total += len(chunk)
            if total >= ERROR_BODY_BYTES:
                return

    with contextlib.suppress(asyncio.TimeoutError, httpx.HTTPError):
        await asyncio.wait_for(read(), ERROR_BODY_S)
    return b"".join(chunks)[:ERROR_BODY_BYTES]


def _with_body(response: httpx.Response, body: bytes) -> httpx.Response:
    """A copy of a streamed ``response`` holding ``body`` (already decoded), for :func:`error_for`."""
    headers = [
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length")
    ]
    return httpx.Response(response.status_code, headers=headers, content=body, request=response.request)


_DURATION = re.compile(r"^\s*([0-9.]+)\s*s\s*$")


def retry_delay(response: httpx.Response, body: Any = None) -> float | None:
    """Seconds the service asked us to wait, or None.

    Order: ``retry-after-ms`` (OpenAI), ``Retry-After`` (seconds or an HTTP date), then
    ``google.rpc.RetryInfo.retryDelay`` in the error details (``"53s"``). A value that is
    not a finite number of seconds is ignored, so a garbled header never becomes an endless wait.
    """
    headers = response.headers
    value = _seconds(headers.get("retry-after-ms"))
    if value is not None:
        return max(0.0, value / 1000.0)
    raw = headers.get("retry-after")
    value = _seconds(raw)
    if value is not None:
        return max(0.0, value)
    if raw:
        try:
            parsed = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):  # 3.10 raises TypeError, 3.11+ ValueError
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:  # "-0000" dates parse naive; HTTP dates are always UTC
                parsed = parsed.replace(tzinfo=datetime.timezone.utc)
            return max(0.0, parsed.timestamp() - time.time())
    if body is None:
        body = _body(response)
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = detail.get("retryDelay")
            if isinstance(delay, dict):  # the proto JSON form {"seconds": 53, "nanos": 0}
                seconds = _seconds(delay.get("seconds", 0))
                nanos = _seconds(delay.get("nanos", 0))
                if seconds is not None and nanos is not None:
                    return max(0.0, seconds + nanos / 1e9)
                continue
            match = _DURATION.match(str(delay))
            if match:
                seconds = _seconds(match.group(1))
                if seconds is not None:
                    return seconds
    return None


def _seconds(value: Any) -> float | None:
    """A finite number from a header or JSON value, else None."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
        return None


def service_message(body: Any, response: httpx.Response) -> tuple[str, str]:
    """(message, status word) from a Google, OpenAI or plain error body."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            message = str(error.get("message") or error.get("detail") or "")
            status = str(error.get("status") or error.get("code") or error.get("type") or "")
            return message, status
        if isinstance(error, str):
            return error, ""
    text = response.text.strip() if response.content else ""
    return text[:300], ""


def error_for(
    response: httpx.Response, *, service: str, what: str, key_env: str, model: str = ""
) -> RetryableError | TerminalError:
    """The error for a non-2xx answer, with what to do about it.

    A 400 (not a bad key) or 404 to a create or an extension is :class:`ModelRefused`: the
    model would not take the request, so another model may.
    """
    body = _body(response)
    message, status_word = service_message(body, response)
    code = response.status_code
    said = f"{code}{' ' + status_word if status_word and status_word != str(code) else ''}"
    detail = f": {message}" if message else ""
    forced = response.headers.get("x-should-retry", "").lower()
    if ((code in _RETRY_STATUSES or code >= 500) and forced != "false") or forced == "true":
        # A 429 was refused before any work started; a 5xx or 408 may have been received.
        return RetryableError(
            f"{service} answered {said} to the {what}{detail}",
            retry_delay(response, body),
            reached_server=code != 429,
        )
    bad_key = code in (400, 403) and _bad_key(body, message)
    if bad_key:
        # Google answers a wrong API key with 400 or 403 (reason API_KEY_INVALID), not 401.
        fix = f"the key was not accepted; check {key_env}"
    elif code == 400:
        fix = "the service refused this input; check the duration, size and images the model accepts"
    elif code == 401:
        fix = f"the key was not accepted; check {key_env}"
    elif code == 403:
        fix = (
            f"permission denied; check that {key_env} belongs to a project with this API enabled "
            "and billing set up"
        )
    elif code == 404:
        fix = (
            f"not found; the model id {model!r} may be unknown to this service"
            if model and what in ("create", "extension")
            else "not found; the operation or file may have expired or belong to another service"
        )
    else:
        fix = "retrying will not help"
    text = f"{service} answered {said} to the {what}{detail} ({fix})"
    if code in (400, 404) and what in ("create", "extension") and not bad_key:
        return ModelRefused(text)
    return TerminalError(text)


def _bad_key(body: Any, message: str) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("reason", "")).startswith("API_KEY_"):
            return True
    return "api key not valid" in message.lower()


class Http:
    """One service's HTTP client: base URL, auth headers, proxy; secrets never reach a message.

    ``headers`` go with every request; ``auth`` headers only to the base URL's origin and to
    ``auth_hosts`` (origins as :func:`origin` writes them, or https host suffixes such as
    ``".googleapis.com"``). The rule is applied to every hop of a redirect too, so a key never
    follows a redirect to a blob store or CDN (httpx itself strips only ``Authorization``, and
    not even that from an http -> https hop; it never strips ``x-goog-api-key``).
    """

    def __init__(
        self,
        *,
        service: str,
        base_url: str,
        key_env: str,
        headers: Mapping[str, str] | None = None,
        auth: Mapping[str, str] | None = None,
        auth_hosts: tuple[str, ...] = (),
        secrets: tuple[str, ...] = (),
        proxy: str | None = None,
        timeout: httpx.Timeout = TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.service, self.base_url, self.key_env = service, base_url.rstrip("/"), key_env
        self._transport = transport  # tests pass an httpx.MockTransport
        self._headers = dict(headers or {})
        self._auth = dict(auth or {})
        self._secrets = _redactable(secrets)
        if proxy and urlsplit(proxy).password is not None:
            raise EnvironmentProblem(
                f"the proxy URL {redact_url(proxy)!r} carries a password; a command line is seen by others "
                "(shell history, the process list): put the proxy with its password in HTTPS_PROXY instead"
            )
        self._proxy, self._timeout = proxy, timeout
        self._auth_hosts = (origin(_base_url(service, self.base_url)), *auth_hosts)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        # Made on first use, inside the event loop that will also close it.
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers=self._headers,
                proxy=self._proxy,
                trust_env=True,
                timeout=self._timeout,
                follow_redirects=True,
                event_hooks={"request": [self._authorize]},
                transport=self._transport,
            )
        return self._client

    def set_auth(self, auth: Mapping[str, str], secrets: tuple[str, ...] = ()) -> None:
        """Replace the auth headers (a refreshed access token) and add their secrets to redaction."""
        self._auth = dict(auth)
        self._secrets = _redactable((*self._secrets, *secrets))

    def trusted(self, url: str | httpx.URL) -> bool:
        """Whether ``url`` is a host that may see the auth headers."""
        target = httpx.URL(url) if isinstance(url, str) else url
        where = origin(target)
        host = target.host.lower()
        for allowed in self._auth_hosts:
            if allowed.startswith(".") and host.endswith(allowed) and target.scheme == "https":
                return True
            if allowed == where:
                return True
        return False

    async def _authorize(self, request: httpx.Request) -> None:
        # Runs for the first request and for every redirect hop httpx builds from it.
        if self.trusted(request.url):
            request.headers.update(self._auth)
        else:
            for name in self._auth:
                request.headers.pop(name, None)

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def redact(self, text: str) -> str:
        """``text`` without the keys this client knows, nor credentials in any URL in it."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact_text(text)

    def _transport_error(self, exc: Exception, what: str) -> ComposerError:
        """The error tree's view of an httpx exception raised before an answer arrived."""
        name = type(exc).__name__
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
            return EnvironmentProblem(
                self.redact(
                    f"{self.service} base URL {self.base_url!r} is not a usable http(s) URL ({exc}); "
                    "check --base-url and the backend's base-URL variable"
                )
            )
        if isinstance(exc, httpx.ProxyError):
            return RetryableError(
                self.redact(
                    f"the proxy refused the {what} to {self.service} ({exc}); check --proxy or HTTPS_PROXY"
                ),
                reached_server=False,
            )
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
            return RetryableError(
                self.redact(f"cannot reach {self.service} at {self.base_url} for the {what} ({name}: {exc})"),
                reached_server=False,
            )
        if isinstance(exc, httpx.TooManyRedirects):
            return TerminalError(self.redact(f"{self.service} redirected the {what} in a loop ({exc})"))
        return RetryableError(
            self.redact(f"the connection to {self.service} broke during the {what} ({name}: {exc})"),
            reached_server=True,
        )

    async def request(
        self, method: str, path: str, *, what: str, model: str = "", **kwargs: Any
    ) -> httpx.Response:
        """Send one request; a non-2xx answer or a network failure raises the error tree."""
        try:
            response = await self.client.send(
                self.client.build_request(method, self.url(path), **kwargs), stream=True
            )
            try:
                if response.is_success:
                    await response.aread()
                    return response
                body = await _bounded_body(response)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, what) from None
        error = error_for(
            _with_body(response, body), service=self.service, what=what, key_env=self.key_env, model=model
        )
        error.args = (self.redact(str(error)),)
        raise error

    async def json(self, method: str, path: str, *, what: str, model: str = "", **kwargs: Any) -> Any:
        """Send one request and read a JSON answer (anything else is a retryable fault)."""
        response = await self.request(method, path, what=what, model=model, **kwargs)
        return self.read_json(response, what=what)

    def read_json(self, response: httpx.Response, *, what: str) -> Any:
        """The JSON body of a 2xx answer; an answer that is not JSON is a retryable fault.

        Retryable because a proxy's or load balancer's HTML page is usually passing trouble;
        ``reached_server`` stays True since the request itself may have been taken.
        """
        try:
            return response.json()
        except (ValueError, UnicodeDecodeError):
            raise RetryableError(
                f"{self.service} answered the {what} with something that is not JSON "
                f"({response.headers.get('content-type', 'no content type')}, {len(response.content)} bytes)"
            ) from None

    async def download(self, path: str, dest: Path, *, what: str = "download", **kwargs: Any) -> int:
        """Stream a file to ``dest`` (written under a temporary name); returns its size.

        A connection that ends before ``Content-Length`` bytes arrived is a retryable fault,
        and nothing is left at ``dest``. The download is bounded by the :class:`DownloadLimits`
        in force (:func:`download_limits`): an answer that is not a video, that declares or sends
        more than the cap, or that is not finished by the deadline is a :class:`TerminalError`
        (retrying would meet the same server), and nothing is left behind either.
        """
        limits = _LIMITS.get() or DEFAULT_LIMITS
        # A client-wide "accept: application/json" would ask a file server for the wrong thing.
        kwargs["headers"] = {"accept": "*/*", **dict(kwargs.get("headers") or {})}
        fd, tmp = temp_beside(dest, ".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                try:
                    size, expected, received = await asyncio.wait_for(
                        self._stream_to(fh, path, what, limits, kwargs), limits.deadline_s
                    )
                except asyncio.TimeoutError:
                    raise TerminalError(
                        f"the {what} from {self.service} did not finish within its {limits.deadline_s:g} s "
                        f"deadline ({_megabytes(fh.tell())} had arrived of {limits.asked}); the service or "
                        "the network is far too slow; try again later"
                    ) from None
                except httpx.HTTPError as exc:
                    raise self._transport_error(exc, what) from None
            if expected is not None and expected.isdigit() and int(expected) != received:
                raise RetryableError(
                    f"the {what} from {self.service} was cut short ({received} of {expected} bytes)"
                )
            if size == 0:
                raise RetryableError(f"the {what} from {self.service} was empty")
            os.replace(tmp, dest)
            return size
        finally:
            tmp.unlink(missing_ok=True)

    async def _stream_to(
        self, fh: Any, path: str, what: str, limits: DownloadLimits, kwargs: dict[str, Any]
    ) -> tuple[int, str | None, int]:
        """Write the answer's body to ``fh``; (bytes written, Content-Length, bytes on the wire)."""
        async with self.client.stream("GET", self.url(path), **kwargs) as response:
            if not response.is_success:
                body = await _bounded_body(response)
                error = error_for(
                    _with_body(response, body), service=self.service, what=what, key_env=self.key_env
                )
                error.args = (self.redact(str(error)),)
                raise error
            content_type = response.headers.get("content-type", "")
            if not _is_video_type(content_type):
                raise TerminalError(
                    f"{self.service} answered the {what} with {content_type}, "
                    f"not a video ({limits.asked} was asked for); check the base URL: a proxy or login "
                    "page may be answering in the service's place"
                )
            expected = response.headers.get("content-length")
            if expected is not None and expected.isdigit() and int(expected) > limits.max_bytes:
                raise TerminalError(
                    f"{self.service} offered {_megabytes(int(expected))} for the {what} of {limits.asked}; "
                    f"at most {_megabytes(limits.max_bytes)} is accepted for that, so nothing was downloaded"
                )
            encoded = response.headers.get("content-encoding", "identity").lower()
            async for chunk in response.aiter_bytes(1 << 20):
                fh.write(chunk)
                if fh.tell() > limits.max_bytes:
                    raise TerminalError(
                        f"{self.service} sent more than {_megabytes(limits.max_bytes)} for the {what} of "
                        f"{limits.asked}, the most accepted for that; the download was stopped"
                    )
            size = fh.tell()
            # Content-Length counts the bytes on the wire, which differ from the
            # decoded size when the server compressed them.
            received = response.num_bytes_downloaded if encoded != "identity" else size
            return size, expected, received

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


#: Shorter "secrets" are not redacted: a one-letter test key would turn every "t" in a message into
#: "***", and no real key or token is that short (Gemini keys have 39 characters, OpenAI's 50+).
MIN_SECRET_LENGTH = 8


def _redactable(secrets: tuple[str, ...]) -> tuple[str, ...]:
    # Longest first, so a secret that contains another is replaced whole.
    unique = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
    return tuple(sorted(unique, key=len, reverse=True))


def _base_url(service: str, text: str) -> httpx.URL:
    """The parsed base URL, or EnvironmentProblem at construction (not at the first request).

    A base URL carrying a credential is refused, wherever it came from: it would be printed in
    messages and stored with every operation and take.
    """
    secrets = secret_parts(text)
    if secrets:
        raise EnvironmentProblem(
            f"{service} base URL {redact_url(text)!r} carries a credential ({', '.join(secrets)}); keys come "
            "only from the backend's key variable (GEMINI_API_KEY, OPENAI_API_KEY, COMPOSER_RELAY_API_KEY, "
            "GOOGLE_OAUTH_ACCESS_TOKEN): remove it from --base-url and the backend's base-URL variable"
        )
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        reason = f" ({exc})"
    else:
        if url.scheme in ("http", "https") and url.host:
            return url
        reason = ""
    raise EnvironmentProblem(
        f"{service} base URL {text!r} is not an http(s) URL{reason}; "
        "check --base-url and the backend's base-URL variable"
    )


def origin(url: str | httpx.URL) -> str:
    """``scheme://host:port`` with the default port filled in, for comparing hosts."""
    url = httpx.URL(url) if isinstance(url, str) else url
    port = url.port or {"http": 80, "https": 443}.get(url.scheme, 0)
    return f"{url.scheme}://{url.host.lower()}:{port}"


def dumps(data: Any) -> str:
    """Compact JSON for request bodies (what the SDKs send)."""
    return json.dumps(data, separators=(",", ":"))
