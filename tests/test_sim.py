"""The simulator over raw HTTP (httpx): round trips per protocol, the checks it makes, every fault kind.

One simulator serves the whole module; the few real renders (4 s, 720p) are started by a
module fixture so they run side by side on the worker pool while the cheap tests run. Fault
tests swap the simulator's rules with ``set_faults`` and choose requests that render nothing
(validation failures, filtered operations), so they cost no generation time.
"""

from __future__ import annotations

import base64
import http.client
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from composer import ffmpeg, imaging
from composer.sim import FaultSpec, Simulator, parse_faults
from composer.sim.faults import FaultPlan
from composer.sim.multipart import parse_multipart
from tests.support import wait_until

GEMINI_MODEL = "veo-3.1-fast-generate-preview"
VERTEX_MODEL = "veo-3.1-fast-generate-001"
VERTEX_BASE = f"/v1/projects/p/locations/us-central1/publishers/google/models/{VERTEX_MODEL}"
SIM_OPTIONS = {"seed": 1}


@pytest.fixture
def faults(sim: Simulator) -> Iterator[Callable[[str], None]]:
    """Set fault rules for one test; they are cleared afterwards."""
    yield sim.set_faults
    sim.set_faults("")


def gemini(sim: Simulator, key: str | None = "sim-key") -> httpx.Client:
    headers = {"x-goog-api-key": key} if key else {}
    return httpx.Client(base_url=sim.base_url, headers=headers, timeout=60)


def bearer(sim: Simulator, prefix: str = "", key: str | None = "sim-key") -> httpx.Client:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=sim.base_url + prefix, headers=headers, timeout=60)


def wait_for(poll: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    return wait_until(poll, done, what="operation done")


def decoded(tmp_path: Path, data: bytes, name: str = "clip.mp4") -> ffmpeg.DecodeReport:
    path = tmp_path / name
    path.write_bytes(data)
    return ffmpeg.decode(path)


def gemini_create(client: httpx.Client, body: dict[str, Any], model: str = GEMINI_MODEL) -> httpx.Response:
    return client.post(f"/v1beta/models/{model}:predictLongRunning", json=body)


def gemini_wait(client: httpx.Client, name: str) -> dict[str, Any]:
    return wait_for(
        lambda: client.get(f"/v1beta/{name}").raise_for_status().json(), lambda a: bool(a.get("done"))
    )


def vertex_wait(client: httpx.Client, name: str) -> dict[str, Any]:
    return wait_for(
        lambda: (
            client.post(f"{VERTEX_BASE}:fetchPredictOperation", json={"operationName": name})
            .raise_for_status()
            .json()
        ),
        lambda a: bool(a.get("done")),
    )


def openai_wait(client: httpx.Client, video_id: str) -> dict[str, Any]:
    return wait_for(
        lambda: client.get(f"/videos/{video_id}").raise_for_status().json(),
        lambda a: a["status"] in ("completed", "failed"),
    )


def relay_wait(client: httpx.Client, video_id: str) -> dict[str, Any]:
    return wait_for(
        lambda: client.get(f"/videos/{video_id}").raise_for_status().json(),
        lambda a: a["status"] in ("COMPLETED", "FAILED"),
    )


@pytest.fixture(scope="module")
def started(sim: Simulator) -> dict[str, str]:
    """Start the module's real renders at once (they queue on the pool); the names to poll."""
    prompt = "a city skyline at night. Camera: slow pan right."
    with gemini(sim) as g, bearer(sim) as v, bearer(sim, "/v1") as o, bearer(sim, "/relay") as r:
        names = {
            "gemini": gemini_create(
                g, {"instances": [{"prompt": prompt}], "parameters": {"durationSeconds": 4}}
            )
            .raise_for_status()
            .json()["name"],
            "vertex": v.post(
                f"{VERTEX_BASE}:predictLongRunning",
                json={"instances": [{"prompt": "snow"}], "parameters": {"durationSeconds": "4", "seed": 5}},
            )
            .raise_for_status()
            .json()["name"],
            "vertex_gcs": v.post(
                f"{VERTEX_BASE}:predictLongRunning",
                json={
                    "instances": [{"prompt": "desert dunes"}],
                    "parameters": {"durationSeconds": 4, "storageUri": "gs://sim-bucket/out/"},
                },
            )
            .raise_for_status()
            .json()["name"],
            "openai": o.post(
                "/videos", json={"prompt": "sea waves", "model": "sora-2", "seconds": "4", "size": "1280x720"}
            )
            .raise_for_status()
            .json()["id"],
            "relay": r.post(
                "/videos/generate",
                json={
                    "model": "veo-3.1",
                    "prompt": "a forest",
                    "parameters": {"resolution": "720p", "duration": 4},
                },
            )
            .raise_for_status()
            .json()["videoId"],
        }
    return names


# -- round trips --------------------------------------------------------------------------------


def test_gemini_round_trip_gives_a_real_mp4(sim: Simulator, started: dict[str, str], tmp_path: Path) -> None:
    name = started["gemini"]
    assert name.startswith(f"models/{GEMINI_MODEL}/operations/")
    opid = name.rsplit("/", 1)[1]
    assert opid.isalnum() and opid.islower() and len(opid) == 12
    with gemini(sim) as client:
        done = gemini_wait(client, name)
        response = done["response"]
        assert response["@type"].endswith("v1beta.PredictLongRunningResponse")
        uri = response["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
        assert uri.startswith("https://") and uri.endswith(":download?alt=media")
        file_id = uri.split("files/")[1].split(":")[0]
        assert file_id.isalnum() and file_id.islower()
        hop = client.get(f"/v1beta/files/{file_id}:download", params={"alt": "media"})
        assert hop.status_code == 302
        video = client.get(
            f"/v1beta/files/{file_id}:download", params={"alt": "media"}, follow_redirects=True
        )
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        # ?key= works instead of the header.
        keyed = httpx.get(
            f"{sim.base_url}/v1beta/files/{file_id}:download?alt=media&key=k", follow_redirects=True
        )
        assert keyed.content == video.content
    report = decoded(tmp_path, video.content)
    assert (report.frames, report.errors) == (96, "")
    assert report.audio_samples  # Veo 3.1 on the Gemini API always has audio


def test_vertex_round_trip_with_bytes_and_extension(
    sim: Simulator, started: dict[str, str], tmp_path: Path
) -> None:
    name = started["vertex"]
    assert name.startswith(
        f"projects/p/locations/us-central1/publishers/google/models/{VERTEX_MODEL}/operations/"
    )
    with bearer(sim) as client:
        done = vertex_wait(client, name)
        response = done["response"]
        assert response["@type"] == "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
        assert response["raiMediaFilteredCount"] == 0
        video = response["videos"][0]
        assert video["mimeType"] == "video/mp4"
        data = base64.b64decode(video["bytesBase64Encoded"])
        report = decoded(tmp_path, data)
        assert (report.frames, report.errors) == (96, "")
        # Extension: the video goes back as bytes; the simulator finds it by its sha256.
        extend = {
            "instances": [
                {
                    "prompt": "more snow",
                    "video": {"bytesBase64Encoded": video["bytesBase64Encoded"], "mimeType": "video/mp4"},
                }
            ],
            "parameters": {"durationSeconds": 7},
        }
        ext = client.post(f"{VERTEX_BASE}:predictLongRunning", json=extend).raise_for_status().json()["name"]
        longer = vertex_wait(client, ext)["response"]["videos"][0]["bytesBase64Encoded"]
    report = decoded(tmp_path, base64.b64decode(longer), "longer.mp4")
    assert (report.frames, report.errors) == (264, "")  # 4 s + 7 s, the whole lengthened clip


def test_vertex_storage_uri_results_download_from_cloud_storage(
    sim: Simulator, started: dict[str, str], tmp_path: Path
) -> None:
    name = started["vertex_gcs"]
    opid = name.rsplit("/", 1)[1]
    with bearer(sim) as client:
        video = vertex_wait(client, name)["response"]["videos"][0]
        assert video == {"gcsUri": f"gs://sim-bucket/out/{opid}/sample_0.mp4", "mimeType": "video/mp4"}
        path = f"/storage/v1/b/sim-bucket/o/{'out%2F' + opid + '%2Fsample_0.mp4'}"
        data = client.get(path, params={"alt": "media"})
        assert data.status_code == 200
        meta = client.get(path).json()
        assert meta["size"] == str(len(data.content))
        assert httpx.get(sim.base_url + path + "?alt=media").status_code == 401  # same bearer token needed
    report = decoded(tmp_path, data.content)
    assert (report.frames, report.errors) == (96, "")


def test_openai_round_trip_and_listing(sim: Simulator, started: dict[str, str], tmp_path: Path) -> None:
    video_id = started["openai"]
    assert video_id.startswith("video_")
    with bearer(sim, "/v1") as client:
        first = client.get(f"/videos/{video_id}")
        assert first.headers["openai-poll-after-ms"].isdigit()
        done = openai_wait(client, video_id)
        assert done["status"] == "completed" and done["progress"] == 100
        assert (done["seconds"], done["size"], done["object"], done["model"]) == (
            "4",
            "1280x720",
            "video",
            "sora-2",
        )
        assert done["expires_at"] > done["completed_at"] >= done["created_at"]
        content = client.get(f"/videos/{video_id}/content", params={"variant": "video"})
        assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
        thumb = client.get(f"/videos/{video_id}/content", params={"variant": "thumbnail"})
        assert thumb.content[:2] == b"\xff\xd8"  # a JPEG
        listing = client.get("/videos", params={"limit": 100}).json()
        assert listing["object"] == "list" and video_id in [v["id"] for v in listing["data"]]
        sim.set_faults("filter@openai=1x")  # a remix that renders nothing
        try:
            remix = client.post(f"/videos/{video_id}/remix", json={"prompt": "by day"}).json()
        finally:
            sim.set_faults("")
        assert remix["remixed_from_video_id"] == video_id and remix["seconds"] == "4"
        assert openai_wait(client, remix["id"])["error"]["code"] == "moderation_blocked"
        deleted = client.delete(f"/videos/{video_id}").json()
        assert deleted == {"id": video_id, "object": "video.deleted", "deleted": True}
        assert client.get(f"/videos/{video_id}").status_code == 404
    report = decoded(tmp_path, content.content)
    assert (report.frames, report.errors) == (96, "")


def test_relay_round_trip_and_extension(sim: Simulator, started: dict[str, str], tmp_path: Path) -> None:
    with bearer(sim, "/relay") as client:
        done = relay_wait(client, started["relay"])
        assert done["status"] == "COMPLETED" and done["progress"] == 100 and done["error"] is None
        assert done["videoUrl"].startswith("http://")
        video = httpx.get(done["videoUrl"])  # like a signed URL: no key needed
        assert video.status_code == 200
        ext = client.post(
            "/videos:extend",
            json={"sourceVideoId": started["relay"], "extendDuration": 7, "prompt": "on and on"},
        )
        longer = relay_wait(client, ext.raise_for_status().json()["videoId"])
        assert longer["duration"] == 11
        whole = httpx.get(longer["videoUrl"], headers={"authorization": "Bearer sim-key"})
    assert decoded(tmp_path, video.content).frames == 96
    report = decoded(tmp_path, whole.content, "whole.mp4")
    assert (report.frames, report.errors) == (264, "")


# -- checks the real services make --------------------------------------------------------------


def test_gemini_refuses_what_veo_refuses(sim: Simulator) -> None:
    with gemini(sim) as client:
        bad = gemini_create(client, {"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": 5}})
        assert bad.status_code == 400
        assert bad.json()["error"]["status"] == "INVALID_ARGUMENT" and bad.json()["error"]["code"] == 400
        assert "duration" in bad.json()["error"]["message"]
        hd = gemini_create(
            client,
            {"instances": [{"prompt": "x"}], "parameters": {"resolution": "1080p", "durationSeconds": 4}},
        )
        assert hd.status_code == 400 and "8" in hd.json()["error"]["message"]
        uhd = gemini_create(client, {"instances": [{"prompt": "x"}], "parameters": {"resolution": "4K"}})
        assert uhd.status_code == 400 and "1080p" in uhd.json()["error"]["message"]
        square = gemini_create(client, {"instances": [{"prompt": "x"}], "parameters": {"aspectRatio": "1:1"}})
        assert square.status_code == 400
        image = {"bytesBase64Encoded": base64.b64encode(b"not an image").decode(), "mimeType": "image/png"}
        refs = [{"image": image, "referenceType": "ASSET"}] * 4
        assert (
            gemini_create(client, {"instances": [{"prompt": "x", "referenceImages": refs}]}).status_code
            == 400
        )
        broken = gemini_create(
            client, {"instances": [{"prompt": "x", "image": image}], "parameters": {"durationSeconds": 4}}
        )
        assert broken.status_code == 400 and "image" in broken.json()["error"]["message"]
        vertex_id = gemini_create(client, {"instances": [{"prompt": "x"}]}, model="veo-3.1-generate-001")
        assert vertex_id.status_code == 404
        assert (
            "models/veo-3.1-generate-001 is not found for API version v1beta"
            in vertex_id.json()["error"]["message"]
        )
        assert client.get(f"/v1beta/models/{GEMINI_MODEL}/operations/nosuchop123").status_code == 404
        assert client.get("/v1beta/files/nosuchfile:download?alt=media").status_code == 404
    with gemini(sim, key=None) as anonymous:
        missing = gemini_create(anonymous, {"instances": [{"prompt": "x"}]})
        assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"


def test_gemini_extension_refuses_unknown_1080p_and_old_model_requests(sim: Simulator) -> None:
    unknown = {"uri": "https://generativelanguage.googleapis.com/v1beta/files/abc123:download?alt=media"}
    with gemini(sim) as client:
        answer = gemini_create(client, {"instances": [{"prompt": "go on", "video": unknown}]})
        assert (
            answer.status_code == 400
            and "only extend videos it generated" in answer.json()["error"]["message"]
        )
        bytes_video = {"encodedVideo": base64.b64encode(b"\x00" * 64).decode(), "encoding": "video/mp4"}
        assert (
            gemini_create(client, {"instances": [{"prompt": "go on", "video": bytes_video}]}).status_code
            == 400
        )
        hd = gemini_create(
            client, {"instances": [{"prompt": "go", "video": unknown}], "parameters": {"resolution": "1080p"}}
        )
        assert hd.status_code == 400 and "720p" in hd.json()["error"]["message"]
        old = gemini_create(
            client, {"instances": [{"prompt": "go", "video": unknown}]}, model="veo-3.0-generate-001"
        )
        assert old.status_code == 400 and "not supported" in old.json()["error"]["message"]


def test_vertex_checks_credentials_models_and_extensions(sim: Simulator) -> None:
    body = {"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": 4}}
    with bearer(sim, key=None) as anonymous:
        answer = anonymous.post(f"{VERTEX_BASE}:predictLongRunning", json=body)
        assert answer.status_code == 401 and answer.json()["error"]["status"] == "UNAUTHENTICATED"
    with bearer(sim) as client:
        preview = "/v1beta1/projects/p/locations/us-central1/publishers/google/models/veo-9-generate-001"
        missing = client.post(f"{preview}:predictLongRunning", json=body)
        assert missing.status_code == 404 and "Publisher model" in missing.json()["error"]["message"]
        bad = client.post(
            f"{VERTEX_BASE}:predictLongRunning",
            json={"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": 3}},
        )
        assert bad.status_code == 400
        stranger = {"bytesBase64Encoded": base64.b64encode(b"\x01" * 100).decode(), "mimeType": "video/mp4"}
        ext = {"instances": [{"prompt": "x", "video": stranger}], "parameters": {"durationSeconds": 7}}
        refused = client.post(f"{VERTEX_BASE}:predictLongRunning", json=ext)
        assert (
            refused.status_code == 400
            and "only extend videos it generated" in refused.json()["error"]["message"]
        )
        ext["parameters"] = {"durationSeconds": 8}
        assert client.post(f"{VERTEX_BASE}:predictLongRunning", json=ext).status_code == 400
        unknown = client.post(
            f"{VERTEX_BASE}:fetchPredictOperation",
            json={"operationName": f"{VERTEX_BASE[4:]}/operations/nope"},
        )
        assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"


def test_openai_checks_like_the_videos_api(sim: Simulator) -> None:
    with bearer(sim, "/v1", key=None) as anonymous:
        answer = anonymous.post("/videos", json={"prompt": "x"})
        assert answer.status_code == 401 and set(answer.json()["error"]) == {
            "message",
            "type",
            "param",
            "code",
        }
    with bearer(sim, "/v1") as client:
        seconds = client.post("/videos", json={"prompt": "x", "seconds": "5"})
        assert seconds.status_code == 400
        assert seconds.json()["error"] | {"message": ""} == {
            "message": "",
            "type": "invalid_request_error",
            "param": "seconds",
            "code": "invalid_value",
        }
        assert (
            client.post("/videos", json={"prompt": "x", "size": "1920x1080"}).status_code == 400
        )  # sora-2-pro only
        assert client.post("/videos", json={"prompt": "x", "model": "dall-e-3"}).status_code == 404
        assert client.post("/videos", json={"seconds": "4"}).json()["error"]["param"] == "prompt"
        # The reference image must have the requested size; sent as a real multipart upload.
        png = _png((640, 360))
        mismatch = client.post(
            "/videos",
            data={"prompt": "x", "seconds": "4", "size": "1280x720"},
            files={"input_reference": ("ref.png", png, "image/png")},
        )
        assert mismatch.status_code == 400
        assert (
            mismatch.json()["error"]["message"] == "Inpaint image must match the requested width and height"
        )
        as_json = {"image_url": "data:image/png;base64," + base64.b64encode(png).decode()}
        again = client.post("/videos", json={"prompt": "x", "size": "1280x720", "input_reference": as_json})
        assert again.status_code == 400 and again.json()["error"]["message"].startswith("Inpaint image")
        remote = client.post(
            "/videos", json={"prompt": "x", "input_reference": {"image_url": "https://x/y.png"}}
        )
        assert remote.status_code == 400 and remote.json()["error"]["param"] == "input_reference.image_url"
        assert client.get("/videos/video_nope").status_code == 404
        assert client.get("/videos/video_nope/content").status_code == 404
        ext = client.post(
            "/videos/extensions", json={"prompt": "x", "seconds": "4", "video": {"id": "video_nope"}}
        )
        assert ext.status_code == 404


def test_openai_content_is_refused_before_completion(sim: Simulator) -> None:
    slow = Simulator(latency_s=30, faults="filter=1x").start()
    try:
        with bearer(slow, "/v1") as client:
            video = client.post("/videos", json={"prompt": "x", "seconds": "4"}).json()
            assert video["status"] == "queued" and video["progress"] == 0
            early = client.get(f"/videos/{video['id']}/content")
            assert early.status_code == 404 and early.json()["error"]["code"] == "video_not_ready"
    finally:
        slow.stop()


def test_relay_checks(sim: Simulator) -> None:
    with bearer(sim, "/relay", key=None) as anonymous:
        assert anonymous.post("/videos/generate", json={"prompt": "x"}).status_code == 401
    with bearer(sim, "/relay") as client:
        bad = client.post(
            "/videos/generate", json={"model": "veo-3.1", "prompt": "x", "parameters": {"duration": 5}}
        )
        assert bad.status_code == 400 and set(bad.json()["error"]) == {"code", "message"}
        assert client.post("/videos/generate", json={"model": "kling", "prompt": "x"}).status_code == 404
        assert client.get("/videos/task_nope").status_code == 404
        assert client.post("/videos:extend", json={"sourceVideoId": "task_nope"}).status_code == 404
        image = {"imageContent": base64.b64encode(b"no picture").decode(), "mimeType": "image/png"}
        refused = client.post("/videos/generate", json={"prompt": "x", "referenceImage": image})
        assert refused.status_code == 400 and "referenceImage" in refused.json()["error"]["message"]


def test_a_key_can_be_required(tmp_path: Path) -> None:
    with Simulator(api_key="right", storage=tmp_path / "store") as strict:
        wrong = httpx.post(
            f"{strict.base_url}/v1beta/models/{GEMINI_MODEL}:predictLongRunning",
            headers={"x-goog-api-key": "wrong"},
            json={"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": 5}},
        )
        assert wrong.status_code == 400
        assert wrong.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
        right = httpx.get(f"{strict.base_url}/v1/videos", headers={"authorization": "Bearer right"})
        assert right.status_code == 200
        assert (
            httpx.get(f"{strict.base_url}/v1/videos", headers={"authorization": "Bearer no"}).status_code
            == 401
        )
    assert (tmp_path / "store" / "videos").is_dir()  # a given storage folder is kept


# -- faults -------------------------------------------------------------------------------------


def test_429_carries_retry_info_for_google_and_retry_after_for_openai(
    sim: Simulator, faults: Callable[[str], None]
) -> None:
    faults("429@gemini.create=1x:7,429@openai=1x:2.5")
    with gemini(sim) as client:
        body = {"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": 5}}
        limited = gemini_create(client, body)
        assert limited.status_code == 429
        error = limited.json()["error"]
        assert error["status"] == "RESOURCE_EXHAUSTED"
        retry = [d for d in error["details"] if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
        assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]
        assert gemini_create(client, body).status_code == 400  # 1x: only the first request
    with bearer(sim, "/v1") as client:
        limited = client.get("/videos")
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "2.5" and limited.headers["retry-after-ms"] == "2500"
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        assert client.get("/videos").status_code == 200


def test_5xx_slow_and_drop(sim: Simulator, faults: Callable[[str], None]) -> None:
    faults("500@vertex=1x,503@relay.poll=1x,slow@gemini.poll=1x:0.3,drop@openai=1x")
    with bearer(sim) as client:
        answer = client.post(f"{VERTEX_BASE}:fetchPredictOperation", json={"operationName": "x"})
        assert answer.status_code == 500 and answer.json()["error"]["status"] == "INTERNAL"
    with bearer(sim, "/relay") as client:
        assert client.get("/videos/task_nope").status_code == 503
        assert client.get("/videos/task_nope").status_code == 404
    with gemini(sim) as client:
        began = time.monotonic()
        assert client.get(f"/v1beta/models/{GEMINI_MODEL}/operations/nope").status_code == 404
        assert time.monotonic() - began >= 0.3
    with bearer(sim, "/v1") as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/videos")
        assert client.get("/videos").status_code == 200  # a fresh connection works


def _download(sim: Simulator, path: str) -> tuple[int, int, bytes]:
    """(status, Content-Length, the bytes that arrived) over a raw connection."""
    host, port = sim.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path, headers={"x-goog-api-key": "k"})
        response = conn.getresponse()
        length = int(response.getheader("content-length"))
        try:
            data = response.read()
        except http.client.IncompleteRead as error:
            data = error.partial
        return response.status, length, data
    finally:
        conn.close()


def test_truncate_and_corrupt_downloads(
    sim: Simulator, started: dict[str, str], faults: Callable[[str], None], tmp_path: Path
) -> None:
    with gemini(sim) as client:
        uri = gemini_wait(client, started["gemini"])["response"]["generateVideoResponse"]["generatedSamples"][
            0
        ]
        file_id = uri["video"]["uri"].split("files/")[1].split(":")[0]
        blob = urlsplit(client.get(f"/v1beta/files/{file_id}:download").headers["location"]).path
    status, length, whole = _download(sim, blob)
    assert status == 200 and len(whole) == length
    faults("truncate@download=1x")
    status, length, cut = _download(sim, blob)
    assert status == 200 and len(cut) < length and whole.startswith(cut)
    faults("corrupt@gemini.download=1x")
    status, length, garbage = _download(sim, blob)
    assert status == 200 and len(garbage) == length and garbage != whole
    report = decoded(tmp_path, garbage, "garbage.mp4")
    assert report.errors or report.frames == 0


def test_filter_and_fail_finish_operations_per_protocol(
    sim: Simulator, faults: Callable[[str], None]
) -> None:
    faults("filter=4x,fail@gemini=1x")
    with gemini(sim) as client:
        body = {"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": 4}}
        filtered = gemini_wait(client, gemini_create(client, body).json()["name"])
        result = filtered["response"]["generateVideoResponse"]
        assert result["raiMediaFilteredCount"] == 1 and "generatedSamples" not in result
        assert "safety filters" in result["raiMediaFilteredReasons"][0]
    with bearer(sim) as client:
        name = client.post(f"{VERTEX_BASE}:predictLongRunning", json=body).json()["name"]
        response = vertex_wait(client, name)["response"]
        assert response["raiMediaFilteredCount"] == 1 and "videos" not in response
    with bearer(sim, "/v1") as client:
        video = openai_wait(client, client.post("/videos", json={"prompt": "x", "seconds": "4"}).json()["id"])
        assert video["status"] == "failed" and video["error"]["code"] == "moderation_blocked"
    with bearer(sim, "/relay") as client:
        task = client.post("/videos/generate", json={"prompt": "x", "parameters": {"duration": 4}}).json()[
            "videoId"
        ]
        failed = relay_wait(client, task)
        assert failed["status"] == "FAILED" and "safety filters" in failed["error"]
    with gemini(sim) as client:
        broken = gemini_wait(client, gemini_create(client, body).json()["name"])
        assert broken["error"]["code"] == 13 and "response" not in broken


def test_lost_creates_an_operation_the_client_never_hears_of(
    sim: Simulator, faults: Callable[[str], None]
) -> None:
    sim.reset()
    faults("lost@gemini.create=1x,filter@gemini=1x")  # filtered, so nothing is rendered
    with gemini(sim) as client, pytest.raises(httpx.RemoteProtocolError):
        gemini_create(client, {"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": 4}})
    stats = sim.stats()
    assert stats["gemini"]["created"] == 1
    assert [(f["kind"], f["step"]) for f in stats["faults_injected"]] == [
        ("lost", "create"),
        ("filter", "create"),
    ]


def test_stats_count_what_happened(sim: Simulator, faults: Callable[[str], None]) -> None:
    sim.reset()
    faults("filter@relay=1x,500@relay.poll=1x")
    with bearer(sim, "/relay") as client:
        task = client.post("/videos/generate", json={"prompt": "x", "parameters": {"duration": 4}}).json()[
            "videoId"
        ]
        assert client.get(f"/videos/{task}").status_code == 500
        relay_wait(client, task)
        assert (
            client.post("/videos/generate", json={"prompt": "x", "parameters": {"duration": 5}}).status_code
            == 400
        )
    over_http = httpx.get(f"{sim.base_url}/_sim/stats").json()
    stats = sim.stats()
    assert over_http["relay"] == stats["relay"]
    relay = stats["relay"]
    assert (relay["created"], relay["extensions"], relay["faults"], relay["filtered"], relay["failed"]) == (
        1,
        0,
        2,
        1,
        0,
    )
    assert relay["polls"] >= 1 and relay["downloads"] == 0
    (op,) = stats["operations"]
    assert op["protocol"] == "relay" and op["id"] == task and op["kind"] == "generate"
    assert op["seconds"] == 4 and op["outcome"] == "filtered" and op["done_at"] >= op["created_at"]
    assert {f["kind"] for f in stats["faults_injected"]} == {"filter", "500"}
    assert httpx.post(f"{sim.base_url}/_sim/reset").json() == {"ok": True}
    assert sim.stats()["operations"] == [] and sim.stats()["relay"]["polls"] == 0


def test_faults_can_be_changed_over_http(sim: Simulator) -> None:
    answer = httpx.post(f"{sim.base_url}/_sim/faults", json={"faults": "503@openai.poll=0.5"})
    assert answer.json() == {"faults": "503@openai.poll=0.5"}
    refused = httpx.post(f"{sim.base_url}/_sim/faults", json={"faults": "429=often"})
    assert refused.status_code == 400 and "429=often" in refused.json()["error"]["message"]
    httpx.post(f"{sim.base_url}/_sim/faults", json={"faults": ""})
    assert str(sim.faults) == ""


# -- the fault grammar ----------------------------------------------------------------------------


def test_fault_specs_parse_and_print_back() -> None:
    spec = parse_faults(" 429@gemini.create=0.2:3 , truncate@download=1x,slow=1,filter@openai=0 ")
    assert [str(rule) for rule in spec.rules] == [
        "429@gemini.create=0.2:3",
        "truncate@download=1x",
        "slow=1",
        "filter@openai=0",
    ]
    assert spec.rules[0].delay_s == 3 and spec.rules[2].delay_s == 2  # slow defaults to 2 s
    assert parse_faults("") == FaultSpec() and not parse_faults(None)
    assert parse_faults(spec) is spec


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("429", "KIND[@SCOPE]=RATE[:ARG]"),
        ("404=1x", "unknown kind"),
        ("429@mars=1x", "unknown scope"),
        ("429@gemini.upload=1x", "unknown step"),
        ("truncate@create=1x", "download step only"),
        ("filter@poll=0.1", "create step only"),
        ("500=1.5", "outside 0..1"),
        ("500=often", "neither a probability"),
        ("500=1x:3", "takes no argument"),
        ("slow=1x:soon", "not a number"),
    ],
)
def test_bad_fault_specs_name_the_rule_and_the_grammar(spec: str, words: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_faults(f"drop=0.1,{spec}")
    message = str(caught.value)
    assert repr(spec) in message and words in message and "KIND[@SCOPE]=RATE[:ARG]" in message
    with pytest.raises(ValueError):
        Simulator(faults=spec)


def test_fault_draws_are_seeded_and_counts_are_exact() -> None:
    def fired(seed: int) -> list[bool]:
        plan = FaultPlan(parse_faults("500=0.5"), seed)
        return [plan.draw("request", "openai", "poll")[1] is not None for _ in range(40)]

    assert fired(3) == fired(3) and fired(3) != fired(4)
    plan = FaultPlan(parse_faults("503@vertex.poll=2x"), 0)
    draws = [
        plan.draw("request", protocol, "poll")[1] for protocol in ("gemini", "vertex", "vertex", "vertex")
    ]
    assert [rule is not None for rule in draws] == [False, True, True, False]
    assert plan.draw("body", "vertex", "download") == (0.0, None)  # a 503 rule never touches bodies


# -- pieces ---------------------------------------------------------------------------------------


def test_multipart_parser_is_byte_exact() -> None:
    payload = b"\x00\r\n--b\r\nnot a boundary\r\n\xff" * 3
    body = (
        b"preamble\r\n--xyz\r\n"
        b'Content-Disposition: form-data; name="prompt"\r\n\r\n'
        b"a cat\r\n--xyz\r\n"
        b'Content-Disposition: form-data; name="video"; filename="clip.mp4"\r\n'
        b"Content-Type: video/mp4\r\n\r\n" + payload + b"\r\n--xyz--\r\nepilogue"
    )
    parts = parse_multipart(body, 'multipart/form-data; boundary="xyz"')
    assert [(p.name, p.filename, p.content_type) for p in parts] == [
        ("prompt", None, "text/plain"),
        ("video", "clip.mp4", "video/mp4"),
    ]
    assert parts[0].text() == "a cat" and parts[1].data == payload
    with pytest.raises(ValueError):
        parse_multipart(
            b"--xyz\r\nContent-Disposition: form-data; name=a\r\n\r\nno end",
            "multipart/form-data; boundary=xyz",
        )


# `composer sim ...` is the documented command; `python -m composer.sim` the one without the script.
@pytest.mark.parametrize("entry", [["composer.sim"], ["composer", "sim"]], ids=["module", "composer-sim"])
def test_cli_prints_its_ready_line_and_stops_on_sigint(entry: list[str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", *entry, "--port", "0", "--faults", "500@poll=0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        prefix = "composer sim: serving gemini, vertex, openai, relay at http://127.0.0.1:"
        assert line.startswith(prefix) and line[len(prefix) :].isdigit()
        stats = httpx.get(line.rsplit(" ", 1)[1] + "/_sim/stats").json()
        assert set(stats) >= {"gemini", "vertex", "openai", "relay", "operations", "faults_injected"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_cli_rejects_a_bad_fault_spec() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "composer.sim", "--faults", "429@moon=1x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "429@moon=1x" in result.stderr and result.stdout == ""


def _png(size: tuple[int, int]) -> bytes:
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (40, 120, 200)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "ref.png"
        imaging.write_png(path, image)
        return path.read_bytes()


def test_unknown_paths_get_the_protocols_envelope(sim: Simulator) -> None:
    google_404 = httpx.get(f"{sim.base_url}/v1beta/nothing")
    assert google_404.status_code == 404 and google_404.json()["error"]["status"] == "NOT_FOUND"
    openai_405 = httpx.put(f"{sim.base_url}/v1/videos", headers={"authorization": "Bearer k"})
    assert openai_405.status_code == 405 and "type" in openai_405.json()["error"]
    assert json.loads(httpx.get(f"{sim.base_url}/_sim/health").text)["ok"] is True
