"""Veo through the Gemini API (``generativelanguage.googleapis.com``, API version ``v1beta``).

What lives here: :data:`CAPABILITIES` (Veo 3.1 on the Gemini API, as data), the
:class:`GeminiBackend` protocol (``predictLongRunning`` -> ``GET`` the operation -> download
the ``files/<id>`` video, and extension by the parent's file uri), and
:func:`operation_status`, the reading of a Google long-running operation that the Vertex
backend shares. What does not: retries, rate limits, journaling (``jobs/``) or HTTP details
(``http.py``).

Wire format as google-genai 2.x sends it (``shared/reference/video-apis.md`` §1): images as
``{"bytesBase64Encoded", "mimeType"}``, ``durationSeconds`` an integer, no ``seed`` (the SDK
refuses it on the Gemini API), the key in the ``x-goog-api-key`` header, never in a URL.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from composer.backends import BACKENDS, remote
from composer.backends.base import Capabilities, GenerationRequest, TakeInput
from composer.backends.http import Http, dumps
from composer.backends.remote import Operation, OperationStatus, RemoteBackend
from composer.errors import RetryableError, TerminalError

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"
KEY_ENV = BACKENDS["gemini"].key_variables
BASE_URL_ENV = BACKENDS["gemini"].base_url_variable

#: List prices (USD per generated second, late 2025); ``--price`` style overrides live in jobs/.
VEO_PRICES = {
    "veo-3.1-generate-preview": 0.40,
    "veo-3.1-fast-generate-preview": 0.15,
    "veo-3.1-lite-generate-preview": 0.05,
}

CAPABILITIES = Capabilities(
    name="gemini",
    base_durations_s=(4.0, 6.0, 8.0),
    # "extend videos … by 7 seconds and up to 20 times", "up to 148 seconds" = 8 + 20 x 7.
    extension_step_s=7.0,
    extendable_base_durations_s=(8.0,),
    max_extensions=20,
    max_total_s=148.0,
    native_fps="24",
    # Extension is 720p only and composer extends almost every segment, so 720p is all it asks for.
    resolutions=((1280, 720), (720, 1280)),
    extension_resolutions=((1280, 720), (720, 1280)),
    first_frame=True,
    last_frame=True,
    max_reference_images=3,
    audio=True,
    models={
        "fast": "veo-3.1-fast-generate-preview",
        "quality": "veo-3.1-generate-preview",
        "lite": "veo-3.1-lite-generate-preview",
    },
    price_per_s=VEO_PRICES,
    needs_key=True,
    # Google publishes no per-tier Veo quota; "preview models 10 RPM" is a third-party figure.
    requests_per_minute=10,
    poll_interval_s=10.0,
)

#: google.rpc.Code numbers that long-running operations report inside HTTP 200.
RPC_CODES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    16: "UNAUTHENTICATED",
}
#: Operation failures worth another submission: overload and internal errors, not refused inputs.
RETRYABLE_RPC_CODES = {8, 13, 14}

# The SDK's file-id rule (``_transformers.t_file_name``): the lowercase alphanumerics after "files/".
_FILE_ID = re.compile(r"files/([a-z0-9]+)")


class GeminiBackend(RemoteBackend):
    """Veo on the Gemini API: submit ``predictLongRunning``, poll the operation, download ``files/<id>``."""

    capabilities = CAPABILITIES
    key_env = "GEMINI_API_KEY (or GOOGLE_API_KEY)"

    def __init__(
        self, *, base_url: str | None = None, proxy: str | None = None, model: str | None = None
    ) -> None:
        key = remote.require_key("gemini", *KEY_ENV)
        self.base_url = (base_url or remote.env_first(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        self.model = CAPABILITIES.resolve_model(model or "fast")
        self.http = Http(
            service="gemini",
            base_url=self.base_url,
            key_env=self.key_env,
            headers={"accept": "application/json"},
            auth={"x-goog-api-key": key},
            # The official service may redirect a download to another Google host that wants the key.
            auth_hosts=(".googleapis.com",) if self.default_endpoint() else (),
            secrets=(key,),
            proxy=proxy,
        )

    def default_endpoint(self) -> bool:
        return self.base_url == DEFAULT_BASE_URL

    async def submit(self, request: GenerationRequest, inputs: TakeInput) -> Operation:
        remote.check_request(CAPABILITIES, request)
        model = remote.model_id("gemini", CAPABILITIES.resolve_model(request.model or self.model))
        instance: dict[str, Any] = {"prompt": remote.prompt_text(request)}
        parameters: dict[str, Any] = {"sampleCount": 1}
        if request.kind == "extend":
            instance["video"] = _parent_video(inputs)
            # The docs say durationSeconds "must be 8" for extension while the output is +7 s; the
            # SDK sends none, so neither do we. Aspect ratio comes from the input video (sending
            # one can clash with it, js-genai#1176). Extension is 720p only.
            parameters["resolution"] = "720p"
        else:
            parameters["durationSeconds"] = round(request.duration_s)
            parameters["aspectRatio"] = remote.aspect_ratio(request.width, request.height)
            parameters["resolution"] = remote.resolution_label(request.width, request.height)
            images = _images(request, inputs)
            instance.update(images)
            if images:
                # The docs table allows only "allow_adult" for image-to-video, interpolation and
                # reference images on Veo 3.1 and Veo 3; text-to-video keeps the service default
                # ("allow_all" is refused in the EU, UK, CH and MENA).
                parameters["personGeneration"] = "allow_adult"
        if request.negative_prompt:
            parameters["negativePrompt"] = request.negative_prompt
        what = "extension" if request.kind == "extend" else "create"
        body = await self.http.json(
            "POST",
            f"{API_VERSION}/models/{model}:predictLongRunning",
            what=what,
            model=model,
            content=dumps({"instances": [instance], "parameters": parameters}),
            headers={"content-type": "application/json"},
        )
        name = remote.created_id("gemini", body, "name", what=what, redact=self.http.redact, path=True)
        return Operation(
            backend="gemini", id=name, base_url=self.base_url, data={"model": model, "kind": request.kind}
        )

    async def poll(self, operation: Operation) -> OperationStatus:
        remote.check_operation(operation, "gemini", self.base_url)
        if not remote.path_name(operation.id):
            raise TerminalError(f"{operation.id!r} is not a Gemini operation name")
        body = await self.http.json("GET", f"{API_VERSION}/{operation.id}", what="poll")
        return operation_status(body, service="gemini", redact=self.http.redact)

    async def download(self, operation: Operation, status: OperationStatus, dest: Path) -> None:
        video = status.video
        if video.get("bytes_b64"):
            remote.write_file(dest, _b64decode(video["bytes_b64"], "gemini"))
            return
        uri = video.get("uri")
        if not isinstance(uri, str) or not uri:
            raise TerminalError(f"gemini operation {operation.id} finished without a video to download")
        match = _FILE_ID.search(uri)
        if match:
            # Like client.files.download: the file id, fetched from our own base URL whatever host
            # the uri names, so the key goes only where it is meant to.
            await self.http.download(
                f"{API_VERSION}/files/{match.group(1)}:download", dest, params={"alt": "media"}
            )
        elif uri.startswith(("https://", "http://")):
            await self.http.download(uri, dest)
        else:
            raise TerminalError(f"gemini returned a video uri it cannot be downloaded from: {uri[:200]!r}")

    def clip_state(self, operation: Operation, status: OperationStatus) -> dict[str, Any]:
        # An extension sends the parent's uri back; the service keeps the file for 2 days.
        state: dict[str, Any] = {"backend": "gemini", "operation": operation.id}
        if status.video.get("uri"):
            state["uri"] = status.video["uri"]
        return state

    async def aclose(self) -> None:
        await self.http.aclose()


def _parent_video(inputs: TakeInput) -> dict[str, Any]:
    """The ``video`` of an extension: the parent's file uri (what the SDK sends), else its bytes."""
    state = remote.parent_state("gemini", inputs)
    uri = state.get("uri")
    if isinstance(uri, str) and uri:
        return {"uri": uri}
    if inputs.parent_path is not None and Path(inputs.parent_path).is_file():
        # Only relays take this: the Gemini API extends only videos it made (js-genai#1059).
        data = Path(inputs.parent_path).read_bytes()
        return {"encodedVideo": base64.b64encode(data).decode("ascii"), "encoding": "video/mp4"}
    raise TerminalError(
        "the parent take has no Gemini file uri to extend and its clip is missing; regenerate the parent"
    )


def _images(request: GenerationRequest, inputs: TakeInput) -> dict[str, Any]:
    """First frame (and, once TakeInput carries them, last frame and reference images) as instance fields."""
    fields: dict[str, Any] = {}
    if inputs.first_frame_path is not None:
        fields["image"] = image_part(inputs.first_frame_path, request.width, request.height)
    # TakeInput has no last-frame or reference-image paths yet; read them when it grows them.
    last = getattr(inputs, "last_frame_path", None)
    if last is not None:
        fields["lastFrame"] = image_part(last, request.width, request.height)
    references = list(getattr(inputs, "reference_image_paths", None) or ())[
        : CAPABILITIES.max_reference_images
    ]
    if references:
        fields["referenceImages"] = [
            {"image": image_part(p, request.width, request.height), "referenceType": "ASSET"}
            for p in references
        ]
    return fields


def image_part(path: Path, width: int, height: int) -> dict[str, str]:
    """An image as google-genai sends it: PNG bytes cropped to the video's size."""
    data = remote.png_bytes(Path(path), width, height)
    return {"bytesBase64Encoded": base64.b64encode(data).decode("ascii"), "mimeType": "image/png"}


def operation_status(body: Any, *, service: str, redact: Callable[[str], str] = str) -> OperationStatus:
    """Read a Google long-running operation (Gemini API or Vertex) into an OperationStatus.

    Accepts what the reference says real services, SDKs and relays send: ``generatedSamples``
    (REST), ``generatedVideos`` (the SDK's name), Vertex's bare ``videos``; a video as ``uri``,
    ``gcsUri``, ``encodedVideo`` / ``bytesBase64Encoded`` bytes, or the proto's ``video`` bytes.
    ``redact`` removes secrets from the service's words before they reach a message.
    """
    if not isinstance(body, dict):
        raise RetryableError(
            redact(f"{service} answered a poll with {remote.describe(body)} instead of an operation")
        )
    error = body.get("error")
    if isinstance(error, dict) and error:
        raw_code = error.get("code")
        number = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
        if number is not None:
            code = RPC_CODES.get(number, str(number))
        else:
            code = str(error.get("status") or raw_code or "")
        message = str(error.get("message") or "the operation failed without a message")
        return OperationStatus(
            state="failed", message=redact(message), code=code, retryable=number in RETRYABLE_RPC_CODES
        )
    if not body.get("done"):
        return OperationStatus(state="running", progress=_progress(body.get("metadata")))
    response = body.get("response")
    response = response if isinstance(response, dict) else {}
    inner = response.get("generateVideoResponse")
    inner = inner if isinstance(inner, dict) else response
    samples = inner.get("generatedSamples") or inner.get("generatedVideos") or inner.get("videos")
    videos = [v for v in map(_video, samples if isinstance(samples, list) else []) if v]
    if videos:
        return OperationStatus(state="succeeded", progress=1.0, video=videos[0])
    reasons = inner.get("raiMediaFilteredReasons") or []
    reasons = [str(r) for r in reasons] if isinstance(reasons, list) else [str(reasons)]
    count = inner.get("raiMediaFilteredCount") or 0
    if reasons:
        message = " ".join(reasons)
    elif count:
        message = f"{count} video(s) blocked by the safety filter (no reason given)"
    else:
        # Completed without a video or a reason (python-genai#1559): the usual cause is a filter.
        message = "the operation finished without a video and without a reason (likely a safety filter)"
    return OperationStatus(state="filtered", progress=1.0, message=redact(message), code="RAI_FILTERED")


def _video(sample: Any) -> dict[str, Any]:
    """One sample's video as {'uri'}, {'gcsUri'} or {'bytes_b64'}; {} when it has none."""
    if not isinstance(sample, dict):
        return {}
    video = sample.get("video", sample)
    if isinstance(video, str):  # the proto's Video.video bytes field, base64 in JSON
        return {"bytes_b64": video}
    if not isinstance(video, dict):
        return {}
    for key in ("uri", "gcsUri"):
        if isinstance(video.get(key), str) and video[key]:
            return {key: video[key]}
    inline = video.get("inlineData")
    for data in (
        video.get("encodedVideo"),
        video.get("bytesBase64Encoded"),
        video.get("video"),
        inline.get("data") if isinstance(inline, dict) else None,
    ):
        if isinstance(data, str) and data:
            return {"bytes_b64": data}
    return {}


def _progress(metadata: Any) -> float | None:
    # PredictLongRunningMetadata is empty in the proto; some services and relays add a percentage.
    if isinstance(metadata, dict):
        value = metadata.get("progressPercent", metadata.get("progress"))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return max(0.0, min(1.0, value / 100.0 if value > 1 else float(value)))
    return None


def _b64decode(text: str, service: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (ValueError, TypeError):
        raise RetryableError(f"{service} sent video bytes that are not valid base64") from None
