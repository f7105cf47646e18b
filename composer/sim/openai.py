"""The OpenAI Videos API face of the simulator (Sora 2, and Veo ids as relays serve them).

What lives here: :class:`OpenAIApi`, the routes under ``/v1/videos`` (create, retrieve,
content, list, delete, remix, extensions) with their checks (models, ``seconds``, ``size``,
``input_reference`` matching the size, the 6-extension / 120 s chain limit), the ``Video``
object, the ``{"error": {"message", "type", "param", "code"}}`` envelope and the
``openai-poll-after-ms`` header the SDK's ``poll()`` sleeps on. Bodies are read as
``multipart/form-data`` (what openai-python sends), JSON or url-encoded forms. What does not:
storage and renders (``engine.py``) or the Veo rules behind the ``veo-*`` ids (``veo.py``
lists the same durations and sizes for the Google protocols).
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from typing import Any
from urllib.parse import parse_qs

from composer.sim.engine import Clip, Engine, Operation, OpView, RenderSpec
from composer.sim.http import ApiError, Request, Response, Route, json_response, route
from composer.sim.multipart import Part, parse_multipart

NAME = "openai"
SORA_MODELS = ("sora-2", "sora-2-pro", "sora-2-2025-10-06", "sora-2-pro-2025-10-06", "sora-2-2025-12-08")
SORA_SECONDS = ("4", "8", "12", "16", "20")
VEO_SECONDS = ("4", "6", "8")
VEO_EXTEND_SECONDS = ("7", "8")  # Veo extends by 7 s whatever is asked; 8 is what its docs table says
SORA_SIZES = ("720x1280", "1280x720")
SORA_PRO_SIZES = (*SORA_SIZES, "1024x1792", "1792x1024", "1080x1920", "1920x1080")
VEO_SIZES = ("1280x720", "720x1280", "1920x1080", "1080x1920")
MAX_EXTENSIONS = 6
MAX_TOTAL_S = 120.0
VEO_MAX_INPUT_S = 141.0
#: What the SDK's poll() sleeps between polls; small, so tests and benchmarks are not slowed.
POLL_AFTER_MS = 150
RETENTION_S = 3600
_HEX = string.digits + "abcdef"
_NESTED = re.compile(r"^(\w+)\[(\w+)\]$")
MODERATION = {"code": "moderation_blocked", "message": "Your request was blocked by our moderation system."}
INTERNAL = {
    "code": "internal_error",
    "message": "Video generation failed due to an internal error. Please try again.",
}


def envelope(error: ApiError) -> Response:
    kind = error.kind or ("server_error" if error.status >= 500 else "invalid_request_error")
    body = {"error": {"message": error.message, "type": kind, "param": error.param, "code": error.code}}
    return json_response(body, error.status, error.headers)


def invalid(message: str, param: str | None = None, code: str | None = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


def _choices(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 2 else " and ".join(quoted)


def _seconds_text(seconds: float) -> str:
    return f"{seconds:g}"


def read_form(request: Request) -> dict[str, Any]:
    """The body as a dict: multipart parts (files stay :class:`Part`), JSON or url-encoded."""
    ctype = request.content_type
    if ctype == "multipart/form-data":
        try:
            parts = parse_multipart(request.body, request.header("content-type"))
        except ValueError as error:
            raise invalid(f"Could not parse the multipart form: {error}.", code=None) from None
        form: dict[str, Any] = {}
        for part in parts:
            value: Any = part if part.filename is not None else part.text()
            nested = _NESTED.match(part.name)
            if nested:  # video[id]=... as a form field
                form.setdefault(nested.group(1), {})
                if isinstance(form[nested.group(1)], dict):
                    form[nested.group(1)][nested.group(2)] = value
            else:
                form[part.name] = value
        return form
    if ctype == "application/x-www-form-urlencoded":
        pairs = parse_qs(request.body.decode("utf-8", errors="replace"), keep_blank_values=True)
        return {k: v[-1] for k, v in pairs.items()}
    if ctype in ("application/json", "") or ctype.endswith("+json"):
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise invalid(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
                "sent was not valid JSON.)",
                code=None,
            ) from None
        if not isinstance(body, dict):
            raise invalid("The request body must be a JSON object.", code=None)
        return body
    raise invalid(
        f"Unsupported Content-Type {ctype!r}; send multipart/form-data or application/json.", code=None
    )


def _text(form: dict[str, Any], name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if isinstance(value, Part):
        return value.text()
    if isinstance(value, (bool, dict, list)):
        raise invalid(f"Invalid type for '{name}': expected a string.", param=name, code="invalid_type")
    return str(value)


def _required(form: dict[str, Any], name: str) -> str:
    value = _text(form, name)
    if value is None or not value.strip():
        raise invalid(f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    return value


def _data_url(url: str, param: str) -> bytes:
    match = re.match(r"^data:([\w/+.-]+)?(;[^,]*)?,(.*)$", url, re.DOTALL)
    if not match or not (match.group(2) or "").endswith(";base64"):
        raise invalid(
            "The simulator accepts image_url only as a base64 data URL (data:image/png;base64,...); it "
            "cannot fetch http(s) URLs.",
            param=param,
        )
    try:
        return base64.b64decode(match.group(3), validate=True)
    except (binascii.Error, ValueError):
        raise invalid("The data URL in image_url is not valid base64.", param=param) from None


class OpenAIApi:
    """The Videos API, served from the engine."""

    name = NAME

    def __init__(self, engine: Engine, api_key: str | None) -> None:
        self.engine = engine
        self.api_key = api_key

    def routes(self) -> list[Route]:
        vid = r"(?P<id>[A-Za-z0-9_-]+)"
        return [
            route("POST", r"^/v1/videos$", self.create, NAME, "create", envelope),
            route("GET", r"^/v1/videos$", self.list, NAME, None, envelope),
            route("POST", r"^/v1/videos/extensions$", self.extend, NAME, "create", envelope),
            route("POST", rf"^/v1/videos/{vid}/remix$", self.remix, NAME, "create", envelope),
            route("GET", rf"^/v1/videos/{vid}/content$", self.content, NAME, "download", envelope),
            route("GET", rf"^/v1/videos/{vid}$", self.retrieve, NAME, "poll", envelope),
            route("DELETE", rf"^/v1/videos/{vid}$", self.delete, NAME, None, envelope),
        ]

    def fault_response(self, kind: str, delay_s: float) -> Response:
        if kind == "429":
            headers = {"Retry-After": f"{delay_s:g}", "retry-after-ms": f"{delay_s * 1000:g}"}
            return envelope(
                ApiError(
                    429,
                    f"Rate limit reached for videos per minute. Please try again in {delay_s:g}s.",
                    kind="requests",
                    code="rate_limit_exceeded",
                    headers=headers,
                )
            )
        if kind == "503":
            return envelope(ApiError(503, "The engine is currently overloaded, please try again later."))
        return envelope(
            ApiError(500, "The server had an error while processing your request. Sorry about that!")
        )

    def _auth(self, request: Request) -> None:
        scheme, _, key = request.header("authorization").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
                "blank username) if you're accessing the API from your browser and are prompted for a "
                "username and password. You can obtain an API key from "
                "https://platform.openai.com/account/api-keys.",
            )
        if self.api_key is not None and key != self.api_key:
            shown = f"{key[:3]}*****{key[-4:]}" if len(key) > 8 else "*****"
            raise ApiError(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )

    def _op(self, video_id: str) -> Operation:
        op = self.engine.get(NAME, video_id)
        if op is None:
            raise ApiError(404, f"Video with id '{video_id}' not found.", param="video_id", code=None)
        return op

    def _new_id(self) -> str:
        return "video_" + self.engine.token(48, _HEX)

    def _answer(self, op: Operation, view: OpView | None = None, status: int = 200) -> Response:
        view = view if view is not None else self.engine.view(op)
        return json_response(self.video_json(op, view), status, {"openai-poll-after-ms": str(POLL_AFTER_MS)})

    def video_json(self, op: Operation, view: OpView) -> dict[str, Any]:
        completed_at = expires_at = None
        error = None
        if view.outcome == "running":
            status, progress = ("in_progress" if view.started else "queued"), view.progress
        elif view.outcome == "succeeded":
            status, progress = "completed", 100
            completed_at = int(view.done_at or op.created_at)
            expires_at = completed_at + RETENTION_S
        else:
            status, progress = "failed", view.progress
            error = dict(MODERATION if view.outcome == "filtered" else INTERNAL)
        return {
            "id": op.name,
            "object": "video",
            "model": op.model,
            "status": status,
            "progress": progress,
            "created_at": int(op.created_at),
            "completed_at": completed_at,
            "expires_at": expires_at,
            "seconds": op.extra["seconds_text"],
            "size": op.extra["size"],
            "prompt": op.extra.get("prompt"),
            "remixed_from_video_id": op.extra.get("remixed_from"),
            "error": error,
        }

    # -- create ------------------------------------------------------------------------------

    @staticmethod
    def _check_model(model: str) -> bool:
        """True for a Veo id (relays serve Veo through this shape); 404 for an unknown model."""
        if model in SORA_MODELS:
            return False
        if model.startswith("veo-"):
            return True
        raise ApiError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )

    def create(self, request: Request) -> Response:
        self._auth(request)
        form = read_form(request)
        prompt = _required(form, "prompt")
        model = _text(form, "model") or "sora-2"
        veo = self._check_model(model)
        seconds_text = _text(form, "seconds") or ("8" if veo else "4")
        allowed = VEO_SECONDS if veo else SORA_SECONDS
        if seconds_text not in allowed:
            raise invalid(
                f"Invalid value: '{seconds_text}'. Supported values are: {_choices(allowed)}.",
                param="seconds",
            )
        size = _text(form, "size") or ("1280x720" if veo else "720x1280")
        sizes = VEO_SIZES if veo else SORA_PRO_SIZES if "pro" in model else SORA_SIZES
        if size not in sizes:
            raise invalid(f"Invalid value: '{size}'. Supported values are: {_choices(sizes)}.", param="size")
        width, height = (int(v) for v in size.split("x"))
        if veo and min(width, height) == 1080 and seconds_text != "8":
            raise invalid(
                f"1080p videos from {model} must be 8 seconds long, got '{seconds_text}'.", param="seconds"
            )
        image = self._reference(form, width, height)
        spec = RenderSpec(prompt, int(seconds_text), width, height, self.engine.seed(), True, image)
        video_id = self._new_id()
        extra = {"size": size, "prompt": prompt, "seconds_text": seconds_text, "pixels": width * height}
        op = self.engine.create(
            NAME,
            video_id,
            "generate",
            model,
            [spec],
            seconds=int(seconds_text),
            total_s=int(seconds_text),
            extra=extra,
        )
        return self._answer(op)

    def _reference(self, form: dict[str, Any], width: int, height: int) -> Any:
        value = form.get("input_reference")
        if value is None:
            return None
        if isinstance(value, Part):
            data = value.data
        elif isinstance(value, dict) and isinstance(value.get("image_url"), str):
            data = _data_url(value["image_url"], "input_reference.image_url")
        elif isinstance(value, dict) and value.get("file_id"):
            raise invalid(
                "The simulator keeps no uploaded files, so input_reference.file_id cannot be used; send "
                "the image as a file part or as image_url with a data: URL.",
                param="input_reference",
            )
        elif isinstance(value, str) and value.startswith("data:"):
            data = _data_url(value, "input_reference")
        else:
            raise invalid(
                "input_reference must be an uploaded image file, or {'image_url': 'data:image/...;base64,...'}.",
                param="input_reference",
                code="invalid_type",
            )
        try:
            path, got_w, got_h = self.engine.save_image(data)
        except ValueError as error:
            raise invalid(f"Invalid input_reference image: {error}.", param="input_reference") from None
        if (got_w, got_h) != (width, height):
            raise ApiError(400, "Inpaint image must match the requested width and height")
        return path

    def remix(self, request: Request) -> Response:
        self._auth(request)
        form = read_form(request)
        prompt = _required(form, "prompt")
        source = self._op(request.params["id"])
        clip = self._completed(source)
        spec = RenderSpec(prompt, clip.seconds, clip.width, clip.height, self.engine.seed(), clip.audio)
        extra = {
            "size": source.extra["size"],
            "prompt": prompt,
            "seconds_text": source.extra["seconds_text"],
            "pixels": clip.width * clip.height,
            "remixed_from": source.name,
        }
        op = self.engine.create(
            NAME,
            self._new_id(),
            "generate",
            source.model,
            [spec],
            seconds=clip.seconds,
            total_s=clip.seconds,
            extra=extra,
        )
        return self._answer(op)

    def _completed(self, op: Operation) -> Clip:
        view = self.engine.view(op)
        if view.outcome != "succeeded":
            state = self.video_json(op, view)["status"]
            raise invalid(
                f"Video '{op.name}' is {state}; only a completed video can be used here. Wait until its "
                "status is 'completed'.",
                param="video",
                code=None,
            )
        return view.clips[0]

    def extend(self, request: Request) -> Response:
        self._auth(request)
        form = read_form(request)
        prompt = _required(form, "prompt")
        seconds_text = _required(form, "seconds")
        if form.get("video") is None:
            raise invalid(
                "Missing required parameter: 'video'.", param="video", code="missing_required_parameter"
            )
        if form.get("input_reference") is not None or form.get("characters") is not None:
            raise invalid(
                "Extensions accept only a source video and a prompt; they don't support characters or "
                "image references.",
                param="input_reference",
            )
        clip, model, source_id = self._extension_source(form)
        veo = model.startswith("veo-")
        allowed = VEO_EXTEND_SECONDS if veo else SORA_SECONDS
        if seconds_text not in allowed:
            raise invalid(
                f"Invalid value: '{seconds_text}'. Supported values are: {_choices(allowed)}.",
                param="seconds",
            )
        if veo:
            added = 7.0
            if min(clip.width, clip.height) != 720:
                raise invalid(
                    f"Veo extends 720p videos only; this one is {clip.width}x{clip.height}.", param="video"
                )
            if clip.seconds > VEO_MAX_INPUT_S:
                raise invalid(
                    f"Veo extends videos up to {VEO_MAX_INPUT_S:g} seconds; this one is {clip.seconds:g}.",
                    param="video",
                )
        else:
            added = float(seconds_text)
            if clip.extensions >= MAX_EXTENSIONS:
                raise invalid(
                    f"This video has already been extended {clip.extensions} times; a video can be extended "
                    f"at most {MAX_EXTENSIONS} times.",
                    param="video",
                )
            if clip.seconds + added > MAX_TOTAL_S:
                raise invalid(
                    f"The extended video would be {clip.seconds + added:g} seconds long; the maximum is "
                    f"{MAX_TOTAL_S:g} seconds.",
                    param="seconds",
                )
        total = clip.seconds + added
        spec = RenderSpec(prompt, added, clip.width, clip.height, self.engine.seed(), clip.audio, parent=clip)
        extra = {
            "size": f"{clip.width}x{clip.height}",
            "prompt": prompt,
            "seconds_text": _seconds_text(total),
            "pixels": clip.width * clip.height,
            "extended_from": source_id,
        }
        op = self.engine.create(
            NAME, self._new_id(), "extend", model, [spec], seconds=added, total_s=total, extra=extra
        )
        return self._answer(op)

    def _extension_source(self, form: dict[str, Any]) -> tuple[Clip, str, str | None]:
        """(clip, model, source video id) of the ``video`` field: ``{"id": ...}``, an id, or an upload."""
        value = form["video"]
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            value = value["id"]
        if isinstance(value, str):
            op = self._op(value)
            return self._completed(op), op.model, op.name
        if isinstance(value, Part):
            clip = self.engine.by_sha256(value.data)
            if clip is None:
                raise invalid(
                    "The simulator can only extend videos it generated, and the uploaded video is not one of "
                    "them (no video it made has the same bytes). Pass {'id': ...} of a completed video.",
                    param="video",
                )
            model = _text(form, "model") or clip.model
            if model not in SORA_MODELS and not model.startswith("veo-"):
                model = clip.model
            return clip, model, None
        raise invalid(
            "video must be {'id': 'video_...'} or an uploaded MP4 file.", param="video", code="invalid_type"
        )

    # -- read --------------------------------------------------------------------------------

    def retrieve(self, request: Request) -> Response:
        self._auth(request)
        op = self._op(request.params["id"])
        self.engine.count(NAME, "polls")
        return self._answer(op)

    def content(self, request: Request) -> Response:
        self._auth(request)
        variant = request.arg("variant") or "video"
        variants = ("video", "thumbnail", "spritesheet")
        if variant not in variants:
            raise invalid(
                f"Invalid value: '{variant}'. Supported values are: {_choices(variants)}.", param="variant"
            )
        op = self._op(request.params["id"])
        view = self.engine.view(op)
        if view.outcome != "succeeded":
            if view.outcome == "running":
                message = (
                    f"Video '{op.name}' is not ready yet (status {self.video_json(op, view)['status']}); "
                    "poll GET /v1/videos/{video_id} until its status is 'completed'."
                )
            else:
                message = f"Video '{op.name}' failed; it has no content to download."
            raise ApiError(
                404, message, param="video_id", code="video_not_ready" if view.outcome == "running" else None
            )
        clip = view.clips[0]
        self.engine.count(NAME, "downloads")
        if variant == "video":
            return Response(200, clip.read(), "video/mp4", video=True)
        return Response(200, self.engine.still(clip, variant), "image/jpeg")

    def list(self, request: Request) -> Response:
        self._auth(request)
        order = request.arg("order") or "desc"
        if order not in ("asc", "desc"):
            raise invalid(f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.", param="order")
        try:
            limit = int(request.arg("limit") or 20)
        except ValueError:
            raise invalid("limit must be an integer between 1 and 100.", param="limit") from None
        if not 1 <= limit <= 100:
            raise invalid("limit must be an integer between 1 and 100.", param="limit")
        ops = self.engine.operations(NAME)
        if order == "desc":
            ops.reverse()
        after = request.arg("after")
        if after:
            ids = [op.name for op in ops]
            if after not in ids:
                raise invalid(f"No video with id '{after}' to list after.", param="after", code=None)
            ops = ops[ids.index(after) + 1 :]
        page = ops[:limit]
        data = [self.video_json(op, self.engine.view(op)) for op in page]
        return json_response(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": len(ops) > limit,
            }
        )

    def delete(self, request: Request) -> Response:
        self._auth(request)
        op = self._op(request.params["id"])
        if self.engine.view(op).outcome == "running":
            raise invalid(
                f"Video '{op.name}' is still being generated; a video can be deleted once it is completed or failed.",
                param="video_id",
                code=None,
            )
        self.engine.delete(op)
        return json_response({"id": op.name, "object": "video.deleted", "deleted": True})
