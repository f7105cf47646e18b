"""The four API backends against the project's simulator on loopback: the real wire protocols.

Each backend makes a real (short) clip through submit -> poll -> download and the result is
decoded with ffmpeg; extensions, errors and their fixes, safety blocks and key hygiene are
checked the same way. Generations are kept few and short: the simulator renders every clip.
"""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from composer import ffmpeg, imaging
from composer.backends import registry
from composer.backends.base import GenerationRequest, TakeInput
from composer.backends.remote import Operation, OperationStatus, RemoteBackend
from composer.errors import ComposerError, EnvironmentProblem, RetryableError, TerminalError
from composer.sim import Simulator
from tests.support import FAKE_KEYS, base_url, wait_until_async

MODELS = {
    "gemini": "veo-3.1-fast-generate-preview",
    "vertex": "veo-3.1-fast-generate-001",
    "openai": "sora-2",
    "relay": "veo-3.1-fast",
}


# No real key, address or proxy from the developer's shell may reach these tests.
pytestmark = pytest.mark.usefixtures("service_env")


def make(name: str, sim: Simulator, **kwargs: Any) -> RemoteBackend:
    backend = registry.create(name, base_url=base_url(sim, name), **kwargs)
    assert isinstance(backend, RemoteBackend)
    return backend


def request(
    backend: str, *, kind: str = "generate", seconds: float = 4.0, **kwargs: Any
) -> GenerationRequest:
    fields: dict[str, Any] = {
        "backend": backend,
        "model": MODELS[backend],
        "kind": kind,
        "prompt": "a red kite over green hills",
        "camera": "slow pan right",
        "duration_s": seconds,
        "width": 1280,
        "height": 720,
        "fps": "24",
        "seed": 7,
        **kwargs,
    }
    return GenerationRequest(**fields)


async def finish(backend: RemoteBackend, operation: Operation, timeout_s: float = 120.0) -> OperationStatus:
    """Poll until the operation leaves "running" (the simulator answers in well under a second)."""
    return await wait_until_async(
        lambda: backend.poll(operation),
        lambda status: status.state != "running",
        timeout_s=timeout_s,
        what=f"{operation.id} leaving running",
    )


async def make_clip(
    backend: RemoteBackend, req: GenerationRequest, inputs: TakeInput, dest: Path
) -> tuple[Operation, OperationStatus]:
    operation = await backend.submit(req, inputs)
    status = await finish(backend, operation)
    assert status.state == "succeeded", status
    await backend.download(operation, status, dest)
    return operation, status


def assert_no_key(*things: Any) -> None:
    """None of the test keys appears in ``things`` (models are dumped, the rest repr'd)."""
    for thing in things:
        text = thing.model_dump_json() if hasattr(thing, "model_dump_json") else repr(thing)
        for key in FAKE_KEYS.values():
            assert key not in text
            assert base64.b64encode(key.encode()).decode() not in text


def frames_of(path: Path) -> int:
    report = ffmpeg.decode(path)
    assert not report.errors, report.errors
    return report.frames


@pytest.fixture(scope="module")
def first_frame(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640x480 picture (not the video's size: backends must crop it to fit)."""
    path = tmp_path_factory.mktemp("frames") / "first.png"
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    image[:, :, 1] = np.linspace(40, 220, 640, dtype=np.uint8)[None, :]
    image[160:320, 240:400] = (30, 30, 200)
    imaging.write_png(path, image)
    return path


# -- round trips --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_gemini_generate_then_extend(
    sim: Simulator, keys: dict[str, str], first_frame: Path, tmp_path: Path
) -> None:
    async def go() -> None:
        backend = make("gemini", sim)
        try:
            base = request("gemini", seconds=8.0)
            op, status = await make_clip(
                backend, base, TakeInput(first_frame_path=first_frame), tmp_path / "a.mp4"
            )
            assert op.id.startswith("models/veo-3.1-fast-generate-preview/operations/")
            assert frames_of(tmp_path / "a.mp4") == 8 * 24
            state = backend.clip_state(op, status)
            assert "files/" in state["uri"]
            assert_no_key(op, status, state)
            ext = request("gemini", kind="extend", seconds=7.0, parent="a")
            inputs = TakeInput(parent_path=tmp_path / "a.mp4", parent_state=state)
            await make_clip(backend, ext, inputs, tmp_path / "b.mp4")
            # The extension is the whole stitched clip: 8 + 7 s.
            assert frames_of(tmp_path / "b.mp4") == 15 * 24
        finally:
            await backend.aclose()

    asyncio.run(go())
    stats = sim.stats()["gemini"]
    assert stats["created"] >= 2 and stats["downloads"] >= 2


@pytest.mark.slow
def test_vertex_generate_bytes_then_extend_from_bytes(
    sim: Simulator, keys: dict[str, str], tmp_path: Path
) -> None:
    async def go() -> None:
        backend = make("vertex", sim)
        try:
            op, status = await make_clip(backend, request("vertex"), TakeInput(), tmp_path / "a.mp4")
            # No storageUri: Vertex answers with the video's bytes.
            assert "bytes_b64" in status.video
            state = backend.clip_state(op, status)
            assert "bytes_b64" not in state and "gcsUri" not in state
            assert_no_key(op, state)
            assert frames_of(tmp_path / "a.mp4") == 4 * 24
            # Vertex extends any 1-30 s input, so a 4 s base will do: the parent's bytes go up.
            ext = request("vertex", kind="extend", seconds=7.0, parent="a")
            inputs = TakeInput(parent_path=tmp_path / "a.mp4", parent_state=state)
            await make_clip(backend, ext, inputs, tmp_path / "b.mp4")
            assert frames_of(tmp_path / "b.mp4") == 11 * 24
        finally:
            await backend.aclose()

    asyncio.run(go())


@pytest.mark.slow
def test_vertex_storage_uri_downloads_through_cloud_storage(
    sim: Simulator, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COMPOSER_VERTEX_STORAGE_URI", "gs://composer-test-bucket/takes/")

    async def go() -> dict[str, Any]:
        backend = make("vertex", sim)
        try:
            req = request("vertex", seconds=4.0, width=720, height=1280)
            op, status = await make_clip(backend, req, TakeInput(), tmp_path / "a.mp4")
            return backend.clip_state(op, status)
        finally:
            await backend.aclose()

    state = asyncio.run(go())
    assert state["gcsUri"].startswith("gs://composer-test-bucket/")
    assert_no_key(state)
    assert frames_of(tmp_path / "a.mp4") == 4 * 24
    # An extension of this take names the object, as the SDK does, rather than uploading it.
    from composer.backends.vertex import _parent_video

    assert _parent_video(TakeInput(parent_state=state)) == {
        "gcsUri": state["gcsUri"],
        "mimeType": "video/mp4",
    }


@pytest.mark.slow
def test_openai_generate_with_reference_then_extend(
    sim: Simulator, keys: dict[str, str], first_frame: Path, tmp_path: Path
) -> None:
    async def go() -> None:
        backend = make("openai", sim, model="sora-2")
        try:
            base = request("openai", seconds=4.0)
            op, status = await make_clip(
                backend, base, TakeInput(first_frame_path=first_frame), tmp_path / "a.mp4"
            )
            assert frames_of(tmp_path / "a.mp4") == 4 * 24
            state = backend.clip_state(op, status)
            assert state["id"] == op.id
            assert_no_key(op, status, state)
            ext = request("openai", kind="extend", seconds=4.0, parent="a")
            ext_op, _ = await make_clip(
                backend,
                ext,
                TakeInput(parent_path=tmp_path / "a.mp4", parent_state=state),
                tmp_path / "b.mp4",
            )
            # A new video id holding the stitched clip: 4 + 4 s.
            assert ext_op.id != op.id
            assert frames_of(tmp_path / "b.mp4") == 8 * 24
        finally:
            await backend.aclose()

    asyncio.run(go())
    assert sim.stats()["openai"]["created"] >= 2


@pytest.mark.slow
def test_relay_generate_then_extend(
    sim: Simulator, keys: dict[str, str], first_frame: Path, tmp_path: Path
) -> None:
    async def go() -> None:
        backend = make("relay", sim)
        try:
            base = request("relay", seconds=8.0)
            op, status = await make_clip(
                backend, base, TakeInput(first_frame_path=first_frame), tmp_path / "a.mp4"
            )
            assert frames_of(tmp_path / "a.mp4") == 8 * 24
            state = backend.clip_state(op, status)
            assert state["video_id"] == op.id
            # The relay's download URL may be signed and short-lived: not kept in the state.
            assert "url" not in state
            assert_no_key(op, status, state)
            ext = request("relay", kind="extend", seconds=7.0, parent="a")
            inputs = TakeInput(parent_path=tmp_path / "a.mp4", parent_state=state)
            await make_clip(backend, ext, inputs, tmp_path / "b.mp4")
            assert frames_of(tmp_path / "b.mp4") == 15 * 24
        finally:
            await backend.aclose()

    asyncio.run(go())


# -- errors and their fixes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("gemini", "GEMINI_API_KEY"),
        ("vertex", "GOOGLE_OAUTH_ACCESS_TOKEN"),
        ("openai", "OPENAI_API_KEY"),
        ("relay", "COMPOSER_RELAY_API_KEY"),
    ],
)
def test_missing_key_names_the_variable(name: str, variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "composer-test")
    with pytest.raises(EnvironmentProblem, match=variable):
        registry.create(name, base_url="http://127.0.0.1:9")


def test_missing_relay_address_and_vertex_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPOSER_RELAY_API_KEY", FAKE_KEYS["COMPOSER_RELAY_API_KEY"])
    with pytest.raises(EnvironmentProblem, match="COMPOSER_RELAY_BASE_URL"):
        registry.create("relay")
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", FAKE_KEYS["GOOGLE_OAUTH_ACCESS_TOKEN"])
    with pytest.raises(EnvironmentProblem, match="GOOGLE_CLOUD_PROJECT"):
        registry.create("vertex")


@pytest.mark.parametrize("name", ["gemini", "vertex", "openai", "relay"])
def test_unknown_model_is_terminal_and_names_it(name: str, sim: Simulator, keys: dict[str, str]) -> None:
    model = "no-such-model-9" if name != "openai" else "sora-no-such-model-9"

    async def go() -> None:
        backend = make(name, sim)
        try:
            await backend.submit(request(name, model=model), TakeInput())
        finally:
            await backend.aclose()

    with pytest.raises(TerminalError, match=model):
        asyncio.run(go())


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("gemini", "GEMINI_API_KEY"),
        ("vertex", "GOOGLE_OAUTH_ACCESS_TOKEN"),
        ("openai", "OPENAI_API_KEY"),
        ("relay", "COMPOSER_RELAY_API_KEY"),
    ],
)
def test_wrong_key_is_terminal_names_the_variable_and_is_redacted(
    name: str, variable: str, keys: dict[str, str]
) -> None:
    with Simulator(latency_s=0.05, faults="", seed=0, api_key="the-right-key") as strict:

        async def go() -> None:
            backend = make(name, strict)
            try:
                await backend.submit(request(name), TakeInput())
            finally:
                await backend.aclose()

        with pytest.raises(TerminalError) as caught:
            asyncio.run(go())
    text = str(caught.value)
    assert f"check {variable}" in text
    assert_no_key(text)


def test_requests_outside_the_capabilities_are_refused_before_sending(
    sim: Simulator, keys: dict[str, str]
) -> None:
    async def go(req: GenerationRequest) -> None:
        backend = make("gemini", sim)
        try:
            await backend.submit(req, TakeInput())
        finally:
            await backend.aclose()

    before = sim.stats()["gemini"]["created"]
    with pytest.raises(TerminalError, match="4, 6, 8 s"):
        asyncio.run(go(request("gemini", seconds=5.0)))
    with pytest.raises(TerminalError, match="1920x1080"):
        asyncio.run(go(request("gemini", width=1920, height=1080)))
    with pytest.raises(TerminalError, match="made by the openai backend"):
        ext = request("gemini", kind="extend", seconds=7.0, parent="p")
        state = {"backend": "openai", "id": "video_1"}

        async def extend() -> None:
            backend = make("gemini", sim)
            try:
                await backend.submit(ext, TakeInput(parent_state=state))
            finally:
                await backend.aclose()

        asyncio.run(extend())
    assert sim.stats()["gemini"]["created"] == before


def test_operation_from_another_service_is_not_polled_here(sim: Simulator, keys: dict[str, str]) -> None:
    async def go() -> None:
        backend = make("gemini", sim)
        try:
            stray = Operation(
                backend="gemini", id="models/m/operations/abc", base_url="https://elsewhere.test"
            )
            await backend.poll(stray)
        finally:
            await backend.aclose()

    with pytest.raises(TerminalError, match=re.escape("--base-url https://elsewhere.test")):
        asyncio.run(go())


# -- faults from the service ----------------------------------------------------------------------------


#: Words of each service's own reason for a safety block (as the simulator, after the real ones, says it).
FILTER_WORDS = {
    "gemini": "safety filters",
    "vertex": "Support codes",
    "openai": "moderation",
    "relay": "safety filters",
}


@pytest.mark.parametrize("name", ["gemini", "vertex", "openai", "relay"])
def test_safety_block_is_a_filtered_status_with_the_service_reason(name: str, keys: dict[str, str]) -> None:
    with Simulator(latency_s=0.05, faults=f"filter@{name}=1x", seed=0) as server:

        async def go() -> OperationStatus:
            backend = make(name, server)
            try:
                operation = await backend.submit(request(name), TakeInput())
                return await finish(backend, operation)
            finally:
                await backend.aclose()

        status = asyncio.run(go())
        assert server.stats()[name]["filtered"] == 1
    assert status.state == "filtered", status
    assert FILTER_WORDS[name] in status.message
    assert not status.retryable
    assert_no_key(status)


@pytest.mark.parametrize("name", ["gemini", "openai"])
def test_failed_operation_reports_the_service_words(name: str, keys: dict[str, str]) -> None:
    with Simulator(latency_s=0.05, faults=f"fail@{name}=1x", seed=0) as server:

        async def go() -> OperationStatus:
            backend = make(name, server)
            try:
                return await finish(backend, await backend.submit(request(name), TakeInput()))
            finally:
                await backend.aclose()

        status = asyncio.run(go())
    assert status.state == "failed", status
    assert status.message


@pytest.mark.slow
def test_rate_limit_then_success_and_truncated_download_then_success(
    keys: dict[str, str], tmp_path: Path
) -> None:
    faults = "429@gemini.create=1x:3,truncate@gemini.download=1x"
    with Simulator(latency_s=0.05, faults=faults, seed=0) as server:

        async def go() -> None:
            backend = make("gemini", server)
            try:
                req = request("gemini")
                with pytest.raises(RetryableError) as limited:
                    await backend.submit(req, TakeInput())
                assert limited.value.retry_after_s == 3.0
                assert limited.value.reached_server is False
                operation = await backend.submit(req, TakeInput())
                status = await finish(backend, operation)
                with pytest.raises(RetryableError):
                    await backend.download(operation, status, tmp_path / "a.mp4")
                assert not (tmp_path / "a.mp4").exists()
                await backend.download(operation, status, tmp_path / "a.mp4")
            finally:
                await backend.aclose()

        asyncio.run(go())
    assert frames_of(tmp_path / "a.mp4") == 4 * 24


def test_server_errors_are_retryable_for_every_protocol(keys: dict[str, str]) -> None:
    faults = ",".join(
        f"{kind}@{name}.create=1x"
        for kind, name in [("500", "gemini"), ("503", "vertex"), ("500", "openai"), ("503", "relay")]
    )
    with Simulator(latency_s=0.05, faults=faults, seed=0) as server:

        async def go(name: str) -> RetryableError:
            backend = make(name, server)
            try:
                await backend.submit(request(name), TakeInput())
            except RetryableError as exc:
                return exc
            finally:
                await backend.aclose()
            raise AssertionError(f"{name}: no error")

        for name in ("gemini", "vertex", "openai", "relay"):
            error = asyncio.run(go(name))
            assert error.reached_server is True
            assert_no_key(str(error))


# -- keys never leak -------------------------------------------------------------------------------------


def test_the_key_never_appears_in_errors_operations_or_state(keys: dict[str, str]) -> None:
    # Every kind of answer that quotes the service, none of which needs a render: rate limits,
    # server errors on polls, safety blocks, unknown models, and a key the service refuses.
    faults = "429@create=4x,500@poll=4x," + ",".join(f"filter@{name}=1x" for name in MODELS)
    seen: list[Any] = []

    async def attempt(step: Any) -> Any:
        for _ in range(5):
            try:
                return await step()
            except ComposerError as exc:
                seen.append(str(exc))
        raise AssertionError("the fault did not clear")

    async def go(server: Simulator, name: str) -> None:
        backend = make(name, server)
        try:
            req = request(name)
            operation = await attempt(lambda: backend.submit(req, TakeInput()))
            status = await attempt(lambda: finish(backend, operation))
            seen.extend([operation, status, backend.clip_state(operation, status), vars(backend)])
            try:
                await backend.submit(request(name, model="no-such-model-9"), TakeInput())
            except ComposerError as exc:
                seen.append(str(exc))
        finally:
            await backend.aclose()

    with Simulator(latency_s=0.05, faults=faults, seed=0) as server:
        for name in MODELS:
            asyncio.run(go(server, name))

    async def refused(server: Simulator, name: str) -> None:
        backend = make(name, server)
        try:
            await backend.submit(request(name), TakeInput())
        finally:
            await backend.aclose()

    with Simulator(latency_s=0.05, faults="", seed=0, api_key="the-right-key") as strict:
        for name in MODELS:
            with pytest.raises(TerminalError) as caught:
                asyncio.run(refused(strict, name))
            seen.append(str(caught.value))
    assert len(seen) >= 4 * 4 + 4 + 4
    assert_no_key(*seen)


# -- capabilities as data -------------------------------------------------------------------------------


def test_capabilities_are_declared_per_backend_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    gemini = registry.capabilities("gemini")
    assert gemini.longest_clip_s == 148.0 and gemini.native_fps == "24"
    assert gemini.price_per_s[gemini.resolve_model("quality")] == 0.40
    vertex = registry.capabilities("vertex")
    assert vertex.max_extensions == 4 and vertex.longest_clip_s == 36.0
    sora = registry.capabilities("openai", "sora-2")
    assert sora.extension_step_s == 4.0 and sora.longest_clip_s == 44.0
    assert (1920, 1080) not in (sora.resolutions or ())
    pro = registry.capabilities("openai", "quality")
    assert (1920, 1080) in (pro.resolutions or ()) and pro.price_per_s["sora-2-pro"] == 0.30
    veo = registry.capabilities("openai", "veo-3.1-fast-generate-preview")
    assert veo.extension_step_s is None and veo.base_durations_s == (4.0, 6.0, 8.0)
    monkeypatch.setenv("COMPOSER_OPENAI_EXTENSIONS", "0")
    assert registry.capabilities("openai", "sora-2").extension_step_s is None
    assert registry.capabilities("relay").models == {"fast": "veo-3.1-fast", "quality": "veo-3.1"}
    assert registry.capabilities("local").name == "local"
    with pytest.raises(EnvironmentProblem, match="available: gemini, local, openai, relay, vertex"):
        registry.capabilities("kling")


def test_default_endpoint_only_for_the_official_hosts(keys: dict[str, str]) -> None:
    def official(name: str, url: str | None = None) -> bool:
        backend = registry.create(name, base_url=url)
        assert isinstance(backend, RemoteBackend)
        return backend.default_endpoint()

    assert official("gemini") and official("openai") and official("vertex")
    assert not official("gemini", "http://127.0.0.1:9")
    assert not official("vertex", "http://127.0.0.1:9")
    assert not official("relay", "https://relay.example")


def test_vertex_application_default_credentials_are_refreshed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a token variable, vertex asks google-auth (faked here: it is an optional extra)."""
    import sys
    import types

    refreshed: list[str] = []

    class Credentials:
        token: str | None = None
        valid = False

        def refresh(self, request: object) -> None:
            self.token, self.valid = f"adc-token-{len(refreshed)}-LEAKCHECK", True
            refreshed.append(self.token)

    class GoogleAuthError(Exception):
        pass

    class DefaultCredentialsError(GoogleAuthError):
        pass

    class TransportError(GoogleAuthError):
        pass

    def default(scopes: list[str]) -> tuple[Credentials, str]:
        assert scopes == ["https://www.googleapis.com/auth/cloud-platform"]
        return Credentials(), "adc-project"

    google = types.ModuleType("google")
    auth = types.ModuleType("google.auth")
    exceptions = types.ModuleType("google.auth.exceptions")
    transport = types.ModuleType("google.auth.transport")
    requests = types.ModuleType("google.auth.transport.requests")
    auth.default = default  # type: ignore[attr-defined]
    exceptions.GoogleAuthError = GoogleAuthError  # type: ignore[attr-defined]
    exceptions.DefaultCredentialsError = DefaultCredentialsError  # type: ignore[attr-defined]
    exceptions.TransportError = TransportError  # type: ignore[attr-defined]
    requests.Request = object  # type: ignore[attr-defined]
    google.auth = auth  # type: ignore[attr-defined]
    auth.exceptions = exceptions  # type: ignore[attr-defined]
    auth.transport = transport  # type: ignore[attr-defined]
    transport.requests = requests  # type: ignore[attr-defined]
    for name, module in [
        ("google", google),
        ("google.auth", auth),
        ("google.auth.exceptions", exceptions),
        ("google.auth.transport", transport),
        ("google.auth.transport.requests", requests),
    ]:
        monkeypatch.setitem(sys.modules, name, module)

    async def go(server: Simulator) -> tuple[Operation, OperationStatus]:
        backend = make("vertex", server)
        try:
            operation = await backend.submit(request("vertex"), TakeInput())
            return operation, await finish(backend, operation)
        finally:
            await backend.aclose()

    # A safety block finishes the operation without a render: the test is about credentials.
    with Simulator(latency_s=0.05, faults="filter=1x", seed=0) as server:
        operation, status = asyncio.run(go(server))
    # The project came from ADC, the token from one refresh, and neither leaked into the operation.
    assert operation.id.startswith("projects/adc-project/locations/us-central1/")
    assert refreshed == ["adc-token-0-LEAKCHECK"]
    assert "LEAKCHECK" not in operation.model_dump_json() + status.model_dump_json()
