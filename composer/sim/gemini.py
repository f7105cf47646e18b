"""The Gemini API (``generativelanguage`` ``v1beta``) face of the simulator: Veo through an API key.

What lives here: :class:`GeminiApi`, the routes ``POST /v1beta/models/{m}:predictLongRunning``
(generate, and extend when the instance has a ``video``), ``GET /v1beta/models/{m}/operations/{id}``,
``GET /v1beta/files/{id}:download`` (a 302 to a blob path) and ``GET /blob/{token}`` (the
video bytes), with the Gemini-only extension rules. What does not: the Veo rules shared with
Vertex (``veo.py``), Google's envelope and credentials (``google.py``), storage and renders
(``engine.py``).

Result URIs are ``https://HOST/v1beta/files/<id>:download?alt=media`` with a lowercase
alphanumeric id, because google-genai's ``files.download`` keeps only ``[a-z0-9]+`` after
``files/`` of an ``https://`` URI and requests it at its own base URL (the host is ignored,
so the https scheme does no harm on a plain-http loopback server).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from composer.sim import google
from composer.sim.engine import Clip, Engine, Operation, OpView, RenderSpec
from composer.sim.http import Request, Response, Route, json_response, route
from composer.sim.veo import (
    GEMINI_MODELS,
    GEMINI_RAI_REASON,
    INTERNAL_MESSAGE,
    VIDEO_TYPES,
    VeoAsk,
    VeoModel,
    bad,
    check_generate,
    media,
)

NAME = "gemini"
RESPONSE_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
MAX_EXTEND_INPUT_S = 141.0
MAX_EXTENDED_S = 148.0
EXTENSION_S = 7
_FILE_ID = re.compile(r"files/([a-z0-9]+)")


def json_body(request: Request) -> Any:
    try:
        return request.json()
    except (ValueError, UnicodeDecodeError) as error:
        raise bad(f"Invalid JSON payload received. {error}.") from None


def save_image(engine: Engine, data: bytes | None) -> Path | None:
    if data is None:
        return None
    try:
        path, _, _ = engine.save_image(data)
    except ValueError as error:
        raise bad(f"Unable to process input image: {error}") from None
    return path


class GeminiApi:
    """Veo on the Gemini API, served from the engine."""

    name = NAME

    def __init__(self, engine: Engine, api_key: str | None) -> None:
        self.engine = engine
        self.api_key = api_key
        self._files_lock = threading.Lock()

    def routes(self) -> list[Route]:
        env = google.envelope
        return [
            route(
                "POST",
                r"^/v1beta/models/(?P<model>[^/:]+):predictLongRunning$",
                self.create,
                NAME,
                "create",
                env,
            ),
            route(
                "GET",
                r"^/v1beta/models/(?P<model>[^/:]+)/operations/(?P<op>[^/:]+)$",
                self.poll,
                NAME,
                "poll",
                env,
            ),
            route("GET", r"^/v1beta/files/(?P<file>[^/:]+):download$", self.download, NAME, "download", env),
            route("GET", r"^/blob/(?P<token>[a-z0-9]+)$", self.blob, NAME, "download", env, hop=True),
        ]

    def fault_response(self, kind: str, delay_s: float) -> Response:
        return google.envelope(google.fault_error(kind, delay_s, service=NAME))

    # -- create ------------------------------------------------------------------------------

    def create(self, request: Request) -> Response:
        google.check_api_key(request, self.api_key)
        model_id = request.params["model"]
        if model_id not in GEMINI_MODELS:
            raise google.not_found(
                f"models/{model_id} is not found for API version v1beta, or is not supported for "
                "predictLongRunning. Call ListModels to see the list of available models and their "
                "supported methods."
            )
        ask = VeoAsk.read(json_body(request))
        model = VeoModel.read(model_id)
        name = f"models/{model_id}/operations/{self.engine.token(12)}"
        if ask.instance.get("video") is not None:
            self._extend(name, model, ask)
            return json_response({"name": name})
        if not ask.prompt.strip() and ask.instance.get("image") is None:
            raise bad("instances[0].prompt is required (or an image to animate).")
        plan = check_generate(model, ask, api=NAME, max_samples=2 if model.family == "2.0" else 1)
        image = save_image(self.engine, plan.image)
        seed = ask.seed if ask.seed is not None else self.engine.seed()
        audio = model.family != "2.0"  # always on for Veo 3 / 3.1 on the Gemini API; Veo 2 is silent
        specs = [
            RenderSpec(ask.prompt, plan.seconds, plan.width, plan.height, (seed + i) % 2**32, audio, image)
            for i in range(ask.samples)
        ]
        self.engine.create(
            NAME,
            name,
            "generate",
            model_id,
            specs,
            seconds=plan.seconds,
            total_s=plan.seconds,
            extra={"pixels": plan.width * plan.height, "samples": ask.samples},
        )
        return json_response({"name": name})

    def _extend(self, name: str, model: VeoModel, ask: VeoAsk) -> Operation:
        instance = ask.instance
        if instance.get("image") is not None or instance.get("lastFrame") is not None:
            raise bad("instances[0].video cannot be combined with image or lastFrame.")
        if ask.references:
            raise bad("instances[0].video cannot be combined with referenceImages.")
        if model.family != "3.1":
            raise bad(
                f"Video extension is not supported by {model.id}; use veo-3.1-generate-preview or "
                "veo-3.1-fast-generate-preview."
            )
        if ask.resolution not in (None, "720p"):
            raise bad(f"Video extension only supports 720p resolution, got {ask.resolution}.")
        if ask.seconds not in (None, 7, 8):
            raise bad(
                f"Unsupported durationSeconds {ask.seconds} for video extension: each extension adds "
                f"{EXTENSION_S} seconds (omit durationSeconds)."
            )
        if ask.person not in (None, "allowall"):
            raise bad("personGeneration must be 'allow_all' for video extension.")
        if ask.samples != 1:
            raise bad(f"sampleCount must be 1 for video extension, got {ask.samples}.")
        clip = self._source(instance["video"])
        if clip.resolution != "720p":
            raise bad(f"The input video must be 720p for extension, got {clip.width}x{clip.height}.")
        if clip.seconds > MAX_EXTEND_INPUT_S:
            raise bad(
                f"The input video is {clip.seconds:g} seconds long; videos up to {MAX_EXTEND_INPUT_S:g} "
                f"seconds can be extended (the result may be at most {MAX_EXTENDED_S:g} seconds)."
            )
        aspect = ask.aspect or "16:9"
        error = None
        if aspect != clip.aspect:
            # The real service checks this inside the operation (googleapis/js-genai#1176).
            error = (3, f"Aspect ratio of the input video must be {aspect}, but got: {clip.aspect}")
        seed = ask.seed if ask.seed is not None else self.engine.seed()
        spec = RenderSpec(
            ask.prompt, EXTENSION_S, clip.width, clip.height, seed % 2**32, clip.audio, parent=clip
        )
        return self.engine.create(
            NAME,
            name,
            "extend",
            model.id,
            [spec],
            seconds=EXTENSION_S,
            total_s=clip.seconds + EXTENSION_S,
            extra={"pixels": clip.width * clip.height, "samples": 1, "parent": clip.key},
            error=error,
        )

    def _source(self, video: Any) -> Clip:
        data, uri = media(video, "instances[0].video", kinds=VIDEO_TYPES)
        clip: Clip | None = None
        what = "this video"
        if uri is not None:
            match = _FILE_ID.search(uri)
            if match is None:
                raise bad(
                    f"instances[0].video.uri {uri!r} is not a file of this service; pass the video of a "
                    "finished operation (operation.response.generated_videos[0].video)."
                )
            clip = self.engine.named("gemini-file", match.group(1))
            what = f"files/{match.group(1)}"
        elif data is not None:
            clip = self.engine.by_sha256(data)
            what = "the uploaded video bytes"
        if clip is None:
            raise bad(
                "Gemini API only supports video extensions for Veo-generated videos: the simulator can only "
                f"extend videos it generated itself, and it did not generate {what}. Extend the video of an "
                "operation this simulator finished."
            )
        return clip

    # -- poll and download ---------------------------------------------------------------------

    def poll(self, request: Request) -> Response:
        google.check_api_key(request, self.api_key)
        name = f"models/{request.params['model']}/operations/{request.params['op']}"
        op = self.engine.get(NAME, name)
        if op is None:
            raise google.not_found(f"Operation {name} was not found.")
        self.engine.count(NAME, "polls")
        return json_response(self.operation_json(request, op, self.engine.view(op)))

    def operation_json(self, request: Request, op: Operation, view: OpView) -> dict[str, Any]:
        if view.outcome == "running":
            return {"name": op.name}
        if view.outcome == "failed":
            message = view.message or INTERNAL_MESSAGE
            return {"name": op.name, "done": True, "error": {"code": view.error_code, "message": message}}
        if view.outcome == "filtered":
            count = int(op.extra.get("samples", 1))
            result: dict[str, Any] = {
                "raiMediaFilteredCount": count,
                "raiMediaFilteredReasons": [GEMINI_RAI_REASON],
            }
        else:
            samples = [
                {"video": {"uri": f"https://{request.host}/v1beta/files/{file}:download?alt=media"}}
                for file in self._file_ids(op, view)
            ]
            result = {"generatedSamples": samples}
        return {
            "name": op.name,
            "done": True,
            "response": {"@type": RESPONSE_TYPE, "generateVideoResponse": result},
        }

    def _file_ids(self, op: Operation, view: OpView) -> list[str]:
        with self._files_lock:
            if "files" not in op.extra:
                files = []
                for clip in view.clips:
                    file = self.engine.token(12)
                    self.engine.name("gemini-file", file, clip)
                    files.append(file)
                op.extra["files"] = files
            return list(op.extra["files"])

    def download(self, request: Request) -> Response:
        google.check_api_key(request, self.api_key)
        clip = self.engine.named("gemini-file", request.params["file"])
        if clip is None:
            raise google.not_found(f"File files/{request.params['file']} was not found.")
        # The real service redirects to signed storage; clients must follow redirects (curl -L).
        return Response(
            302, b"", "text/plain; charset=utf-8", {"Location": f"http://{request.host}/blob/{clip.blob}"}
        )

    def blob(self, request: Request) -> Response:
        clip = self.engine.named("blob", request.params["token"])
        if clip is None:
            raise google.not_found("No such blob (the link is wrong or the simulator was restarted).")
        self.engine.count(NAME, "downloads")
        return Response(200, clip.read(), "video/mp4", video=True)
