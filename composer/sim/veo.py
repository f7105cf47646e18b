"""What Veo accepts, as the simulator checks it: model ids, durations, sizes, images.

What lives here: the model tables for the Gemini API and Vertex AI, :class:`VeoModel` (a
model id read as family / fast / lite), :class:`VeoAsk` (the fields of one
``predictLongRunning`` body, read leniently as the real servers do: enums in either case,
``durationSeconds`` as int or string, ``sampleCount`` or ``numberOfVideos``,
``bytesBase64Encoded`` or ``inlineData``; unknown keys ignored) and :func:`check_generate`,
the rules of a fresh generation (``docs/simulator.md`` lists them with their sources).
What does not: extension rules and answers, which differ per API (``gemini.py``,
``vertex.py``, ``relay.py``), and HTTP.

Errors are :class:`~composer.sim.http.ApiError` with Google's status words; the relay and
the OpenAI shape reuse the rules and translate the errors into their own envelopes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from composer.sim.http import ApiError

GEMINI_MODELS = frozenset(
    {
        "veo-3.1-generate-preview",
        "veo-3.1-fast-generate-preview",
        "veo-3.1-lite-generate-preview",
        "veo-3.0-generate-001",
        "veo-3.0-fast-generate-001",
        "veo-3.0-generate-preview",
        "veo-3.0-fast-generate-preview",
        "veo-2.0-generate-001",
    }
)
VERTEX_MODELS = frozenset(
    {
        "veo-2.0-generate-001",
        "veo-2.0-generate-exp",
        "veo-2.0-generate-preview",
        "veo-3.0-generate-001",
        "veo-3.0-fast-generate-001",
        "veo-3.0-generate-preview",
        "veo-3.0-fast-generate-preview",
        "veo-3.1-generate-preview",
        "veo-3.1-fast-generate-preview",
        "veo-3.1-generate-001",
        "veo-3.1-fast-generate-001",
        "veo-3.1-lite-generate-001",
    }
)
VERTEX_EXTEND_MODELS = frozenset(
    {
        "veo-2.0-generate-exp",
        "veo-2.0-generate-preview",
        "veo-3.1-generate-preview",
        "veo-3.1-fast-generate-preview",
        "veo-3.1-generate-001",
        "veo-3.1-fast-generate-001",
        "veo-3.1-lite-generate-001",
    }
)

#: (resolution, aspect ratio) -> (width, height)
SIZES: dict[tuple[str, str], tuple[int, int]] = {
    ("720p", "16:9"): (1280, 720),
    ("720p", "9:16"): (720, 1280),
    ("1080p", "16:9"): (1920, 1080),
    ("1080p", "9:16"): (1080, 1920),
    ("4k", "16:9"): (3840, 2160),
    ("4k", "9:16"): (2160, 3840),
}
ASPECTS = ("16:9", "9:16")
RESOLUTIONS = ("720p", "1080p", "4k")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
VIDEO_TYPES = (
    "video/mp4",
    "video/mov",
    "video/mpeg",
    "video/mpg",
    "video/avi",
    "video/wmv",
    "video/mpegps",
    "video/flv",
)
#: Gemini's RAI reason text (googleapis/js-genai#1272).
GEMINI_RAI_REASON = (
    "We encountered an issue with the audio for your prompt, which means we could not create your "
    "video. This can sometimes happen due to our safety filters or other processing issues. Please "
    "modify your request and try again. You have not been charged for this attempt."
)
#: Vertex's RAI reason text (DaWe35/image-router#41).
VERTEX_RAI_REASON = (
    "Veo could not generate 1 videos based on the prompt provided. You will not be charged for this "
    "request. Try rephrasing the prompt. If you think this was an error, send feedback. "
    "Support codes: 42237218"
)
INTERNAL_MESSAGE = "Internal error encountered. Please try again later."


def bad(message: str) -> ApiError:
    return ApiError(400, message, reason="INVALID_ARGUMENT")


@dataclass(frozen=True)
class VeoModel:
    """A Veo model id read as its family ("3.1", "3.0", "2.0") and variant."""

    id: str
    family: str
    fast: bool
    lite: bool

    @classmethod
    def read(cls, model: str) -> VeoModel:
        family = "3.1" if model.startswith("veo-3.1") else "3.0" if model.startswith("veo-3") else "2.0"
        return cls(model, family, "-fast" in model, "-lite" in model)

    @property
    def durations(self) -> tuple[int, ...]:
        return (5, 6, 7, 8) if self.family == "2.0" else (4, 6, 8)

    @property
    def resolutions(self) -> tuple[str, ...]:
        if self.family == "2.0":
            return ("720p",)
        if self.family == "3.0" or self.lite:
            return ("720p", "1080p")
        return RESOLUTIONS


def enum(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    """A string enum read case-insensitively (the SDK sends ``PAD``, the docs ``pad``)."""
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in allowed:
        shown = ", ".join(f"'{a}'" for a in allowed)
        raise bad(f"Invalid value {value!r} for {field}; supported values are {shown}.")
    return text


def whole(value: Any, field: str) -> int:
    """An integer given as a number or a numeric string (``8`` or ``"8"``)."""
    if isinstance(value, bool):
        raise bad(f"{field} must be a whole number, got {value!r}.")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise bad(f"{field} must be a whole number, got {value!r}.")


def b64(text: Any, field: str) -> bytes:
    """Standard or URL-safe base64, padded or not (protobuf JSON accepts both)."""
    if not isinstance(text, str) or not text:
        raise bad(f"{field} must be a non-empty base64 string.")
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"{field} is not valid base64.") from None


def media(obj: Any, field: str, *, kinds: tuple[str, ...]) -> tuple[bytes | None, str | None]:
    """(bytes, gcsUri) of an image or video object in any of its accepted shapes.

    ``{"bytesBase64Encoded", "mimeType"}`` (what the SDK sends), ``{"inlineData": {"data",
    "mimeType"}}`` (the docs' REST samples), ``{"encodedVideo", "encoding"}`` (the SDK's
    Gemini video form) or ``{"gcsUri"}``. Exactly one of the two results is set.
    """
    if not isinstance(obj, dict):
        raise bad(f"{field} must be an object with bytesBase64Encoded, inlineData or gcsUri.")
    inline = obj.get("inlineData")
    mime = obj.get("mimeType") or obj.get("encoding")
    if isinstance(inline, dict):
        mime = inline.get("mimeType") or mime
    if mime is not None and str(mime).lower() not in kinds:
        raise bad(f"Unsupported mimeType {mime!r} for {field}; use one of {', '.join(kinds)}.")
    if isinstance(inline, dict):
        return b64(inline.get("data"), f"{field}.inlineData.data"), None
    for key in ("bytesBase64Encoded", "encodedVideo"):
        if key in obj:
            return b64(obj[key], f"{field}.{key}"), None
    uri = obj.get("gcsUri") or obj.get("uri")
    if isinstance(uri, str) and uri:
        return None, uri
    raise bad(f"{field} has no content: set bytesBase64Encoded (or inlineData) or gcsUri.")


@dataclass(frozen=True)
class VeoAsk:
    """The fields of one Veo ``predictLongRunning`` body that the simulator acts on."""

    prompt: str
    instance: dict[str, Any]
    parameters: dict[str, Any]
    seconds: int | None
    aspect: str | None
    resolution: str | None
    samples: int
    seed: int | None
    person: str | None

    @classmethod
    def read(cls, body: Any) -> VeoAsk:
        if not isinstance(body, dict):
            raise bad("Invalid JSON payload received. The request body must be a JSON object.")
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            raise bad("instances must be a non-empty list with one instance.")
        if len(instances) > 1:
            raise bad(f"Only one instance per request is supported, got {len(instances)}.")
        instance = instances[0]
        if not isinstance(instance, dict):
            raise bad("instances[0] must be an object.")
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise bad("parameters must be an object.")
        prompt = instance.get("prompt", "")
        if not isinstance(prompt, str):
            raise bad("instances[0].prompt must be a string.")
        seconds = parameters.get("durationSeconds")
        aspect = parameters.get("aspectRatio")
        resolution = parameters.get("resolution")
        samples = parameters.get("sampleCount", parameters.get("numberOfVideos", 1))
        seed = parameters.get("seed")
        person = parameters.get("personGeneration")
        return cls(
            prompt=prompt,
            instance=instance,
            parameters=parameters,
            seconds=None if seconds is None else whole(seconds, "durationSeconds"),
            aspect=None if aspect is None else enum(aspect, "aspectRatio", ASPECTS),
            resolution=None if resolution is None else enum(resolution, "resolution", RESOLUTIONS),
            samples=whole(samples, "sampleCount"),
            seed=None if seed is None else whole(seed, "seed"),
            person=None if person is None else str(person).replace("_", "").lower(),
        )

    @property
    def references(self) -> list[Any]:
        refs = self.instance.get("referenceImages") or []
        if not isinstance(refs, list):
            raise bad("instances[0].referenceImages must be a list.")
        return refs


@dataclass(frozen=True)
class Plan:
    """A checked fresh generation: what to render."""

    seconds: int
    width: int
    height: int
    resolution: str
    aspect: str
    image: bytes | None


def check_generate(model: VeoModel, ask: VeoAsk, *, api: str, max_samples: int) -> Plan:
    """The rules of a fresh generation (text, image, reference images); 400s say which rule."""
    seconds = ask.seconds if ask.seconds is not None else 8
    if seconds not in model.durations:
        shown = ",".join(str(d) for d in model.durations)
        raise bad(
            f"Unsupported output video duration {seconds} seconds, supported durations are [{shown}] "
            f"for {model.id}."
        )
    aspect = ask.aspect or "16:9"
    resolution = ask.resolution or "720p"
    if resolution not in model.resolutions:
        raise bad(
            f"Unsupported resolution {resolution!r} for {model.id}; supported: {', '.join(model.resolutions)}."
        )
    if model.family == "3.0" and resolution == "1080p" and aspect != "16:9":
        raise bad(f"1080p is only supported with aspectRatio 16:9 on {model.id}.")
    if resolution in ("1080p", "4k") and seconds != 8:
        raise bad(f"durationSeconds must be 8 when resolution is {resolution}, got {seconds}.")
    if not 1 <= ask.samples <= max_samples:
        raise bad(f"sampleCount must be between 1 and {max_samples} for {model.id}, got {ask.samples}.")
    if ask.seed is not None and not 0 <= ask.seed <= 4_294_967_295:
        raise bad(f"seed must be between 0 and 4294967295, got {ask.seed}.")

    image = None
    if ask.instance.get("image") is not None:
        data, uri = media(ask.instance["image"], "instances[0].image", kinds=IMAGE_TYPES)
        if uri is not None:
            if api == "gemini":
                raise bad("gcsUri is not supported in the Gemini API; send the image as bytesBase64Encoded.")
            raise bad(
                f"The simulator cannot read {uri}: it only serves the videos it wrote. "
                "Send the image as bytesBase64Encoded."
            )
        image = data
    if ask.instance.get("lastFrame") is not None and image is None:
        raise bad("lastFrame requires image (the first frame) to be set as well.")
    refs = ask.references
    if refs:
        if model.family != "3.1" and not (api == "vertex" and model.id == "veo-2.0-generate-exp"):
            raise bad(f"referenceImages is not supported by {model.id}.")
        if len(refs) > 3:
            raise bad(f"At most 3 reference images are supported, got {len(refs)}.")
        if seconds != 8:
            raise bad(f"durationSeconds must be 8 when using reference images, got {seconds}.")
        for index, ref in enumerate(refs):
            if not isinstance(ref, dict) or ref.get("image") is None:
                raise bad(f"referenceImages[{index}] must have an image.")
            kind = enum(
                ref.get("referenceType", "asset"),
                f"referenceImages[{index}].referenceType",
                ("asset", "style"),
            )
            if kind == "style" and model.family == "3.1":
                raise bad("Veo 3.1 models don't support referenceImages.style; use asset references.")
            media(ref["image"], f"referenceImages[{index}].image", kinds=IMAGE_TYPES)
    _check_person(model, ask, image is not None or bool(refs), api)
    width, height = SIZES[(resolution, aspect)]
    if resolution == "4k":
        raise bad(
            "The simulator renders up to 1080p: 4k is valid here on the real service, but ask the "
            "simulator for 720p or 1080p."
        )
    return Plan(seconds, width, height, resolution, aspect, image)


def _check_person(model: VeoModel, ask: VeoAsk, has_image: bool, api: str) -> None:
    allowed = {"allowall": "allow_all", "allowadult": "allow_adult", "dontallow": "dont_allow"}
    if ask.person is None:
        return
    if ask.person not in allowed:
        raise bad(
            f"Invalid personGeneration {ask.parameters.get('personGeneration')!r}; use allow_all, allow_adult or dont_allow."
        )
    if api != "gemini" or model.family == "2.0":
        return
    # Gemini API, Veo 3 and 3.1: text-to-video allows all, anything from an image adults only.
    need = "allowadult" if has_image else "allowall"
    if ask.person != need:
        feature = "image-to-video" if has_image else "text-to-video"
        raise bad(
            f"personGeneration {allowed[ask.person]!r} is not supported for {feature} on {model.id}; "
            f"use {allowed[need]!r}."
        )
