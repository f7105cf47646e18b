"""Conformance: the official SDKs, unchanged (only base URL and key set), against the simulator.

google-genai (Gemini API and Vertex AI) and openai-python drive generate, poll, download,
extend and image-to-video exactly as they would against the real services, and one error
path each raises the SDK's own error class. The module shares one simulator and starts its
longest render (the 8 s base of the Gemini extension) first so it overlaps the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from composer import ffmpeg, imaging
from composer.sim import Simulator
from tests.support import wait_until

genai = pytest.importorskip("google.genai")
openai = pytest.importorskip("openai")
credentials = pytest.importorskip("google.oauth2.credentials")
from google.genai import errors, types  # noqa: E402  (after the importorskip that guards them)

GEMINI_MODEL = "veo-3.1-fast-generate-preview"

# openai-python marks every videos.* method deprecated (Sora shuts down in 2026); that is not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SIM_OPTIONS = {"seed": 2}


@pytest.fixture(scope="module")
def gemini(sim: Simulator) -> Any:
    return genai.Client(api_key="sim-key", http_options=types.HttpOptions(base_url=sim.base_url))


@pytest.fixture(scope="module")
def vertex(sim: Simulator) -> Any:
    return genai.Client(
        vertexai=True,
        project="p",
        location="us-central1",
        credentials=credentials.Credentials(token="sim-token"),
        http_options=types.HttpOptions(base_url=sim.base_url),
    )


@pytest.fixture(scope="module")
def client(sim: Simulator) -> Any:
    return openai.OpenAI(api_key="sim-key", base_url=sim.base_url + "/v1")


@pytest.fixture(scope="module")
def eight_second_base(gemini: Any) -> Any:
    """The 8 s generation the extension test continues; started early, polled later."""
    return gemini.models.generate_videos(
        model=GEMINI_MODEL,
        source=types.GenerateVideosSource(prompt="ocean waves on a beach. Camera: slow pan left."),
        config=types.GenerateVideosConfig(duration_seconds=8, aspect_ratio="16:9", resolution="720p"),
    )


def wait(client: Any, operation: Any) -> Any:
    if operation.done:
        return operation
    return wait_until(
        lambda: client.operations.get(operation), lambda op: bool(op.done), what=f"{operation.name} done"
    )


def frames_of(tmp_path: Path, data: bytes, name: str = "clip.mp4") -> int:
    path = tmp_path / name
    path.write_bytes(data)
    report = ffmpeg.decode(path)
    assert report.errors == ""
    return report.frames


def png_bytes(tmp_path: Path, width: int, height: int) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 2] = (200, 140, 60)
    image[height // 2 :] = (40, 90, 30)
    path = tmp_path / f"ref-{width}x{height}.png"
    imaging.write_png(path, image)
    return path.read_bytes()


# -- google-genai, Gemini API ---------------------------------------------------------------------


def test_gemini_generate_poll_download(gemini: Any, eight_second_base: Any, tmp_path: Path) -> None:
    operation = gemini.models.generate_videos(
        model=GEMINI_MODEL,
        source=types.GenerateVideosSource(prompt="a city skyline at night"),
        config=types.GenerateVideosConfig(
            duration_seconds=4, aspect_ratio="16:9", resolution="720p", number_of_videos=1
        ),
    )
    assert operation.done is None and operation.name.startswith(f"models/{GEMINI_MODEL}/operations/")
    operation = wait(gemini, operation)
    assert operation.error is None
    video = operation.response.generated_videos[0].video
    data = gemini.files.download(file=video)
    assert video.video_bytes == data  # the SDK fills the bytes in as it downloads
    assert frames_of(tmp_path, data) == 96


def test_gemini_extension_returns_the_whole_lengthened_clip(
    gemini: Any, eight_second_base: Any, tmp_path: Path
) -> None:
    base = wait(gemini, eight_second_base)
    video = base.response.generated_videos[0].video
    assert frames_of(tmp_path, gemini.files.download(file=video), "base.mp4") == 192
    # After files.download the Video has both uri and bytes; the SDK sends only the uri.
    extension = gemini.models.generate_videos(
        model=GEMINI_MODEL,
        source=types.GenerateVideosSource(prompt="the waves roll on. Camera: slow pan left.", video=video),
        config=types.GenerateVideosConfig(number_of_videos=1, resolution="720p"),
    )
    extension = wait(gemini, extension)
    longer = gemini.files.download(file=extension.response.generated_videos[0].video)
    assert frames_of(tmp_path, longer, "longer.mp4") == 360  # 8 s + 7 s at 24 fps


def test_gemini_image_to_video(gemini: Any, tmp_path: Path) -> None:
    image = types.Image(image_bytes=png_bytes(tmp_path, 1280, 720), mime_type="image/png")
    operation = gemini.models.generate_videos(
        model=GEMINI_MODEL,
        source=types.GenerateVideosSource(prompt="the field sways in the wind", image=image),
        config=types.GenerateVideosConfig(duration_seconds=4, aspect_ratio="16:9", resolution="720p"),
    )
    operation = wait(gemini, operation)
    assert frames_of(tmp_path, gemini.files.download(file=operation.response.generated_videos[0].video)) == 96


def test_gemini_errors_are_the_sdks_client_errors(gemini: Any, sim: Simulator) -> None:
    with pytest.raises(errors.ClientError) as caught:
        gemini.models.generate_videos(
            model="veo-3.1-generate-001", source=types.GenerateVideosSource(prompt="x")
        )
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"
    with pytest.raises(errors.ClientError) as caught:
        gemini.models.generate_videos(
            model=GEMINI_MODEL,
            source=types.GenerateVideosSource(prompt="x"),
            config=types.GenerateVideosConfig(duration_seconds=5),
        )
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    sim.set_faults("429@gemini.create=1x:3")
    try:
        with pytest.raises(errors.ClientError) as caught:
            gemini.models.generate_videos(model=GEMINI_MODEL, source=types.GenerateVideosSource(prompt="x"))
    finally:
        sim.set_faults("")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert any(d.get("retryDelay") == "3s" for d in caught.value.details["error"]["details"])


def test_gemini_safety_filter_reads_as_the_sdk_expects(gemini: Any, sim: Simulator) -> None:
    sim.set_faults("filter@gemini=1x")
    try:
        operation = gemini.models.generate_videos(
            model=GEMINI_MODEL,
            source=types.GenerateVideosSource(prompt="x"),
            config=types.GenerateVideosConfig(duration_seconds=4),
        )
    finally:
        sim.set_faults("")
    operation = wait(gemini, operation)
    assert operation.response.generated_videos is None
    assert operation.response.rai_media_filtered_count == 1
    assert "safety filters" in operation.response.rai_media_filtered_reasons[0]


# -- google-genai, Vertex AI ----------------------------------------------------------------------


def test_vertex_generate_poll_bytes(vertex: Any, tmp_path: Path) -> None:
    operation = vertex.models.generate_videos(
        model="veo-3.1-fast-generate-001",
        source=types.GenerateVideosSource(prompt="snow falling on a pine forest"),
        config=types.GenerateVideosConfig(duration_seconds=4, seed=42, generate_audio=True, fps=24),
    )
    assert "/operations/" in operation.name
    operation = wait(vertex, operation)
    video = operation.response.generated_videos[0].video
    assert video.mime_type == "video/mp4"
    assert frames_of(tmp_path, video.video_bytes) == 96


def test_vertex_error_is_the_sdks_client_error(vertex: Any) -> None:
    with pytest.raises(errors.ClientError) as caught:
        vertex.models.generate_videos(
            model="veo-3.1-fast-generate-001",
            source=types.GenerateVideosSource(prompt="x"),
            config=types.GenerateVideosConfig(duration_seconds=5),
        )
    assert caught.value.code == 400
    with pytest.raises(errors.ClientError) as caught:
        vertex.models.generate_videos(
            model="veo-4-generate-001", source=types.GenerateVideosSource(prompt="x")
        )
    assert caught.value.code == 404


# -- openai-python --------------------------------------------------------------------------------


def test_openai_create_poll_download_and_extend(client: Any, tmp_path: Path) -> None:
    video = client.videos.create(model="sora-2", prompt="a desert at dusk", seconds="4", size="1280x720")
    assert video.status == "queued" and video.id.startswith("video_")
    video = client.videos.poll(video.id)
    assert video.status == "completed" and video.seconds == "4"
    path = tmp_path / "sora.mp4"
    client.videos.download_content(video.id).write_to_file(path)
    assert frames_of(tmp_path, path.read_bytes()) == 96
    # Extension by id, through the SDK's raw JSON escape hatch ...
    by_id = client.post(
        "/videos/extensions",
        cast_to=openai.types.Video,
        body={"video": {"id": video.id}, "prompt": "the sun goes down", "seconds": "4"},
    )
    # ... and by upload, through videos.extend (multipart with the MP4 as a file part).
    by_upload = client.videos.extend(
        video=("clip.mp4", path.read_bytes(), "video/mp4"), prompt="the sun goes down", seconds="4"
    )
    for extension in (by_id, by_upload):
        done = client.videos.poll(extension.id)
        assert done.status == "completed" and done.seconds == "8"  # the stitched total
        assert frames_of(tmp_path, client.videos.download_content(done.id).read(), f"{done.id}.mp4") == 192


def test_openai_image_reference(client: Any, tmp_path: Path) -> None:
    reference = ("ref.png", png_bytes(tmp_path, 1280, 720), "image/png")
    video = client.videos.create_and_poll(
        model="sora-2", prompt="a meadow", seconds="4", size="1280x720", input_reference=reference
    )
    assert video.status == "completed"
    assert frames_of(tmp_path, client.videos.download_content(video.id).read()) == 96


def test_openai_errors_are_the_sdks_error_classes(client: Any, sim: Simulator, tmp_path: Path) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(model="sora-2", prompt="x", seconds="5")
    assert caught.value.param == "seconds" and caught.value.code == "invalid_value"
    with pytest.raises(openai.BadRequestError, match="Inpaint image must match"):
        client.videos.create(
            prompt="x",
            seconds="4",
            size="1280x720",
            input_reference=("r.png", png_bytes(tmp_path, 720, 1280), "image/png"),
        )
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve("video_missing")
    with Simulator(api_key="right") as strict, pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="wrong", base_url=strict.base_url + "/v1").videos.list()
    # The SDK honours Retry-After on a 429 and retries on its own.
    sim.set_faults("429@openai.poll=1x:0.2")
    try:
        with pytest.raises(openai.NotFoundError):
            client.videos.retrieve("video_missing")  # 429, retried after 0.2 s, then the real 404
    finally:
        sim.set_faults("")
    assert [f["kind"] for f in sim.stats()["faults_injected"]][-1] == "429"
