"""``error_for`` and ``retry_delay`` on hand-made answers: the map from HTTP to the error tree.

Plain ``httpx.Response`` objects, no server: each case is an answer a real service gives
(``shared/reference/video-apis.md`` §5), and what composer must make of it.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from composer.backends.http import Http, error_for, retry_delay
from composer.errors import EnvironmentProblem, ModelRefused, RetryableError, TerminalError

REQUEST = httpx.Request("POST", "https://example.invalid/v1/videos")


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers, request=REQUEST)
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers, request=REQUEST)
    return httpx.Response(status, json=body, headers=headers, request=REQUEST)


def google_429(delay: Any) -> dict[str, Any]:
    return {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaMetric": "generativelanguage.googleapis.com/predict_requests"}],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
            ],
        }
    }


def classify(response: httpx.Response, **kwargs: Any) -> RetryableError | TerminalError:
    options = {"service": "gemini", "what": "create", "key_env": "GEMINI_API_KEY", **kwargs}
    return error_for(response, **options)


# -- retry_delay ----------------------------------------------------------------------------------


def test_google_retry_info_53s() -> None:
    response = answer(429, google_429("53s"))
    assert retry_delay(response) == 53.0
    error = classify(response)
    assert isinstance(error, RetryableError)
    assert error.retry_after_s == 53.0
    assert "RESOURCE_EXHAUSTED" in str(error) and "quota" in str(error)
    # A 429 is refused before any work starts: resubmitting a create cannot double-charge.
    assert error.reached_server is False


def test_google_retry_info_fractional_and_proto_forms() -> None:
    assert retry_delay(answer(429, google_429("0.500s"))) == 0.5
    assert retry_delay(answer(429, google_429({"seconds": 2, "nanos": 500_000_000}))) == 2.5
    assert retry_delay(answer(429, google_429("soon"))) is None


def test_openai_retry_after_ms_wins_over_retry_after() -> None:
    response = answer(
        429,
        {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
        {"retry-after-ms": "1500", "retry-after": "20"},
    )
    assert retry_delay(response) == 1.5
    error = classify(response, service="openai", key_env="OPENAI_API_KEY")
    assert isinstance(error, RetryableError) and error.retry_after_s == 1.5
    assert "rate_limit_exceeded" in str(error)


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_delay(answer(503, headers={"retry-after": "7"})) == 7.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    delay = retry_delay(answer(503, headers={"retry-after": later}))
    assert delay is not None and 25.0 <= delay <= 31.0
    past = email.utils.formatdate(time.time() - 300, usegmt=True)
    assert retry_delay(answer(503, headers={"retry-after": past})) == 0.0


def test_garbled_retry_headers_are_ignored_not_raised() -> None:
    # A bug once: an unparseable Retry-After raised ValueError out of retry_delay.
    assert retry_delay(answer(503, headers={"retry-after": "tomorrow-ish"})) is None
    assert retry_delay(answer(503, headers={"retry-after-ms": "nan", "retry-after": "inf"})) is None
    assert retry_delay(answer(503, headers={"retry-after-ms": "abc", "retry-after": "4"})) == 4.0


# -- error_for --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 504])
def test_transient_statuses_are_retryable_and_may_have_reached_the_server(status: int) -> None:
    error = classify(answer(status, {"error": {"code": status, "message": "backend hiccup"}}))
    assert isinstance(error, RetryableError)
    assert error.reached_server is True
    assert f"{status}" in str(error) and "backend hiccup" in str(error)


def test_400_names_the_input_fix() -> None:
    body = {
        "error": {"code": 400, "message": "durationSeconds must be 4, 6 or 8", "status": "INVALID_ARGUMENT"}
    }
    error = classify(answer(400, body))
    assert isinstance(error, ModelRefused)
    text = str(error)
    assert "INVALID_ARGUMENT" in text and "durationSeconds must be 4, 6 or 8" in text
    assert "check the duration, size and images" in text


def test_google_bad_api_key_is_a_400_that_names_the_key_variable() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        }
    }
    error = classify(answer(400, body))
    assert isinstance(error, TerminalError) and not isinstance(error, ModelRefused)
    assert "check GEMINI_API_KEY" in str(error)


def test_401_names_the_key_variable() -> None:
    body = {
        "error": {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    error = classify(answer(401, body), service="openai", key_env="OPENAI_API_KEY")
    assert isinstance(error, TerminalError)
    assert "the key was not accepted; check OPENAI_API_KEY" in str(error)
    assert "invalid_api_key" in str(error)


def test_403_names_project_and_billing() -> None:
    body = {"error": {"code": 403, "message": "Permission denied", "status": "PERMISSION_DENIED"}}
    error = classify(answer(403, body))
    assert isinstance(error, TerminalError) and not isinstance(error, ModelRefused)
    assert "PERMISSION_DENIED" in str(error)
    assert "GEMINI_API_KEY belongs to a project with this API enabled and billing" in str(error)


def test_404_on_create_names_the_model() -> None:
    body = {
        "error": {
            "code": 404,
            "message": "models/veo-9-nope is not found for API version v1beta",
            "status": "NOT_FOUND",
        }
    }
    error = classify(answer(404, body), model="veo-9-nope")
    assert isinstance(error, ModelRefused)
    assert "the model id 'veo-9-nope' may be unknown" in str(error)


def test_404_on_poll_says_expired() -> None:
    error = classify(answer(404, {"error": {"code": 404, "message": "gone"}}), what="poll", model="m")
    assert isinstance(error, TerminalError) and not isinstance(error, ModelRefused)
    assert "may have expired" in str(error)


def test_x_should_retry_overrides_the_status() -> None:
    forced_no = classify(answer(503, {"error": {"message": "no"}}, {"x-should-retry": "false"}))
    assert isinstance(forced_no, TerminalError)
    forced_yes = classify(answer(400, {"error": {"message": "yes"}}, {"x-should-retry": "true"}))
    assert isinstance(forced_yes, RetryableError)


def test_plain_text_and_empty_bodies() -> None:
    error = classify(answer(502, "<html>Bad Gateway</html>"))
    assert isinstance(error, RetryableError) and "Bad Gateway" in str(error)
    error = classify(answer(418))
    assert isinstance(error, TerminalError) and "418" in str(error) and "retrying will not help" in str(error)


# -- Http ---------------------------------------------------------------------------------------------


def _http(handler: Any, **kwargs: Any) -> Http:
    options = {
        "service": "svc",
        "base_url": "https://api.example.test/v1",
        "key_env": "SVC_KEY",
        "auth": {"x-api-key": "sk-test-LEAKCHECK-123"},
        "secrets": ("sk-test-LEAKCHECK-123",),
        "transport": httpx.MockTransport(handler),
        **kwargs,
    }
    return Http(**options)


def test_http_redacts_secrets_echoed_by_the_service() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": f"bad key {request.headers['x-api-key']}"}})

    async def go() -> str:
        http = _http(handler)
        try:
            await http.json("GET", "videos/1", what="poll")
        except TerminalError as exc:
            return str(exc)
        finally:
            await http.aclose()
        raise AssertionError("no error")

    text = asyncio.run(go())
    assert "sk-test-LEAKCHECK-123" not in text and "***" in text and "check SVC_KEY" in text


def test_auth_headers_go_only_to_trusted_hosts_even_across_redirects(tmp_path: Path) -> None:
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.host] = request.headers.get("x-api-key")
        if request.url.host == "api.example.test":
            return httpx.Response(302, headers={"location": "https://cdn.example.net/blob.mp4"})
        return httpx.Response(200, content=b"\x00\x00\x00\x18ftypmp42" + b"x" * 100)

    async def go() -> None:
        http = _http(handler)
        try:
            await http.download("files/abc:download", tmp_path / "out.mp4")
        finally:
            await http.aclose()

    asyncio.run(go())
    assert seen == {"api.example.test": "sk-test-LEAKCHECK-123", "cdn.example.net": None}
    assert (tmp_path / "out.mp4").stat().st_size == 112


def test_truncated_download_is_retryable_and_leaves_nothing(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 10, headers={"content-length": "100"})

    async def go() -> None:
        http = _http(handler)
        try:
            await http.download("videos/1/content", tmp_path / "out.mp4")
        finally:
            await http.aclose()

    with pytest.raises(RetryableError):
        asyncio.run(go())
    assert list(tmp_path.iterdir()) == []


def test_a_base_url_that_is_not_http_is_an_environment_problem() -> None:
    with pytest.raises(EnvironmentProblem, match="check --base-url"):
        Http(service="svc", base_url="localhost:8080", key_env="SVC_KEY")


def test_non_json_answer_is_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>maintenance</html>", headers={"content-type": "text/html"})

    async def go() -> None:
        http = _http(handler)
        try:
            await http.json("GET", "videos/1", what="poll")
        finally:
            await http.aclose()

    with pytest.raises(RetryableError, match="not JSON"):
        asyncio.run(go())
