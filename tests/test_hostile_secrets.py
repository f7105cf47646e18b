"""Issue 17: secrets in URLs never leave, whether they came from a flag, the environment or a config.

A base URL with a password was stored in the cache's ``take.json`` and printed in errors;
``composer config`` showed a ``?key=`` query. Now a base URL carrying a credential is refused
(its message shows it redacted), a proxy password is refused on the command line, and every
URL printed goes through the redaction.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.backends import registry
from composer.cli import main
from composer.errors import EnvironmentProblem
from composer.urls import redact_text, redact_url, secret_parts

SECRET = "hunter2-very-secret-value"
BOARD = (
    "version: 1\ntitle: secrets\noutput:\n  length_s: 4\n  resolution: 160x96\n"
    "scenes:\n  - id: a\n    prompt: waves roll onto a wide sandy beach at dawn, slow pan left along the shore\n"
    "    duration_s: 4\n"
)


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "a-key-for-the-tests-only")
    monkeypatch.setenv("OPENAI_API_KEY", "a-key-for-the-tests-only")
    for name in ("GOOGLE_GEMINI_BASE_URL", "OPENAI_BASE_URL", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "url",
    [
        f"http://user:{SECRET}@127.0.0.1:9",
        f"http://127.0.0.1:9/?key={SECRET}",
        f"http://127.0.0.1:9/v1?api_key={SECRET}&x=1",
        f"http://127.0.0.1:9/?access_token={SECRET}",
    ],
    ids=["userinfo", "key", "api_key", "access_token"],
)
def test_a_base_url_flag_with_a_credential_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(EnvironmentProblem) as refused:
        registry.create("gemini", base_url=url)
    message = str(refused.value)
    assert SECRET not in message and "carries a credential" in message and "***" in message


def test_a_base_url_from_the_environment_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:9/v1?key={SECRET}")
    with pytest.raises(EnvironmentProblem) as refused:
        registry.create("openai")
    assert SECRET not in str(refused.value) and "'key'" in str(refused.value)


def test_a_proxy_password_on_the_command_line_is_refused() -> None:
    with pytest.raises(EnvironmentProblem, match="HTTPS_PROXY") as refused:
        registry.create("gemini", base_url="http://127.0.0.1:9", proxy=f"http://me:{SECRET}@proxy:3128")
    assert SECRET not in str(refused.value)


def test_render_refuses_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("COMPOSER_CACHE", str(cache))
    board = tmp_path / "board.yaml"
    board.write_text(BOARD, encoding="utf-8")
    code = main(
        ["render", str(board), "-o", str(tmp_path / "out"), "--backend", "gemini",
         "--base-url", f"http://user:{SECRET}@127.0.0.1:9"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 3, err
    assert SECRET not in err and "Traceback" not in err
    stored = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    assert all(SECRET not in p.read_text(errors="replace") for p in stored)


def test_composer_config_shows_environment_and_flag_urls_redacted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"https://relay.example/v1?key={SECRET}")
    assert main(["config", "--backend", "openai"]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out and "key=***" in out
    monkeypatch.setenv("HTTPS_PROXY", f"http://me:{SECRET}@proxy.example:3128")
    assert main(["config", "--backend", "openai", "--json"]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out and "***@proxy.example:3128" in out


def test_the_redaction_rules() -> None:
    assert (
        redact_url("http://u:p@h:1/x?key=k&keyframe=3&sig=s") == "http://***@h:1/x?key=***&keyframe=3&sig=***"
    )
    assert redact_url("https://h/v1/videos") == "https://h/v1/videos"
    assert secret_parts("https://h/?monkey=1&keyframes=2") == []
    assert (
        redact_text(f"cannot reach http://a:{SECRET}@h:9/x (refused)")
        == "cannot reach http://***@h:9/x (refused)"
    )
