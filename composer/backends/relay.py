"""A generic Veo relay: a third-party service with its own small JSON protocol.

What lives here: :data:`CAPABILITIES` (Veo 3.1-like, as data, taking both image-guidance
knobs) and :class:`RelayBackend`: ``POST {base}/videos/generate`` (``style_strength`` and
``motion_intensity`` in ``parameters`` when set) or ``POST {base}/videos:extend`` -> ``{"videoId"}``,
``GET {base}/videos/{id}`` -> ``{status, progress, videoUrl, error}``, then ``videoUrl``
downloaded (the bearer key goes along only when that URL is on the relay's own host). What
does not: retries (``jobs/``), HTTP (``http.py``).

There is no official host: ``--base-url`` or ``COMPOSER_RELAY_BASE_URL`` is required, and the
relay's takes are always keyed by that URL (``default_endpoint`` is False).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

from composer.backends import BACKENDS, remote
from composer.backends.base import Capabilities, GenerationRequest, TakeInput
from composer.backends.gemini import VEO_PRICES
from composer.backends.http import Http, dumps
from composer.backends.remote import Operation, OperationStatus, RemoteBackend
from composer.errors import EnvironmentProblem, RetryableError, TerminalError

KEY_ENV = BACKENDS["relay"].key_variables[0]
BASE_URL_ENV = BACKENDS["relay"].base_url_variable

CAPABILITIES = Capabilities(
    name="relay",
    base_durations_s=(4.0, 6.0, 8.0),
    extension_step_s=7.0,
    extendable_base_durations_s=(8.0,),
    max_extensions=20,
    max_total_s=148.0,
    native_fps="24",
    # The protocol names a resolution but no aspect ratio: landscape only. Extension is 720p, as on Veo.
    resolutions=((1280, 720), (1920, 1080)),
    extension_resolutions=((1280, 720),),
    first_frame=True,
    last_frame=False,
    max_reference_images=0,
    audio=True,
    models={"fast": "veo-3.1-fast", "quality": "veo-3.1"},
    price_per_s={
        "veo-3.1": VEO_PRICES["veo-3.1-generate-preview"],
        "veo-3.1-fast": VEO_PRICES["veo-3.1-fast-generate-preview"],
    },
    needs_key=True,
    # Every relay has its own quota and no official one exists; --rpm (or the config) sets it.
    requests_per_minute=None,
    poll_interval_s=10.0,
    # The seed's image-guidance knobs: this backend honours both (sent in `parameters`).
    style_strength=True,
    motion_intensity=True,
)

_RUNNING = {"PENDING", "PROCESSING", "QUEUED", "RUNNING", "IN_PROGRESS"}
_DONE = {"COMPLETED", "SUCCEEDED", "SUCCESS", "DONE"}
_FAILED = {"FAILED", "ERROR", "CANCELLED", "CANCELED", "EXPIRED"}
_FILTER_WORDS = ("safety", "blocked", "filter")
_TRANSIENT_WORDS = ("internal", "unavailable", "temporar", "overload", "timed out", "timeout")


class RelayBackend(RemoteBackend):
    """A Veo relay behind ``videos/generate``, ``videos:extend`` and ``videos/{id}``."""

    capabilities = CAPABILITIES
    key_env = KEY_ENV

    def __init__(
        self, *, base_url: str | None = None, proxy: str | None = None, model: str | None = None
    ) -> None:
        key = remote.require_key("relay", KEY_ENV)
        base = base_url or remote.env_first(BASE_URL_ENV)
        if not base:
            raise EnvironmentProblem(
                f"the relay backend needs the relay's address: set {BASE_URL_ENV} or pass --base-url"
            )
        self.base_url = base.rstrip("/")
        self.model = CAPABILITIES.resolve_model(model or "fast")
        self.http = Http(
            service="relay",
            base_url=self.base_url,
            key_env=KEY_ENV,
            headers={"accept": "application/json"},
            auth={"authorization": f"Bearer {key}"},
            secrets=(key,),
            proxy=proxy,
        )

    def default_endpoint(self) -> bool:
        return False

    async def submit(self, request: GenerationRequest, inputs: TakeInput) -> Operation:
        remote.check_request(CAPABILITIES, request)
        model = CAPABILITIES.resolve_model(request.model or self.model)
        prompt = remote.prompt_text(request)
        if request.kind == "extend":
            parent = remote.parent_state("relay", inputs)
            source = parent.get("video_id") or parent.get("operation")
            if not isinstance(source, str) or not source:
                raise TerminalError("the parent take has no relay video id to extend; regenerate the parent")
            what, path = "extension", "videos:extend"
            payload: dict[str, Any] = {
                "sourceVideoId": source,
                "extendDuration": round(request.duration_s),
                "prompt": prompt,
            }
        else:
            what, path = "create", "videos/generate"
            payload = {
                "model": model,
                "prompt": prompt,
                "parameters": {
                    "resolution": remote.resolution_label(request.width, request.height),
                    "duration": round(request.duration_s),
                    "fps": 24,
                    # The image-guidance knobs, beside resolution and duration as the seed sends
                    # them; only those set (the request holds only knobs this backend takes).
                    **request.knobs(),
                },
            }
            if inputs.first_frame_path is not None:
                image = remote.png_bytes(Path(inputs.first_frame_path), request.width, request.height)
                payload["referenceImage"] = {
                    "imageContent": base64.b64encode(image).decode("ascii"),
                    "mimeType": "image/png",
                }
        body = await self.http.json(
            "POST",
            path,
            what=what,
            # An extension names no model: its 404 is about the source video.
            model=model if request.kind == "generate" else "",
            content=dumps(payload),
            headers={"content-type": "application/json"},
        )
        video_id = remote.created_id("relay", body, "videoId", what=what, redact=self.http.redact)
        return Operation(
            backend="relay", id=video_id, base_url=self.base_url, data={"model": model, "kind": request.kind}
        )

    async def poll(self, operation: Operation) -> OperationStatus:
        remote.check_operation(operation, "relay", self.base_url)
        body = await self.http.json("GET", f"videos/{quote(operation.id, safe='')}", what="poll")
        if not isinstance(body, dict):
            raise RetryableError(
                self.http.redact(f"relay answered a poll with {remote.describe(body)} instead of a job")
            )
        status = str(body.get("status") or "").upper()
        progress = _progress(body.get("progress"))
        if status in _RUNNING:
            return OperationStatus(state="running", progress=progress)
        if status in _DONE:
            url = body.get("videoUrl")
            if not isinstance(url, str) or not url:
                raise RetryableError(f"relay reported video {operation.id} completed without a videoUrl")
            return OperationStatus(state="succeeded", progress=1.0, video={"url": url, "id": operation.id})
        if status in _FAILED:
            message = self.http.redact(
                _error_text(body.get("error")) or f"the job ended {status} without a message"
            )
            text = message.lower()
            if any(word in text for word in _FILTER_WORDS):
                return OperationStatus(state="filtered", message=message, code=status)
            # The protocol has no error codes; an upstream outage is the failure worth resubmitting.
            retryable = any(word in text for word in _TRANSIENT_WORDS)
            return OperationStatus(state="failed", message=message, code=status, retryable=retryable)
        raise RetryableError(
            self.http.redact(
                f"relay answered a poll with an unknown status {status!r} ({remote.describe(body)})"
            )
        )

    async def download(self, operation: Operation, status: OperationStatus, dest: Path) -> None:
        url = status.video.get("url")
        if not isinstance(url, str) or not url:
            raise TerminalError(f"relay job {operation.id} has no videoUrl to download")
        # A relative URL is on the relay itself; an absolute one may be a CDN, which gets no key.
        await self.http.download(urljoin(self.base_url + "/", url), dest)

    def clip_state(self, operation: Operation, status: OperationStatus) -> dict[str, Any]:
        # Extension names the source by its videoId; the download URL may be signed and expire.
        return {
            "backend": "relay",
            "operation": operation.id,
            "video_id": str(status.video.get("id") or operation.id),
        }

    async def aclose(self) -> None:
        await self.http.aclose()


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or error.get("code") or "")
    return str(error) if error else ""


def _progress(value: Any) -> float | None:
    # Relays report 0..100 or 0..1; either way it is a fraction here.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return max(0.0, min(1.0, float(value) / 100.0 if value > 1 else float(value)))
    return None
