"""Veo through Vertex AI (now "Gemini Enterprise Agent Platform"), REST API version ``v1``.

What lives here: :data:`CAPABILITIES` (Veo 3.1 GA on Vertex, as data) and
:class:`VertexBackend`: ``predictLongRunning`` -> ``fetchPredictOperation`` (a POST, not a GET
of the operation) -> the video's bytes from the answer, or its ``gs://`` object through the
Cloud Storage JSON API. Access tokens come from ``GOOGLE_OAUTH_ACCESS_TOKEN`` or, when the
optional ``google-auth`` is installed, Application Default Credentials (this is the one module
that imports it). What does not: retries and rate limits (``jobs/``), HTTP (``http.py``), or the
reading of the operation itself, which is shared with the Gemini API (``gemini.operation_status``).

``v1``, not the SDK's ``v1beta1``: Veo 3.1 GA through ``v1beta1`` fails with
``RESOURCE_PROJECT_INVALID`` while REST on ``v1`` works (python-genai#2079).
"""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from composer.backends import BACKENDS, remote
from composer.backends.base import Capabilities, GenerationRequest, TakeInput
from composer.backends.gemini import VEO_PRICES, image_part, operation_status
from composer.backends.http import Http, dumps, origin
from composer.backends.remote import Operation, OperationStatus, RemoteBackend
from composer.errors import EnvironmentProblem, RetryableError, TerminalError

API_VERSION = "v1"
TOKEN_ENV = BACKENDS["vertex"].key_variables
PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"
LOCATION_ENV = "GOOGLE_CLOUD_LOCATION"
DEFAULT_LOCATION = "us-central1"
BASE_URL_ENV = BACKENDS["vertex"].base_url_variable
STORAGE_URI_ENV = "COMPOSER_VERTEX_STORAGE_URI"
GCS_BASE_URL_ENV = "COMPOSER_GCS_BASE_URL"
DEFAULT_GCS_BASE_URL = "https://storage.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]

CAPABILITIES = Capabilities(
    name="vertex",
    base_durations_s=(4.0, 6.0, 8.0),
    # "the input video must be 1 to 30 seconds … extended by 7 seconds (up to 37 seconds total)":
    # from an 8 s base, 8 -> 15 -> 22 -> 29 -> 36 s; a fifth would start from 36 s (> 30 s). Any
    # base may start a chain (the Gemini API's "must be 8" rule is not Vertex's).
    extension_step_s=7.0,
    extendable_base_durations_s=None,
    max_extensions=4,
    max_total_s=37.0,
    native_fps="24",
    # 720p only, like the Gemini backend: Google ties 1080p to 8 s clips, which capabilities
    # cannot say, and extension chains are what composer makes.
    resolutions=((1280, 720), (720, 1280)),
    extension_resolutions=((1280, 720), (720, 1280)),
    first_frame=True,
    last_frame=True,
    max_reference_images=3,
    audio=True,
    models={
        "fast": "veo-3.1-fast-generate-001",
        "quality": "veo-3.1-generate-001",
        "lite": "veo-3.1-lite-generate-001",
    },
    price_per_s={
        "veo-3.1-generate-001": VEO_PRICES["veo-3.1-generate-preview"],
        "veo-3.1-fast-generate-001": VEO_PRICES["veo-3.1-fast-generate-preview"],
        "veo-3.1-lite-generate-001": VEO_PRICES["veo-3.1-lite-generate-preview"],
    },
    needs_key=True,
    # "Maximum API requests per minute per project: 10" (Vertex Veo model pages).
    requests_per_minute=10,
    poll_interval_s=10.0,
)

_GS_URI = re.compile(r"^gs://([^/]+)/(.+)$")
_RESOURCE = re.compile(r"^projects/[^/]+/locations/[^/]+/publishers/[^/]+/models/[^/]+$")


class VertexBackend(RemoteBackend):
    """Veo on Vertex AI: ``predictLongRunning``, ``fetchPredictOperation``, then read or fetch the video."""

    capabilities = CAPABILITIES
    key_env = "GOOGLE_OAUTH_ACCESS_TOKEN (or Application Default Credentials)"

    def __init__(
        self, *, base_url: str | None = None, proxy: str | None = None, model: str | None = None
    ) -> None:
        token = remote.env_first(*TOKEN_ENV)
        self._credentials: Any = None
        adc_project: str | None = None
        if token is None:
            self._credentials, adc_project = _application_default_credentials()
        project = remote.env_first(PROJECT_ENV) or adc_project
        if not project:
            raise EnvironmentProblem(
                f"the vertex backend needs a Google Cloud project: set {PROJECT_ENV} "
                "(e.g. the output of `gcloud config get-value project`)"
            )
        self.project = project
        self.location = remote.env_first(LOCATION_ENV) or DEFAULT_LOCATION
        overridden = base_url or remote.env_first(BASE_URL_ENV)
        self.base_url = (overridden or _default_base_url(self.location)).rstrip("/")
        # A simulator (an overridden base URL) serves the storage API too.
        self.storage_url = (
            remote.env_first(GCS_BASE_URL_ENV) or (self.base_url if overridden else DEFAULT_GCS_BASE_URL)
        ).rstrip("/")
        self.storage_uri = remote.env_first(STORAGE_URI_ENV)
        self.model = CAPABILITIES.resolve_model(model or "fast")
        self.http = Http(
            service="vertex",
            base_url=self.base_url,
            key_env=self.key_env,
            headers={"accept": "application/json"},
            auth={"authorization": f"Bearer {token}"} if token else {},
            # The same token reads the results from Cloud Storage (and only there).
            auth_hosts=(origin(self.storage_url),),
            secrets=(token,) if token else (),
            proxy=proxy,
        )
        self._refresh_lock: asyncio.Lock | None = None

    def default_endpoint(self) -> bool:
        return self.base_url == _default_base_url(self.location)

    def _resource(self, model: str) -> str:
        return f"projects/{self.project}/locations/{self.location}/publishers/google/models/{model}"

    async def _authorize(self) -> None:
        """Refresh the ADC access token when it is missing or about to expire (blocking: in a thread)."""
        if self._credentials is None:
            return
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        async with self._refresh_lock:
            if self._credentials.valid and self._credentials.token:
                return
            from google.auth.exceptions import GoogleAuthError, TransportError
            from google.auth.transport.requests import Request

            try:
                await asyncio.to_thread(self._credentials.refresh, Request())
            except TransportError as exc:
                raise RetryableError(
                    f"could not reach Google to refresh the access token ({type(exc).__name__})",
                    reached_server=False,
                ) from None
            except GoogleAuthError as exc:
                # RefreshError: the login behind ADC expired or was revoked; a retry cannot fix it.
                raise TerminalError(
                    f"the Google access token could not be refreshed ({type(exc).__name__}); run "
                    f"`gcloud auth application-default login`, or set {TOKEN_ENV[0]}"
                ) from None
            token = str(self._credentials.token)
            self.http.set_auth({"authorization": f"Bearer {token}"}, secrets=(token,))

    async def submit(self, request: GenerationRequest, inputs: TakeInput) -> Operation:
        remote.check_request(CAPABILITIES, request)
        await self._authorize()
        model = remote.model_id("vertex", CAPABILITIES.resolve_model(request.model or self.model))
        instance: dict[str, Any] = {"prompt": remote.prompt_text(request)}
        parameters: dict[str, Any] = {
            "sampleCount": 1,
            "durationSeconds": round(request.duration_s),
            "generateAudio": bool(request.audio),
            "seed": request.seed % 2**32,  # uint32 on Vertex
        }
        if request.kind == "extend":
            # Extension "accepts only durationSeconds=7" (check_request holds it to the 7 s step);
            # size and aspect ratio come from the input video.
            instance["video"] = _parent_video(inputs)
        else:
            parameters["aspectRatio"] = remote.aspect_ratio(request.width, request.height)
            parameters["resolution"] = remote.resolution_label(request.width, request.height)
            if inputs.first_frame_path is not None:
                instance["image"] = image_part(inputs.first_frame_path, request.width, request.height)
            last = getattr(inputs, "last_frame_path", None)  # not in TakeInput yet
            if last is not None:
                instance["lastFrame"] = image_part(last, request.width, request.height)
        if request.negative_prompt:
            parameters["negativePrompt"] = request.negative_prompt
        if self.storage_uri:
            parameters["storageUri"] = self.storage_uri
        what = "extension" if request.kind == "extend" else "create"
        resource = self._resource(model)
        body = await self.http.json(
            "POST",
            f"{API_VERSION}/{resource}:predictLongRunning",
            what=what,
            model=model,
            content=dumps({"instances": [instance], "parameters": parameters}),
            headers={"content-type": "application/json; charset=utf-8"},
        )
        name = remote.created_id("vertex", body, "name", what=what, redact=self.http.redact, path=True)
        # Poll where the operation lives, as google-genai does: the name up to "/operations/".
        owner = name.rpartition("/operations/")[0]
        return Operation(
            backend="vertex",
            id=name,
            base_url=self.base_url,
            data={
                "model": model,
                "kind": request.kind,
                "resource": owner if _RESOURCE.match(owner) else resource,
            },
        )

    async def poll(self, operation: Operation) -> OperationStatus:
        remote.check_operation(operation, "vertex", self.base_url)
        await self._authorize()
        resource = str(operation.data.get("resource") or "")
        if not _RESOURCE.match(resource):
            resource = self._resource(str(operation.data.get("model") or self.model))
        body = await self.http.json(
            "POST",
            f"{API_VERSION}/{resource}:fetchPredictOperation",
            what="poll",
            content=dumps({"operationName": operation.id}),
            headers={"content-type": "application/json; charset=utf-8"},
        )
        return operation_status(body, service="vertex", redact=self.http.redact)

    async def download(self, operation: Operation, status: OperationStatus, dest: Path) -> None:
        video = status.video
        if video.get("bytes_b64"):
            # No storageUri: "base64-encoded video bytes are returned in the response".
            try:
                data = base64.b64decode(video["bytes_b64"])
            except ValueError:
                raise RetryableError("vertex sent video bytes that are not valid base64") from None
            remote.write_file(dest, data)
            return
        uri = video.get("gcsUri") or video.get("uri")
        match = _GS_URI.match(uri) if isinstance(uri, str) else None
        if match is None:
            raise TerminalError(
                f"vertex operation {operation.id} finished without video bytes or a gs:// uri ({uri!r})"
            )
        await self._authorize()
        bucket, name = match.groups()
        await self.http.download(
            f"{self.storage_url}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}",
            dest,
            what="Cloud Storage download",
            params={"alt": "media"},
        )

    def clip_state(self, operation: Operation, status: OperationStatus) -> dict[str, Any]:
        # An extension sends the parent's gs:// uri when it has one, else the parent file's bytes.
        state: dict[str, Any] = {"backend": "vertex", "operation": operation.id}
        if status.video.get("gcsUri"):
            state["gcsUri"] = status.video["gcsUri"]
        return state

    async def aclose(self) -> None:
        await self.http.aclose()


def _default_base_url(location: str) -> str:
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def _parent_video(inputs: TakeInput) -> dict[str, Any]:
    state = remote.parent_state("vertex", inputs)
    uri = state.get("gcsUri")
    if isinstance(uri, str) and uri.startswith("gs://"):
        return {"gcsUri": uri, "mimeType": "video/mp4"}
    if inputs.parent_path is None or not Path(inputs.parent_path).is_file():
        raise TerminalError(
            "the parent take's clip is missing and it has no gs:// uri to extend from; regenerate the parent "
            f"(or set {STORAGE_URI_ENV} so Vertex keeps results in Cloud Storage)"
        )
    data = Path(inputs.parent_path).read_bytes()
    return {"bytesBase64Encoded": base64.b64encode(data).decode("ascii"), "mimeType": "video/mp4"}


def _application_default_credentials() -> tuple[Any, str | None]:
    """(credentials, project) from ADC, or EnvironmentProblem saying how to provide a token."""
    missing = (
        f"the vertex backend needs an access token: set {TOKEN_ENV[0]} "
        "(e.g. to the output of `gcloud auth print-access-token`), or install the optional "
        "Google auth library with `pip install 'composer[vertex]'` and run "
        "`gcloud auth application-default login`"
    )
    try:
        import google.auth
        import google.auth.exceptions

        # Refreshing needs the requests transport (google-auth[requests]); fail now, not mid-run.
        import google.auth.transport.requests
    except ImportError:
        raise EnvironmentProblem(missing) from None
    try:
        credentials, project = google.auth.default(scopes=SCOPES)
    except google.auth.exceptions.DefaultCredentialsError:
        raise EnvironmentProblem(missing) from None
    return credentials, project or None
