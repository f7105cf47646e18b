"""The OpenAI Videos API shape: Sora 2, and relays that serve Veo through ``/v1/videos``.

What lives here: the capabilities of each model family as data (:data:`SORA_2`,
:data:`SORA_2_PRO`, :data:`VEO_RELAY`, chosen by :func:`capabilities_for`) and
:class:`OpenAIBackend`: ``POST videos`` (multipart with an ``input_reference`` image, else
JSON) or ``POST videos/extensions`` -> ``GET videos/{id}`` (honouring ``openai-poll-after-ms``)
-> ``GET videos/{id}/content?variant=video``. What does not: retries (``jobs/``), HTTP
(``http.py``). The ``openai`` SDK is not used: it refuses ``video={"id": ...}`` for extensions
client-side, so composer speaks the wire format it sends (``shared/reference/video-apis.md`` §4).

A module named ``openai`` inside this package does not shadow the SDK: imports are absolute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from composer.backends import BACKENDS, remote
from composer.backends.base import Capabilities, GenerationRequest, TakeInput
from composer.backends.gemini import VEO_PRICES
from composer.backends.http import Http, dumps
from composer.backends.remote import Operation, OperationStatus, RemoteBackend
from composer.errors import RetryableError, TerminalError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
KEY_ENV = BACKENDS["openai"].key_variables[0]
BASE_URL_ENV = BACKENDS["openai"].base_url_variable
#: "0" / "false" / "no" / "off" for relays that do not offer ``POST /videos/extensions``.
EXTENSIONS_ENV = "COMPOSER_OPENAI_EXTENSIONS"

#: List prices, USD per generated second (late 2025).
SORA_PRICES = {"sora-2": 0.10, "sora-2-pro": 0.30}
_MODELS = {"fast": "sora-2", "quality": "sora-2-pro"}

SORA_2 = Capabilities(
    name="openai",
    # The guide: "Both sora-2 and sora-2-pro support 16- and 20-second generations" (the SDK's
    # "4"/"8"/"12" literals are stale and not enforced).
    base_durations_s=(4.0, 8.0, 12.0, 16.0, 20.0),
    # "Each extension can add up to 20 seconds … up to six times, for a maximum total length of
    # 120 seconds"; the seconds allowed are 4, 8, 12, 16, 20 and the planner takes one step.
    extension_step_s=4.0,
    extendable_base_durations_s=None,
    max_extensions=6,
    max_total_s=120.0,
    # OpenAI documents no frame rate for Sora; composer conforms whatever arrives to the output's.
    native_fps=None,
    resolutions=((1280, 720), (720, 1280)),
    extension_resolutions=None,
    first_frame=True,
    last_frame=False,
    # "Extensions … don't support characters or image references"; create takes one image.
    max_reference_images=0,
    audio=True,
    models=dict(_MODELS),
    price_per_s=dict(SORA_PRICES),
    needs_key=True,
    # Sora limits depend on the account's usage tier; there is no one figure to declare.
    requests_per_minute=None,
    poll_interval_s=5.0,
)

SORA_2_PRO = SORA_2.model_copy(
    update={
        "resolutions": ((1280, 720), (720, 1280), (1792, 1024), (1024, 1792), (1920, 1080), (1080, 1920)),
    }
)

#: A relay serving Veo through /v1/videos: Veo's durations and sizes, and no extension (relays
#: rarely offer it; the planner then starts each segment from the previous one's last frame).
VEO_RELAY = Capabilities(
    name="openai",
    base_durations_s=(4.0, 6.0, 8.0),
    extension_step_s=None,
    max_extensions=0,
    max_total_s=8.0,
    native_fps="24",
    resolutions=((1280, 720), (720, 1280)),
    first_frame=True,
    last_frame=False,
    max_reference_images=0,
    audio=True,
    models={"fast": "veo-3.1-fast-generate-preview", "quality": "veo-3.1-generate-preview"},
    price_per_s=dict(VEO_PRICES),
    needs_key=True,
    requests_per_minute=10,
    poll_interval_s=10.0,
)

#: The default family (sora-2), for callers that name no model.
CAPABILITIES = SORA_2

_FAILED = {"failed", "cancelled", "canceled", "expired", "error"}
_RUNNING = {"queued", "in_progress", "pending", "processing", "running", "submitted"}
_DONE = {"completed", "succeeded", "success"}
_FILTER_WORDS = ("moderation", "safety", "policy")


def extensions_enabled(flag: bool | None = None) -> bool:
    """``flag`` when given, else ``COMPOSER_OPENAI_EXTENSIONS`` (on unless "0", "false", "no", "off")."""
    if flag is not None:
        return flag
    value = remote.env_first(EXTENSIONS_ENV)
    return value is None or value.lower() not in ("0", "false", "no", "off")


def capabilities_for(model: str | None = None, *, extensions: bool | None = None) -> Capabilities:
    """The capabilities of ``model`` (an id or an alias): Sora 2, Sora 2 Pro, or Veo behind a relay."""
    model_id = _MODELS.get(model or "fast", model or "sora-2")
    if model_id.startswith("veo-"):
        family = VEO_RELAY
        price = _veo_price(model_id)
    elif model_id.startswith("sora-2-pro"):
        family = SORA_2_PRO
        price = SORA_PRICES["sora-2-pro"]
    else:
        # Dated snapshots (sora-2-2025-12-08) and unknown ids a relay serves: Sora 2's shape.
        family = SORA_2
        price = SORA_PRICES["sora-2"]
    update: dict[str, Any] = {"price_per_s": {**family.price_per_s, model_id: price}}
    if not extensions_enabled(extensions):
        update.update(extension_step_s=None, max_extensions=0, max_total_s=max(family.base_durations_s))
    return family.model_copy(update=update)


def _veo_price(model_id: str) -> float:
    # A relay's own Veo ids ("veo-3.1-fast") priced by their tier word.
    if model_id in VEO_PRICES:
        return VEO_PRICES[model_id]
    if "lite" in model_id:
        return VEO_PRICES["veo-3.1-lite-generate-preview"]
    if "fast" in model_id:
        return VEO_PRICES["veo-3.1-fast-generate-preview"]
    return VEO_PRICES["veo-3.1-generate-preview"]


class OpenAIBackend(RemoteBackend):
    """The OpenAI Videos API: create or extend, retrieve, download content.

    ``capabilities`` depends on the model (and on ``extensions``), so each instance sets its own.
    """

    capabilities = CAPABILITIES
    key_env = KEY_ENV

    def __init__(
        self,
        *,
        base_url: str | None = None,
        proxy: str | None = None,
        model: str | None = None,
        extensions: bool | None = None,
    ) -> None:
        key = remote.require_key("openai", KEY_ENV)
        self.base_url = (base_url or remote.env_first(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        self.extensions = extensions_enabled(extensions)
        self.model = _MODELS.get(model or "fast", model or "sora-2")
        self.capabilities = capabilities_for(self.model, extensions=self.extensions)
        self.http = Http(
            service="openai",
            base_url=self.base_url,
            key_env=KEY_ENV,
            headers={"accept": "application/json"},
            auth={"authorization": f"Bearer {key}"},
            secrets=(key,),
            proxy=proxy,
        )

    def default_endpoint(self) -> bool:
        return self.base_url == DEFAULT_BASE_URL

    async def submit(self, request: GenerationRequest, inputs: TakeInput) -> Operation:
        model = _MODELS.get(request.model or self.model, request.model or self.model)
        remote.check_request(capabilities_for(model, extensions=self.extensions), request)
        prompt = remote.prompt_text(request)
        seconds = str(round(request.duration_s))
        if request.kind == "extend":
            parent = remote.parent_state("openai", inputs)
            parent_id = parent.get("id") or parent.get("operation")
            if not isinstance(parent_id, str) or not parent_id:
                raise TerminalError("the parent take has no OpenAI video id to extend; regenerate the parent")
            what = "extension"
            # JSON with {"video": {"id"}}: the form the SDK cannot send but the API documents. No
            # model goes with it, so a 404 here is about the parent video, not the model.
            response = await self.http.request(
                "POST",
                "videos/extensions",
                what=what,
                content=dumps({"video": {"id": parent_id}, "prompt": prompt, "seconds": seconds}),
                headers={"content-type": "application/json"},
            )
        else:
            what = "create"
            fields = {
                "model": model,
                "prompt": prompt,
                "seconds": seconds,
                "size": f"{request.width}x{request.height}",
            }
            if inputs.first_frame_path is not None:
                # "The image must match the target video's resolution": cropped to the exact size.
                image = remote.png_bytes(Path(inputs.first_frame_path), request.width, request.height)
                response = await self.http.request(
                    "POST",
                    "videos",
                    what=what,
                    model=model,
                    data=fields,
                    files={"input_reference": ("reference.png", image, "image/png")},
                )
            else:
                response = await self.http.request(
                    "POST",
                    "videos",
                    what=what,
                    model=model,
                    content=dumps(fields),
                    headers={"content-type": "application/json"},
                )
        body = self.http.read_json(response, what=what)
        video_id = remote.created_id("openai", body, "id", what=what, redact=self.http.redact)
        return Operation(
            backend="openai", id=video_id, base_url=self.base_url, data={"model": model, "kind": request.kind}
        )

    async def find_created(
        self, request: GenerationRequest, since: float, exclude: frozenset[str] = frozenset()
    ) -> list[Operation] | None:
        """Videos listed since ``since`` whose model, prompt, seconds and size are the request's.

        ``GET /v1/videos`` (newest first, cursor pages) is the one documented way to find a job
        whose create answer was lost: the API takes no idempotency key. Extensions are not
        listed with their source, so only plain creates can be found (None for an extension).
        """
        if request.kind == "extend":
            return None
        model = _MODELS.get(request.model or self.model, request.model or self.model)
        wanted = {
            "model": model,
            "prompt": remote.prompt_text(request),
            "seconds": str(round(request.duration_s)),
            "size": f"{request.width}x{request.height}",
        }
        found: list[Operation] = []
        after: str | None = None
        # Clocks differ: a video created a little "before" the create was sent is still ours.
        horizon = since - 120
        for _ in range(20):  # at most 2000 videos back
            params = {"order": "desc", "limit": "100", **({"after": after} if after else {})}
            body = await self.http.json("GET", "videos", what="list", params=params)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                return None
            for video in data:
                if not isinstance(video, dict) or not isinstance(video.get("id"), str):
                    continue
                created = video.get("created_at")
                if isinstance(created, (int, float)) and created < horizon:
                    return found
                same = all(str(video.get(k)) == v for k, v in wanted.items())
                if same and video["id"] not in exclude and video.get("status") != "failed":
                    found.append(
                        Operation(
                            backend="openai",
                            id=video["id"],
                            base_url=self.base_url,
                            data={"model": model, "kind": request.kind},
                        )
                    )
            if not body.get("has_more") or not data:
                return found
            after = str(data[-1].get("id"))
        return found

    async def poll(self, operation: Operation) -> OperationStatus:
        remote.check_operation(operation, "openai", self.base_url)
        response = await self.http.request("GET", f"videos/{quote(operation.id, safe='')}", what="poll")
        body = self.http.read_json(response, what="poll")
        if not isinstance(body, dict):
            raise RetryableError(
                self.http.redact(f"openai answered a poll with {remote.describe(body)} instead of a video")
            )
        poll_after = _poll_after(response.headers.get("openai-poll-after-ms"))
        status = str(body.get("status") or "").lower()
        progress = _progress(body.get("progress"))
        if status in _RUNNING:
            return OperationStatus(state="running", progress=progress, poll_after_s=poll_after)
        if status in _DONE:
            return OperationStatus(
                state="succeeded", progress=1.0, video={"id": str(body.get("id") or operation.id)}
            )
        if status in _FAILED:
            error = body.get("error")
            error = error if isinstance(error, dict) else {}
            code = str(error.get("code") or status)
            message = self.http.redact(
                str(error.get("message") or f"the video job {status} without a message")
            )
            text = f"{code} {message}".lower()
            if any(word in text for word in _FILTER_WORDS):
                return OperationStatus(state="filtered", message=message, code=code)
            # OpenAI names no transient job failure; a server-side error is the one worth a retry.
            retryable = any(word in code.lower() for word in ("server_error", "internal"))
            return OperationStatus(state="failed", message=message, code=code, retryable=retryable)
        raise RetryableError(
            self.http.redact(
                f"openai answered a poll with an unknown status {status!r} ({remote.describe(body)})"
            )
        )

    async def download(self, operation: Operation, status: OperationStatus, dest: Path) -> None:
        video_id = str(status.video.get("id") or operation.id)
        await self.http.download(
            f"videos/{quote(video_id, safe='')}/content",
            dest,
            params={"variant": "video"},
            headers={"accept": "application/binary"},  # what the SDK's download_content sends
        )

    def clip_state(self, operation: Operation, status: OperationStatus) -> dict[str, Any]:
        # An extension names the parent by its video id; the result is a new id, the stitched clip.
        return {
            "backend": "openai",
            "operation": operation.id,
            "id": str(status.video.get("id") or operation.id),
        }

    async def aclose(self) -> None:
        await self.http.aclose()


def _poll_after(value: str | None) -> float | None:
    try:
        seconds = float(value) / 1000.0 if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0.0 <= seconds <= 600.0 else None


def _progress(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return max(0.0, min(1.0, float(value) / 100.0))
    return None
