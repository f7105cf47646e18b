"""The interface of the API backends: submit an operation, poll it, download its video.

A remote generation is a long-running operation on someone else's computer, paid for when
it is submitted. So the interface is split in the three steps the job runner journals and
retries separately (``jobs/remote.py``): :meth:`RemoteBackend.submit` returns an
:class:`Operation` (small, JSON-able: the journal stores it before polling starts, so a
killed run polls it again instead of paying twice); :meth:`RemoteBackend.poll` reads its
:class:`OperationStatus`; :meth:`RemoteBackend.download` fetches the finished video.

What lives here: those models, the abstract class, and the few helpers every protocol shares
(the key from the environment, the prompt text with the camera move, a first-frame PNG of the
requested size, checks that a request fits the declared capabilities). What does not: any one protocol
(``gemini.py``, ``vertex.py``, ``openai.py``, ``relay.py``), HTTP details (``http.py``), or
retries, rate limits, journaling and budgets (``jobs/``). Backends raise the error tree
(``RetryableError``, ``TerminalError``, ``ContentFiltered``); the runner decides what to do.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from composer.backends.base import Capabilities, GenerationRequest, TakeInput
from composer.errors import EnvironmentProblem, RetryableError, TerminalError
from composer.files import write_bytes_atomic
from composer.models import Frozen


class Operation(Frozen):
    """A submitted generation, as the service named it: enough to poll and download it later."""

    backend: str
    id: str = Field(description="The service's name for it: an operation name or a video id.")
    base_url: str = Field(description="The service it was submitted to (a resumed run polls the same one).")
    data: dict[str, Any] = Field(default_factory=dict, description="Protocol details (model, resource path).")


class OperationStatus(Frozen):
    """What a poll found."""

    state: Literal["running", "succeeded", "failed", "filtered"]
    progress: float | None = Field(None, description="0..1 when the service says.")
    poll_after_s: float | None = Field(None, description="When the service asked to be polled again.")
    video: dict[str, Any] = Field(
        default_factory=dict,
        description="Where the finished video is: {'uri': ...}, {'url': ...}, {'bytes_b64': ...}, {'id': ...}.",
    )
    message: str = Field("", description="The service's words for a failure or a safety block.")
    code: str = Field("", description="The service's error code or status, when it gave one.")
    retryable: bool = Field(
        False, description="A failed operation with a transient cause (INTERNAL, UNAVAILABLE)."
    )


class RemoteBackend(ABC):
    """A video-generation service behind submit / poll / download (async, httpx)."""

    capabilities: Capabilities
    #: Environment variable(s) the key comes from, named in error messages.
    key_env: str = ""
    #: Where requests go (each backend sets it from --base-url, its environment variable or the default).
    base_url: str = ""

    @abstractmethod
    async def submit(self, request: GenerationRequest, inputs: TakeInput) -> Operation:
        """Send one create (generate or extend) request; return the operation it started."""

    @abstractmethod
    async def poll(self, operation: Operation) -> OperationStatus:
        """Read the operation's state once."""

    @abstractmethod
    async def download(self, operation: Operation, status: OperationStatus, dest: Path) -> None:
        """Write the finished video of ``operation`` to ``dest`` (complete, or raise)."""

    def clip_state(self, operation: Operation, status: OperationStatus) -> dict[str, Any]:
        """What a take keeps to be extended later: the service's reference to its video."""
        reference = {k: v for k, v in status.video.items() if k != "bytes_b64"}
        return {"backend": operation.backend, "operation": operation.id, **reference}

    def default_endpoint(self) -> bool:
        """True when talking to the official service (not a simulator, proxy or relay)."""
        return True

    async def find_created(
        self, request: GenerationRequest, since: float, exclude: frozenset[str] = frozenset()
    ) -> list[Operation] | None:
        """Operations the service started for ``request`` since ``since`` (epoch seconds).

        Asked after a create whose answer was lost, to adopt the operation it may have started
        instead of paying for another. None when the protocol cannot list operations (the
        default: the Google protocols); ``exclude`` names operations known to be others'.
        """
        return None

    @abstractmethod
    async def aclose(self) -> None:
        """Close connections (called once, on the event loop that used them)."""


# -- helpers the protocols share ----------------------------------------------------------------


def env_first(*names: str) -> str | None:
    """The first of ``names`` set to a non-empty value in the environment (stripped), else None."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def describe(body: Any) -> str:
    """A short description of an unexpected answer, for an error message (callers redact it)."""
    try:
        text = json.dumps(body, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        text = repr(body)
    return text if len(text) <= 200 else text[:200] + "…"


def require_key(backend: str, *names: str) -> str:
    """The API key from the first of ``names`` that is set, or EnvironmentProblem naming them."""
    key = env_first(*names)
    if key is None:
        first, rest = names[0], names[1:]
        alternatives = f" (or {' or '.join(rest)})" if rest else ""
        raise EnvironmentProblem(f"the {backend} backend needs an API key: set {first}{alternatives}")
    return key


def prompt_text(request: GenerationRequest) -> str:
    """The prompt the service reads: the APIs take only text, so the storyboard's camera move joins it."""
    prompt = request.prompt.strip()
    if request.camera:
        camera = request.camera.strip().rstrip(".")
        prompt = f"{prompt} Camera: {camera}." if prompt else f"Camera: {camera}."
    return prompt


def aspect_ratio(width: int, height: int) -> str:
    """Veo's two aspect ratios: landscape (and square) sizes are 16:9, portrait ones 9:16."""
    return "16:9" if width >= height else "9:16"


def resolution_label(width: int, height: int) -> str:
    """Veo's resolution names: the short side decides (720p unless it reaches 1080)."""
    return "1080p" if min(width, height) >= 1080 else "720p"


def png_bytes(path: Path, width: int, height: int) -> bytes:
    """The image at ``path`` scaled and centre-cropped to exactly width x height, as PNG bytes.

    Services refuse (OpenAI: "Inpaint image must match the requested width and height") or
    letterbox an image whose size differs from the video's, so every backend sends it cropped.
    """
    # imaging pulls in OpenCV; only requests with a first frame need it.
    from composer import imaging

    picture = imaging.cover(imaging.read_image(path), width, height)
    with tempfile.TemporaryDirectory(prefix="composer-frame-") as work:
        out = Path(work) / "frame.png"
        imaging.write_png(out, picture)
        return out.read_bytes()


def write_file(dest: Path, data: bytes) -> None:
    """Write ``data`` under a temporary name beside ``dest``, then rename (never half a file)."""
    write_bytes_atomic(dest, data)


_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def model_id(backend: str, model: str) -> str:
    """``model`` when it can go into a URL path as it is (``veo-3.1-generate-001``); else TerminalError."""
    if not _MODEL_ID.match(model):
        raise TerminalError(
            f"{model!r} is not a model id the {backend} backend can send: ids are letters, digits, "
            "'.', '-' and '_' (or use the alias 'fast' or 'quality')"
        )
    return model


def check_request(capabilities: Capabilities, request: GenerationRequest) -> None:
    """TerminalError (before anything is paid for) when a request does not fit the declared capabilities."""
    name = capabilities.name
    replan = "make the plan again for this backend and model"
    if request.kind == "extend":
        if capabilities.extension_step_s is None or capabilities.max_extensions == 0:
            raise TerminalError(
                f"the {name} backend cannot extend clips with model {request.model!r}; {replan} "
                "(segments then continue from the previous segment's last frame)"
            )
        if request.duration_s != capabilities.extension_step_s:
            raise TerminalError(
                f"the {name} backend extends by {capabilities.extension_step_s:g} s, not "
                f"{request.duration_s:g} s; {replan}"
            )
    elif request.duration_s not in capabilities.base_durations_s:
        allowed = ", ".join(f"{d:g}" for d in capabilities.base_durations_s)
        raise TerminalError(
            f"the {name} backend makes clips of {allowed} s, not {request.duration_s:g} s; {replan}"
        )
    sizes = capabilities.resolutions
    if request.kind == "extend" and capabilities.extension_resolutions:
        sizes = capabilities.extension_resolutions
    if sizes is not None and (request.width, request.height) not in sizes:
        allowed = ", ".join(f"{w}x{h}" for w, h in sizes)
        raise TerminalError(
            f"the {name} backend makes {allowed} video, not {request.width}x{request.height}; {replan}"
        )
    if capabilities.native_fps is not None and request.fps != capabilities.native_fps:
        raise TerminalError(
            f"the {name} backend makes {capabilities.native_fps} fps video, not {request.fps} fps; {replan}"
        )


def parent_state(backend: str, inputs: TakeInput) -> dict[str, Any]:
    """The state of the take being extended; TerminalError when it is missing or another backend's."""
    state = inputs.parent_state
    if not state:
        raise TerminalError(
            f"the {backend} backend was asked to extend a take it has no record of; "
            "regenerate the parent take"
        )
    made_by = state.get("backend")
    if made_by is not None and made_by != backend:
        raise TerminalError(
            f"the parent take was made by the {made_by} backend; {backend} extends only its own clips "
            "(generate the whole chain with one backend)"
        )
    return state


#: Google operation names ("models/<m>/operations/<id>") go into URL paths as they are.
_PATH_NAME = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")


def path_name(name: object) -> bool:
    """True when ``name`` can be sent as a URL path as it is (no odd characters, no ``..``)."""
    return isinstance(name, str) and bool(_PATH_NAME.match(name)) and ".." not in name


def created_id(
    backend: str, body: Any, field: str, *, what: str, redact: Callable[[str], str], path: bool = False
) -> str:
    """The operation id a create answered with; RetryableError when there is no usable one.

    Such an answer may still mean the job started, so the message says to look for a duplicate
    charge (the runner counts the retried create as a possible duplicate).
    """
    value = body.get(field) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value or (path and not path_name(value)):
        raise RetryableError(
            redact(
                f"{backend} answered the {what} without a usable {field} ({describe(body)}); "
                "the job may have started: check for a duplicate charge before retrying"
            )
        )
    return value


def check_operation(operation: Operation, backend: str, base_url: str) -> None:
    """TerminalError when an operation belongs to another backend or service than this one."""
    if operation.backend != backend:
        raise TerminalError(
            f"operation {operation.id!r} belongs to the {operation.backend} backend, not {backend}"
        )
    if operation.base_url.rstrip("/") != base_url.rstrip("/"):
        raise TerminalError(
            f"operation {operation.id!r} was submitted to {operation.base_url}, and this {backend} backend "
            f"talks to {base_url}; run with --base-url {operation.base_url} to finish it"
        )
