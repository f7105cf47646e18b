"""Google API conventions shared by the Gemini and Vertex protocols of the simulator.

What lives here: the ``{"error": {"code", "message", "status", "details"}}`` envelope, the
status word for each HTTP status, the answers for injected faults (429 with
``google.rpc.QuotaFailure`` and ``google.rpc.RetryInfo``, 500 INTERNAL, 503 UNAVAILABLE) and
the two ways of checking credentials (Gemini's API key, Vertex's bearer token). What does
not: either API's paths and bodies (``gemini.py``, ``vertex.py``).
"""

from __future__ import annotations

from typing import Any

from composer.sim.http import ApiError, Request, Response, json_response

_STATUS_WORDS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def envelope(error: ApiError) -> Response:
    body: dict[str, object] = {
        "code": error.status,
        "message": error.message,
        "status": error.reason or _STATUS_WORDS.get(error.status, "UNKNOWN"),
    }
    if error.details:
        body["details"] = error.details
    return json_response({"error": body}, error.status, error.headers)


def _delay_text(seconds: float) -> str:
    # google.protobuf.Duration in JSON: "53s", or with a fraction "0.500s".
    return f"{seconds:.0f}s" if float(seconds).is_integer() else f"{seconds:.3f}s"


def fault_error(kind: str, delay_s: float, *, service: str) -> ApiError:
    """The answer for an injected 429 / 500 / 503 (``service``: gemini or vertex)."""
    if kind == "429":
        if service == "vertex":
            message = (
                "Resource exhausted. Please try again later. Please refer to "
                "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details."
            )
            metric = "aiplatform.googleapis.com/online_prediction_requests_per_base_model"
        else:
            message = (
                "You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
            )
            metric = "generativelanguage.googleapis.com/predict_long_running_requests"
        details: list[dict[str, Any]] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {"quotaMetric": metric, "quotaId": "PredictLongRunningRequestsPerMinutePerProject"}
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": _delay_text(delay_s)},
        ]
        return ApiError(429, message, reason="RESOURCE_EXHAUSTED", details=details)
    if kind == "503":
        return ApiError(503, "The model is overloaded. Please try again later.", reason="UNAVAILABLE")
    return ApiError(500, "Internal error encountered.", reason="INTERNAL")


def check_api_key(request: Request, expected: str | None) -> None:
    """Gemini API: ``x-goog-api-key`` header or ``?key=``; 403 when missing, 400 when wrong, as the real one."""
    key = request.header("x-goog-api-key") or request.arg("key") or ""
    if not key:
        raise ApiError(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
            reason="PERMISSION_DENIED",
        )
    if expected is not None and key != expected:
        # The live service answers a wrong key with 400 INVALID_ARGUMENT; the ErrorInfo reason
        # is what tells it apart from a bad request.
        raise ApiError(
            400,
            "API key not valid. Please pass a valid API key.",
            reason="INVALID_ARGUMENT",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ],
        )


def check_bearer(request: Request, expected: str | None) -> None:
    """Vertex AI and Cloud Storage: ``Authorization: Bearer <token>``; 401 UNAUTHENTICATED."""
    header = request.header("authorization")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "Request is missing required authentication credential. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            reason="UNAUTHENTICATED",
        )
    if expected is not None and token != expected:
        raise ApiError(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
            "or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            reason="UNAUTHENTICATED",
        )


def not_found(message: str = "Requested entity was not found.") -> ApiError:
    return ApiError(404, message, reason="NOT_FOUND")
