"""The Vertex AI face of the simulator: Veo through ``predictLongRunning`` and a bearer token.

What lives here: :class:`VertexApi`, the routes
``POST /{v1|v1beta1}/projects/{p}/locations/{l}/publishers/google/models/{m}:predictLongRunning``
(generate, and extend when the instance has a ``video``), ``POST ...:fetchPredictOperation``
(polling is a POST with ``{"operationName"}``) and the Cloud Storage JSON API download
``GET /storage/v1/b/{bucket}/o/{object}?alt=media`` for results written under
``parameters.storageUri``; with the Vertex extension rules (input 1-30 s given as bytes or as
a ``gs://`` object the simulator wrote, ``durationSeconds: 7``, result at most 37 s). What
does not: the Veo rules shared with Gemini (``veo.py``), Google's envelope and credentials
(``google.py``), storage and renders (``engine.py``).

Without ``storageUri`` the finished operation carries the video itself as
``bytesBase64Encoded`` (as the real service does), so the ``truncate`` and ``corrupt``
faults, which act on downloads, only reach Vertex results written to ``gs://``.
"""

from __future__ import annotations

import base64
import threading
from typing import Any
from urllib.parse import quote, unquote

from composer.sim import google
from composer.sim.engine import Clip, Engine, Operation, OpView, RenderSpec
from composer.sim.gemini import json_body, save_image
from composer.sim.http import Request, Response, Route, json_response, route
from composer.sim.veo import (
    INTERNAL_MESSAGE,
    VERTEX_EXTEND_MODELS,
    VERTEX_MODELS,
    VERTEX_RAI_REASON,
    VIDEO_TYPES,
    VeoAsk,
    VeoModel,
    bad,
    check_generate,
    enum,
    media,
)

NAME = "vertex"
RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
EXTENSION_S = 7
MIN_EXTEND_INPUT_S = 1.0
MAX_EXTEND_INPUT_S = 30.0
MAX_EXTENDED_S = 37.0
_RESOURCE = (
    r"^/(?P<ver>v1|v1beta1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+)"
)


def _storage(uri: Any) -> tuple[str, str]:
    """(bucket, prefix) of a ``gs://BUCKET/PREFIX`` storageUri."""
    if not isinstance(uri, str) or not uri.startswith("gs://") or len(uri) <= 5:
        raise bad(f"storageUri must look like gs://BUCKET/PREFIX, got {uri!r}.")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise bad(f"storageUri must name a bucket: gs://BUCKET/PREFIX, got {uri!r}.")
    return bucket, prefix.strip("/")


class VertexApi:
    """Veo on Vertex AI (and the slice of Cloud Storage its results live in)."""

    name = NAME

    def __init__(self, engine: Engine, api_key: str | None) -> None:
        self.engine = engine
        self.api_key = api_key
        self._names_lock = threading.Lock()

    def routes(self) -> list[Route]:
        env = google.envelope
        return [
            route("POST", _RESOURCE + r":predictLongRunning$", self.create, NAME, "create", env),
            route("POST", _RESOURCE + r":fetchPredictOperation$", self.poll, NAME, "poll", env),
            route(
                "GET",
                r"^/(?:download/)?storage/v1/b/(?P<bucket>[^/]+)/o/(?P<object>.+)$",
                self.storage_object,
                NAME,
                "download",
                env,
            ),
        ]

    def fault_response(self, kind: str, delay_s: float) -> Response:
        return google.envelope(google.fault_error(kind, delay_s, service=NAME))

    @staticmethod
    def _resource(request: Request) -> str:
        p = request.params
        return f"projects/{p['project']}/locations/{p['location']}/publishers/google/models/{p['model']}"

    # -- create ------------------------------------------------------------------------------

    def create(self, request: Request) -> Response:
        google.check_bearer(request, self.api_key)
        model_id = request.params["model"]
        if model_id not in VERTEX_MODELS:
            raise google.not_found(
                f"Publisher model `{self._resource(request)}` was not found or your project does not have "
                "access to it. Please ensure you are using a valid model version. For more information, see: "
                "https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions"
            )
        ask = VeoAsk.read(json_body(request))
        model = VeoModel.read(model_id)
        params = ask.parameters
        if "fps" in params and params["fps"] not in (24, "24", 24.0):
            raise bad(f"Unsupported fps {params['fps']!r}; Veo generates 24 fps.")
        for field, allowed in (
            ("compressionQuality", ("optimized", "lossless")),
            ("resizeMode", ("pad", "crop")),
        ):
            if field in params:
                enum(params[field], field, allowed)
        audio = params.get("generateAudio")
        if audio is not None and not isinstance(audio, bool):
            raise bad(f"generateAudio must be true or false, got {audio!r}.")
        if audio and model.family == "2.0":
            raise bad(f"generateAudio is not supported by {model_id}.")
        storage = _storage(params["storageUri"]) if params.get("storageUri") is not None else None
        opid = self.engine.uuid()
        name = f"{self._resource(request)}/operations/{opid}"
        extra: dict[str, Any] = {"storage": storage, "opid": opid}
        if ask.instance.get("video") is not None:
            self._extend(name, model, ask, extra)
            return json_response({"name": name})
        if not ask.prompt.strip() and ask.instance.get("image") is None:
            raise bad("instances[0].prompt is required (or an image to animate).")
        plan = check_generate(model, ask, api=NAME, max_samples=4)
        image = save_image(self.engine, plan.image)
        seed = ask.seed if ask.seed is not None else self.engine.seed()
        with_audio = audio if audio is not None else model.family != "2.0"
        specs = [
            RenderSpec(
                ask.prompt, plan.seconds, plan.width, plan.height, (seed + i) % 2**32, with_audio, image
            )
            for i in range(ask.samples)
        ]
        extra.update(pixels=plan.width * plan.height, samples=ask.samples)
        self.engine.create(
            NAME, name, "generate", model_id, specs, seconds=plan.seconds, total_s=plan.seconds, extra=extra
        )
        return json_response({"name": name})

    def _extend(self, name: str, model: VeoModel, ask: VeoAsk, extra: dict[str, Any]) -> Operation:
        instance = ask.instance
        if instance.get("image") is not None or instance.get("lastFrame") is not None:
            raise bad("instances[0].video cannot be combined with image or lastFrame.")
        if model.id not in VERTEX_EXTEND_MODELS:
            shown = ", ".join(sorted(VERTEX_EXTEND_MODELS))
            raise bad(f"Video extension is not supported by {model.id}; use one of {shown}.")
        if ask.seconds != EXTENSION_S:
            got = "none" if ask.seconds is None else str(ask.seconds)
            raise bad(f"durationSeconds must be {EXTENSION_S} for video extension, got {got}.")
        if ask.samples != 1:
            raise bad(f"sampleCount must be 1 for video extension, got {ask.samples}.")
        clip = self._source(instance["video"])
        if not MIN_EXTEND_INPUT_S <= clip.seconds <= MAX_EXTEND_INPUT_S:
            raise bad(
                f"The input video is {clip.seconds:g} seconds long; it must be {MIN_EXTEND_INPUT_S:g} to "
                f"{MAX_EXTEND_INPUT_S:g} seconds (the result may be at most {MAX_EXTENDED_S:g} seconds)."
            )
        seed = ask.seed if ask.seed is not None else self.engine.seed()
        spec = RenderSpec(
            ask.prompt, EXTENSION_S, clip.width, clip.height, seed % 2**32, clip.audio, parent=clip
        )
        extra.update(pixels=clip.width * clip.height, samples=1, parent=clip.key)
        return self.engine.create(
            NAME,
            name,
            "extend",
            model.id,
            [spec],
            seconds=EXTENSION_S,
            total_s=clip.seconds + EXTENSION_S,
            extra=extra,
        )

    def _source(self, video: Any) -> Clip:
        data, uri = media(video, "instances[0].video", kinds=VIDEO_TYPES)
        clip: Clip | None = None
        what = "the uploaded video bytes (no video it made has their sha256)"
        if uri is not None:
            what = uri
            if uri.startswith("gs://"):
                clip = self.engine.named("gcs", uri[5:])
        elif data is not None:
            clip = self.engine.by_sha256(data)
        if clip is None:
            raise bad(
                f"The simulator can only extend videos it generated, and it did not generate {what}. Pass "
                "the bytesBase64Encoded or gcsUri of a video from a finished operation of this simulator."
            )
        return clip

    # -- poll and download ---------------------------------------------------------------------

    def poll(self, request: Request) -> Response:
        google.check_bearer(request, self.api_key)
        body = json_body(request)
        name = body.get("operationName") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            raise bad("operationName is required: the name returned by predictLongRunning.")
        op = self.engine.get(NAME, name)
        if op is None or not name.startswith(self._resource(request) + "/operations/"):
            raise google.not_found(f"Operation {name} was not found.")
        self.engine.count(NAME, "polls")
        view = self.engine.view(op)
        answer = self.operation_json(op, view)
        if view.outcome == "succeeded" and op.extra.get("storage") is None:
            self.engine.count(NAME, "downloads")  # the video bytes travel in this answer
        return json_response(answer)

    def operation_json(self, op: Operation, view: OpView) -> dict[str, Any]:
        if view.outcome == "running":
            return {"name": op.name}
        if view.outcome == "failed":
            message = view.message or INTERNAL_MESSAGE
            return {"name": op.name, "done": True, "error": {"code": view.error_code, "message": message}}
        if view.outcome == "filtered":
            result: dict[str, Any] = {
                "@type": RESPONSE_TYPE,
                "raiMediaFilteredCount": int(op.extra.get("samples", 1)),
                "raiMediaFilteredReasons": [VERTEX_RAI_REASON],
            }
            return {"name": op.name, "done": True, "response": result}
        videos = []
        storage = op.extra.get("storage")
        for index, clip in enumerate(view.clips):
            if storage is None:
                encoded = base64.b64encode(clip.read()).decode("ascii")
                videos.append({"bytesBase64Encoded": encoded, "mimeType": "video/mp4"})
                continue
            bucket, prefix = storage
            obj = "/".join(part for part in (prefix, op.extra["opid"], f"sample_{index}.mp4") if part)
            with self._names_lock:
                self.engine.name("gcs", f"{bucket}/{obj}", clip)
            videos.append({"gcsUri": f"gs://{bucket}/{obj}", "mimeType": "video/mp4"})
        result = {"@type": RESPONSE_TYPE, "raiMediaFilteredCount": 0, "videos": videos}
        return {"name": op.name, "done": True, "response": result}

    def storage_object(self, request: Request) -> Response:
        google.check_bearer(request, self.api_key)
        bucket, obj = request.params["bucket"], unquote(request.params["object"])
        clip = self.engine.named("gcs", f"{bucket}/{obj}")
        if clip is None:
            raise google.not_found(f"No such object: {bucket}/{obj}")
        if request.arg("alt") != "media":
            link = f"http://{request.host}/download/storage/v1/b/{bucket}/o/{quote(obj, safe='')}?alt=media"
            return json_response(
                {
                    "kind": "storage#object",
                    "id": f"{bucket}/{obj}",
                    "name": obj,
                    "bucket": bucket,
                    "contentType": "video/mp4",
                    "size": str(clip.size_bytes),
                    "mediaLink": link,
                }
            )
        self.engine.count(NAME, "downloads")
        return Response(200, clip.read(), "video/mp4", video=True)
