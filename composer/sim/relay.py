"""The relay face of the simulator: the Veo 3.1 shape many third-party relays document.

What lives here: :class:`RelayApi` with ``POST /relay/videos/generate`` (JSON
``{model, prompt, parameters{resolution, duration, fps, style_strength, motion_intensity},
referenceImage{imageContent, mimeType}}``; the two knobs are optional numbers from 0.0 to 1.0,
checked and applied by the local generator), ``GET /relay/videos/{id}`` (``PENDING`` /
``PROCESSING`` / ``COMPLETED`` / ``FAILED`` with ``progress``, an absolute ``videoUrl`` and
the knobs the video was made with under ``parameters``), ``POST /relay/videos:extend``
(``{sourceVideoId, extendDuration: 7, prompt}``; the result is the whole lengthened clip, as
Veo returns it, made with its source's knobs) and ``GET /relay/files/{token}.mp4`` (the video; no key needed, like a signed
URL). Errors are ``{"error": {"code", "message"}}``. What does not: the Veo duration and size
rules (``veo.py``), storage and renders (``engine.py``).

There is no single standard for this shape; the simulator fixes one so composer's relay
backend has something exact to speak (see ``docs/simulator.md``).
"""

from __future__ import annotations

from typing import Any

from composer.sim.engine import Engine, Operation, OpView, RenderSpec
from composer.sim.http import ApiError, Request, Response, Route, json_response, route
from composer.sim.veo import SIZES, VeoModel, b64

NAME = "relay"
MODELS = ("veo-3.1", "veo-3.1-fast")
EXTENSION_S = 7
MAX_EXTEND_INPUT_S = 141.0
BLOCKED = (
    "Video generation was blocked by safety filters (the prompt or image may violate the content "
    "policy). You were not charged; change the prompt and try again."
)
FAILED = "Video generation failed due to an upstream internal error. Please try again."
_WORDS = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    429: "rate_limited",
    500: "internal_error",
}


def envelope(error: ApiError) -> Response:
    code = error.code or _WORDS.get(error.status, "unavailable" if error.status == 503 else "error")
    return json_response({"error": {"code": code, "message": error.message}}, error.status, error.headers)


def invalid(message: str) -> ApiError:
    return ApiError(400, message, code="invalid_parameter")


#: The seed's image-guidance knobs, as ``parameters`` names them (camelCase accepted too).
KNOBS = {"style_strength": "styleStrength", "motion_intensity": "motionIntensity"}


def _knobs(params: dict[str, Any]) -> dict[str, float]:
    """The knobs a create request sets, each checked to be a number from 0.0 to 1.0."""
    found: dict[str, float] = {}
    for name, camel in KNOBS.items():
        value = params.get(name, params.get(camel))
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise invalid(f"parameters.{name} must be a number from 0.0 to 1.0, got {value!r}.")
        found[name] = float(value)
    return found


def _seconds(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise invalid(f"{field} must be a whole number of seconds, got {value!r}.")
    text = str(value).strip().removesuffix("s")
    try:
        number = float(text)
    except ValueError:
        raise invalid(f"{field} must be a whole number of seconds, got {value!r}.") from None
    if not number.is_integer():
        raise invalid(f"{field} must be a whole number of seconds, got {value!r}.")
    return int(number)


class RelayApi:
    """The relay shape, served from the engine."""

    name = NAME

    def __init__(self, engine: Engine, api_key: str | None) -> None:
        self.engine = engine
        self.api_key = api_key

    def routes(self) -> list[Route]:
        return [
            route("POST", r"^/relay/videos/generate$", self.create, NAME, "create", envelope),
            route("POST", r"^/relay/videos:extend$", self.extend, NAME, "create", envelope),
            route("GET", r"^/relay/videos/(?P<id>[A-Za-z0-9_-]+)$", self.poll, NAME, "poll", envelope),
            route("GET", r"^/relay/files/(?P<token>[a-z0-9]+)\.mp4$", self.file, NAME, "download", envelope),
        ]

    def fault_response(self, kind: str, delay_s: float) -> Response:
        if kind == "429":
            headers = {"Retry-After": f"{delay_s:g}", "retry-after-ms": f"{delay_s * 1000:g}"}
            return envelope(
                ApiError(
                    429, f"Too many requests; retry in {delay_s:g} s.", code="rate_limited", headers=headers
                )
            )
        if kind == "503":
            return envelope(
                ApiError(503, "The upstream video service is temporarily unavailable.", code="unavailable")
            )
        return envelope(ApiError(500, "Internal server error.", code="internal_error"))

    def _auth(self, request: Request) -> None:
        scheme, _, key = request.header("authorization").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key or (self.api_key is not None and key != self.api_key):
            raise ApiError(401, "Missing or invalid API key: send 'Authorization: Bearer <your relay key>'.")

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise invalid("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise invalid("The request body must be a JSON object.")
        return body

    @staticmethod
    def _model(model: Any) -> VeoModel:
        if not isinstance(model, str) or not (model in MODELS or model.startswith("veo-")):
            raise ApiError(
                404,
                f"Model {model!r} is not available on this relay; use veo-3.1 or veo-3.1-fast.",
                code="model_not_found",
            )
        return VeoModel.read(model)

    # -- create ------------------------------------------------------------------------------

    def create(self, request: Request) -> Response:
        self._auth(request)
        body = self._body(request)
        model = self._model(body.get("model", "veo-3.1"))
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise invalid("prompt is required.")
        params = body.get("parameters") or {}
        if not isinstance(params, dict):
            raise invalid("parameters must be an object.")
        seconds = _seconds(params.get("duration", 8), "parameters.duration")
        if seconds not in model.durations:
            shown = ", ".join(str(d) for d in model.durations)
            raise invalid(
                f"parameters.duration must be one of {shown} seconds for {model.id}, got {seconds}."
            )
        resolution = str(params.get("resolution", "720p")).lower()
        if resolution not in ("720p", "1080p"):
            raise invalid(f"parameters.resolution must be 720p or 1080p, got {params.get('resolution')!r}.")
        if resolution == "1080p" and seconds != 8:
            raise invalid(f"1080p videos must be 8 seconds long, got parameters.duration {seconds}.")
        if _seconds(params.get("fps", 24), "parameters.fps") != 24:
            raise invalid(f"parameters.fps must be 24, got {params.get('fps')!r}.")
        aspect = str(params.get("aspectRatio", "16:9"))
        if aspect not in ("16:9", "9:16"):
            raise invalid(f"parameters.aspectRatio must be 16:9 or 9:16, got {aspect!r}.")
        width, height = SIZES[(resolution, aspect)]
        image = self._image(body.get("referenceImage"))
        seed = params.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise invalid(f"parameters.seed must be an integer, got {seed!r}.")
        audio = params.get("generateAudio", model.family != "2.0")
        knobs = _knobs(params)
        spec = RenderSpec(
            prompt,
            seconds,
            width,
            height,
            self.engine.seed() if seed is None else seed % 2**32,
            bool(audio),
            image,
            **knobs,
        )
        op = self.engine.create(
            NAME,
            "task_" + self.engine.token(20),
            "generate",
            model.id,
            [spec],
            seconds=seconds,
            total_s=seconds,
            extra={"pixels": width * height, "knobs": knobs},
        )
        return json_response({"videoId": op.name, "status": "PENDING"})

    def _image(self, ref: Any) -> Any:
        if ref is None:
            return None
        if not isinstance(ref, dict) or not isinstance(ref.get("imageContent"), str):
            raise invalid("referenceImage must be {imageContent: <base64>, mimeType: image/png|image/jpeg}.")
        mime = str(ref.get("mimeType", "image/png")).lower()
        if mime not in ("image/png", "image/jpeg", "image/webp"):
            raise invalid(
                f"referenceImage.mimeType must be image/png, image/jpeg or image/webp, got {mime!r}."
            )
        try:
            data = b64(ref["imageContent"], "referenceImage.imageContent")
            path, _, _ = self.engine.save_image(data)
        except ApiError as error:
            raise invalid(error.message) from None
        except ValueError as error:
            raise invalid(f"referenceImage is not a usable image: {error}.") from None
        return path

    def extend(self, request: Request) -> Response:
        self._auth(request)
        body = self._body(request)
        source_id = body.get("sourceVideoId")
        if not isinstance(source_id, str) or not source_id:
            raise invalid("sourceVideoId is required.")
        source = self._op(source_id)
        step = _seconds(body.get("extendDuration", EXTENSION_S), "extendDuration")
        if step != EXTENSION_S:
            raise invalid(f"extendDuration must be {EXTENSION_S} seconds (Veo extends by 7 s), got {step}.")
        prompt = body.get("prompt") or ""
        if not isinstance(prompt, str):
            raise invalid("prompt must be a string.")
        model = VeoModel.read(source.model)
        if model.family != "3.1":
            raise invalid(f"Extension needs a veo-3.1 video; {source_id} was made with {source.model}.")
        view = self.engine.view(source)
        if view.outcome != "succeeded":
            raise invalid(f"Video {source_id} is not COMPLETED ({self._status(view)}); extend it once it is.")
        clip = view.clips[0]
        if min(clip.width, clip.height) != 720:
            raise invalid(f"Only 720p videos can be extended; {source_id} is {clip.width}x{clip.height}.")
        if clip.seconds > MAX_EXTEND_INPUT_S:
            raise invalid(
                f"Videos up to {MAX_EXTEND_INPUT_S:g} s can be extended; {source_id} is {clip.seconds:g} s."
            )
        spec = RenderSpec(
            prompt, EXTENSION_S, clip.width, clip.height, self.engine.seed(), clip.audio, parent=clip
        )
        op = self.engine.create(
            NAME,
            "task_" + self.engine.token(20),
            "extend",
            source.model,
            [spec],
            seconds=EXTENSION_S,
            total_s=clip.seconds + EXTENSION_S,
            # The extension carries on with its source's knobs (the generator's state holds them).
            extra={
                "pixels": clip.width * clip.height,
                "source": source_id,
                "knobs": source.extra.get("knobs", {}),
            },
        )
        return json_response({"videoId": op.name, "status": "PENDING"})

    # -- poll and download ---------------------------------------------------------------------

    def _op(self, video_id: str) -> Operation:
        op = self.engine.get(NAME, video_id)
        if op is None:
            raise ApiError(404, f"Video {video_id} not found.", code="not_found")
        return op

    @staticmethod
    def _status(view: OpView) -> str:
        if view.outcome == "running":
            return "PROCESSING" if view.started else "PENDING"
        return "COMPLETED" if view.outcome == "succeeded" else "FAILED"

    def poll(self, request: Request) -> Response:
        self._auth(request)
        op = self._op(request.params["id"])
        self.engine.count(NAME, "polls")
        view = self.engine.view(op)
        status = self._status(view)
        url = None
        error = None
        if status == "COMPLETED":
            url = f"http://{request.host}/relay/files/{view.clips[0].blob}.mp4"
        elif status == "FAILED":
            error = (
                BLOCKED
                if view.outcome == "filtered"
                else (view.message if view.reason == "render" else FAILED)
            )
        return json_response(
            {
                "videoId": op.name,
                "status": status,
                "progress": 100 if status == "COMPLETED" else view.progress,
                "videoUrl": url,
                "error": error,
                "model": op.model,
                "duration": op.total_s,
                "parameters": dict(op.extra.get("knobs", {})),
            }
        )

    def file(self, request: Request) -> Response:
        # Like a signed URL: no key needed (one sent along is ignored).
        clip = self.engine.named("blob", request.params["token"])
        if clip is None:
            raise ApiError(
                404, "No such file (the link is wrong or the simulator was restarted).", code="not_found"
            )
        self.engine.count(NAME, "downloads")
        return Response(200, clip.read(), "video/mp4", video=True)
