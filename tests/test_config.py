"""The user config file: where it is, what it may say, precedence, and `composer config`.

Every test reads a config file from its own temporary folder (the autouse fixture below points
XDG_CONFIG_HOME there and clears COMPOSER_CONFIG), so a developer's real
``~/.config/composer/config.toml`` never takes part.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from composer import config as cfg
from composer import pipeline
from composer.backends.registry import capabilities
from composer.cli import main
from composer.config import effective_settings, load_config
from composer.errors import EnvironmentProblem
from composer.jobs.remote import JobSettings

DEMO = Path(__file__).resolve().parents[1] / "storyboards" / "demo.yaml"
TINY = {
    "title": "tiny config",
    "output": {"length_s": 6, "resolution": "160x96", "fps": 24, "crossfade_s": 0.5},
    "generation": {"segment_s": 3, "seed": 5},
    "continuity": {"max_attempts": 1},
    "scenes": [
        {"id": "sea", "prompt": "a calm sea", "duration_s": 6},
        {"id": "city", "prompt": "a city street", "duration_s": 6},
    ],
}
ENV_VARIABLES = (
    *cfg.BASE_URL_VARIABLES.values(),
    *cfg.PROXY_VARIABLES,
    *(v for names in cfg.KEY_VARIABLES.values() for v in names),
)


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPOSER_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for variable in ENV_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def write_config(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch | None = None) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    if monkeypatch is not None:
        monkeypatch.setenv("COMPOSER_CONFIG", str(path))
    return path


def storyboard(tmp_path: Path, name: str = "tiny.yaml", **generation: Any) -> Path:
    data = {**TINY, "generation": {**TINY["generation"], **generation}}  # type: ignore[dict-item]
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


# -- finding the file ---------------------------------------------------------------------------


def test_the_file_is_composer_config_then_xdg_then_home(tmp_path: Path) -> None:
    home = Path.home() / ".config" / "composer" / "config.toml"
    assert cfg.config_path({}) == (home, "default")
    assert cfg.config_path({"XDG_CONFIG_HOME": "relative/dir"}) == (home, "default")  # XDG: absolute only
    xdg = tmp_path / "xdg"
    assert cfg.config_path({"XDG_CONFIG_HOME": str(xdg)}) == (
        xdg / "composer" / "config.toml",
        "XDG_CONFIG_HOME",
    )
    named = tmp_path / "mine.toml"
    env = {"XDG_CONFIG_HOME": str(xdg), "COMPOSER_CONFIG": str(named)}
    assert cfg.config_path(env) == (named, "COMPOSER_CONFIG")


def test_no_file_at_the_usual_place_is_an_empty_config(tmp_path: Path) -> None:
    loaded = load_config()
    assert not loaded.found and loaded.path == tmp_path / "xdg" / "composer" / "config.toml"
    assert loaded.config == cfg.Config()


def test_the_xdg_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "xdg" / "composer" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("[defaults]\nworkers = 3\n")
    settings = effective_settings({})
    assert settings.workers.value == 3 and settings.workers.source == f"config {path}:2"


def test_a_missing_file_named_by_composer_config_is_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COMPOSER_CONFIG", str(tmp_path / "nope.toml"))
    assert main(["config"]) == 3
    err = capsys.readouterr().err
    assert "nope.toml: no such config file" in err and "unset COMPOSER_CONFIG" in err


# -- precedence ---------------------------------------------------------------------------------


CONFIG = """\
# a user's defaults
[defaults]
backend = "gemini"
model = "quality"
concurrency = 4
workers = 3
budget_usd = 12.5
poll_interval_s = 2
rpm = 7
cache_dir = "~/composer-cache"
proxy = "http://proxy.test:3128"

[backends.gemini]
base_url = "http://127.0.0.1:9"
rpm = 5
prices = { fast = 0.1 }

[backends.openai]
model = "sora-2-pro"
"""


def test_config_fills_in_what_nothing_else_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPOSER_CACHE")  # the environment would win (conftest sets it)
    path = write_config(tmp_path, CONFIG, monkeypatch)
    s = effective_settings({}, str(storyboard(tmp_path)))  # the storyboard names no backend or model
    assert s.backend.value == "gemini" and s.backend.source == f"config {path}:{line_of(path, 'backend =')}"
    assert s.model.value == "quality" and s.model.source == f"config {path}:4"
    assert s.model_id == "veo-3.1-generate-preview"
    assert (s.concurrency.value, s.workers.value, s.budget_usd.value, s.poll_interval_s.value) == (
        4,
        3,
        12.5,
        2,
    )
    assert s.rpm.value == 5 and s.rpm.source == f"config {path}:{line_of(path, 'rpm = 5')}"
    assert s.base_url.value == "http://127.0.0.1:9" and s.proxy.value == "http://proxy.test:3128"
    assert s.cache_dir.value == str(Path("~/composer-cache").expanduser())
    assert s.prices.value == {"veo-3.1-fast-generate-preview": 0.1}
    assert s.given("backend") == "gemini" and s.given("prices") == {"veo-3.1-fast-generate-preview": 0.1}


def test_the_more_specific_backend_table_wins_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, CONFIG, monkeypatch)
    s = effective_settings({"backend": "openai"})
    assert s.model.value == "sora-2-pro" and s.model.source == f"config {path}:{line_of(path, 'sora-2-pro')}"
    assert s.rpm.value == 7  # no [backends.openai] rpm: [defaults] applies
    assert s.base_url.value is None and s.base_url.source == "default"  # gemini's address is not openai's
    assert s.prices.value is None


def test_the_storyboard_file_beats_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, CONFIG, monkeypatch)
    board = storyboard(tmp_path, backend="local", model="fast")
    s = effective_settings({}, str(board))
    assert (
        s.backend.value == "local" and s.backend.source == f"storyboard {board}:{line_of(board, 'backend:')}"
    )
    assert s.model.value == "fast" and s.model.source == f"storyboard {board}:{line_of(board, 'model:')}"
    assert s.given("backend") is None and s.given("model") is None  # the pipeline reads the file itself


def test_the_command_line_beats_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, CONFIG, monkeypatch)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://from-env.test")
    given = {
        "backend": "gemini",
        "model": "lite",
        "concurrency": 2,
        "base_url": "http://cli.test",
        "workers": 1,
    }
    s = effective_settings(given, str(storyboard(tmp_path, backend="local", model="fast")))
    for name, value in given.items():
        setting = getattr(s, name)
        assert (setting.value, setting.source) == (value, "command line"), name


def test_built_in_defaults_without_a_config(tmp_path: Path) -> None:
    s = effective_settings({}, str(storyboard(tmp_path)))
    assert (s.backend.value, s.backend.source) == ("local", "default")
    assert (s.model.value, s.model.source) == ("fast", "default")
    assert s.concurrency.value == 10 and s.budget_usd.value is None and s.prices.value is None
    assert all(s.given(name) is None for name in cfg.SETTINGS)


def test_the_environment_beats_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, CONFIG, monkeypatch)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://env.test")
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "env-cache"))
    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@envproxy.test:8080")
    s = effective_settings({})
    assert (s.base_url.value, s.base_url.source) == ("http://env.test", "environment GOOGLE_GEMINI_BASE_URL")
    assert (s.cache_dir.value, s.cache_dir.source) == (
        str(tmp_path / "env-cache"),
        "environment COMPOSER_CACHE",
    )
    assert s.proxy.source == "environment HTTPS_PROXY" and "secret" not in s.proxy.value
    # Values from the environment are left to the code that reads them already.
    assert s.given("base_url") is None and s.given("cache_dir") is None and s.given("proxy") is None


def test_a_plan_json_fixes_backend_and_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(DEMO), "--backend", "gemini", "--json", str(plan_file)]) == 0
    write_config(tmp_path, '[defaults]\nbackend = "openai"\nmodel = "quality"\n', monkeypatch)
    s = effective_settings({}, str(plan_file))
    assert (s.backend.value, s.backend.source) == ("gemini", f"plan {plan_file}")
    assert s.given("backend") is None and s.given("model") is None  # a plan.json refuses both


# -- composer config ----------------------------------------------------------------------------


def test_composer_config_shows_values_and_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, CONFIG, monkeypatch)
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaNEVERPRINTED-0123456789")
    board = storyboard(tmp_path, model="lite")
    assert main(["config", str(board)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(" ")}
    assert f"config file: {path}" in out
    assert "gemini" in rows["backend"] and f"config {path}:3" in rows["backend"]
    assert "lite (veo-3.1-lite-generate-preview)" in rows["model"] and f"storyboard {board}:" in rows["model"]
    assert "4" in rows["concurrency"] and f"config {path}:5" in rows["concurrency"]
    assert f"config {path}:8" in rows["poll_interval_s"] and f"config {path}:11" in rows["proxy"]
    assert "0.05 USD/s" in rows["price_per_s"] and "default (gemini list price)" in rows["price_per_s"]
    assert "GEMINI_API_KEY: set (from environment)" in out and "OPENAI_API_KEY: not set" in out
    assert "AIzaNEVERPRINTED" not in out


def test_composer_config_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, CONFIG, monkeypatch)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-NEVERPRINTED-0123456789")
    assert main(["config", "--json", "--backend", "gemini", "--model", "fast"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data["version"] == 1 and data["config_file"] == str(path) and data["config_found"] is True
    assert data["backend"] == {"value": "gemini", "source": "command line", "note": ""}
    assert data["price_per_s"]["value"] == 0.1 and data["price_per_s"]["source"] == f"config {path}:16"
    assert data["keys"]["OPENAI_API_KEY"] is True and data["keys"]["GEMINI_API_KEY"] is False
    assert "NEVERPRINTED" not in out


def test_composer_config_without_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "(not found: nothing from a config file)" in out and re.search(r"^backend +local ", out, re.M)


# -- bad files ----------------------------------------------------------------------------------


def test_bad_toml_is_located_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "[defaults]\nconcurrency = 4\nbackend = gemini\n", monkeypatch)
    assert main(["config"]) == 3
    err = capsys.readouterr().err
    assert f"{path}:3:11: not valid TOML" in err and 'backend = "gemini"' in err and "COMPOSER_CONFIG" in err


def test_bad_keys_and_values_are_located_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "[defaults]\n"
        "concurency = 3\n"  # 2: a typo
        "workers = 0\n"  # 3: too small
        'backend = "gemeni"\n'  # 4: unknown backend
        "[backends.gemini]\n"
        'rpm = "5"\n'  # 6: text, not a number
        "prices = { fast = -1 }\n"  # 7: negative
        "[backends.local]\n"  # 8: no such table
        "rpm = 1\n"
    )
    path = write_config(tmp_path, text, monkeypatch)
    assert main(["render", str(DEMO)]) == 3  # before anything is planned or generated
    err = capsys.readouterr().err
    assert f"{path}:2: defaults.concurency: unknown key 'concurency' (did you mean 'concurrency'?)" in err
    assert f"{path}:3: defaults.workers: Input should be greater than or equal to 1 (got 0)" in err
    assert f"{path}:4: defaults.backend: unknown backend 'gemeni' (did you mean 'gemini'?)" in err
    assert f"{path}:6: backends.gemini.rpm: Input should be a valid integer (got '5')" in err
    assert f"{path}:7: backends.gemini.prices.fast: Input should be greater than or equal to 0" in err
    assert f"{path}:8: backends.local: local has no settings here" in err
    assert "docs/configuration.md" in err


def test_load_config_raises_an_environment_problem(tmp_path: Path) -> None:
    path = write_config(tmp_path, "defaults = 3\n")
    with pytest.raises(EnvironmentProblem, match=r"config\.toml:1: defaults: expected a table"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "line", "where"),
    [
        ('[backends.gemini]\napi_key = "AIzaSECRETVALUE"\n', 2, "backends.gemini.api_key"),
        ('[defaults]\nbackend = "gemini"\nkey = "AIzaSECRETVALUE"\n', 3, "defaults.key"),
        ('GEMINI_API_KEY = "AIzaSECRETVALUE"\n', 1, "GEMINI_API_KEY"),
        ('[backends.vertex]\naccess_token = "ya29.SECRETVALUE"\n', 2, "backends.vertex.access_token"),
        ('[secrets]\nopenai = "sk-SECRETVALUE"\n', 1, "secrets"),
        ('backends.relay.token = "rk-SECRETVALUE"\n', 1, "backends.relay.token"),
    ],
)
def test_key_like_fields_are_refused(
    text: str,
    line: int,
    where: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_config(tmp_path, text, monkeypatch)
    assert main(["config"]) == 3
    err = capsys.readouterr().err
    assert f"{path}:{line}: {where}: a key-looking field is not allowed" in err
    for variable in (
        "GEMINI_API_KEY",
        "OPENAI_API_KEY",
        "COMPOSER_RELAY_API_KEY",
        "GOOGLE_OAUTH_ACCESS_TOKEN",
    ):
        assert variable in err
    assert "SECRETVALUE" not in err


def test_credentials_in_urls_are_refused_without_echoing_them(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[backends.gemini]\nbase_url = "https://x.test/?key=AIzaSECRETVALUE"\n')
    with pytest.raises(EnvironmentProblem, match="carries a credential") as caught:
        load_config(path)
    assert "SECRETVALUE" not in str(caught.value)


def test_model_ids_in_prices_are_not_mistaken_for_keys(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[backends.openai]\nprices = { "token-model" = 0.2, "keyframe-1" = 0.3 }\n')
    assert load_config(path).config.backend("openai").prices == {"token-model": 0.2, "keyframe-1": 0.3}


# -- prices and the render path -----------------------------------------------------------------


def test_with_prices_lays_overrides_over_list_prices() -> None:
    caps = capabilities("gemini")
    changed = caps.with_prices({"fast": 0.1, "veo-3.1-generate-preview": 0.3})
    assert changed.price_per_s["veo-3.1-fast-generate-preview"] == 0.1
    assert changed.price_per_s["veo-3.1-generate-preview"] == 0.3
    assert (
        changed.price_per_s["veo-3.1-lite-generate-preview"]
        == caps.price_per_s["veo-3.1-lite-generate-preview"]
    )
    assert caps.with_prices(None) is caps and caps.price_per_s["veo-3.1-fast-generate-preview"] == 0.15


def test_a_price_override_changes_the_plans_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # 66 generated seconds of Veo 3.1 fast: $9.90 at the list price of $0.15/s.
    assert main(["plan", str(DEMO), "--backend", "gemini"]) == 0
    assert "estimated cost $9.90" in capsys.readouterr().out
    write_config(
        tmp_path, '[backends.gemini]\nprices = { "veo-3.1-fast-generate-preview" = 0.10 }\n', monkeypatch
    )
    assert main(["plan", str(DEMO), "--backend", "gemini"]) == 0
    assert "estimated cost $6.60" in capsys.readouterr().out
    assert main(["plan", str(DEMO), "--backend", "gemini", "--json", "-"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["capabilities"]["price_per_s"]["veo-3.1-fast-generate-preview"] == 0.1


def test_plan_takes_the_config_backend_when_the_storyboard_names_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(tmp_path, '[defaults]\nbackend = "gemini"\nmodel = "quality"\n', monkeypatch)
    assert main(["plan", str(storyboard(tmp_path))]) == 0
    assert "backend gemini (veo-3.1-generate-preview)" in capsys.readouterr().out
    assert main(["plan", str(storyboard(tmp_path, "local.yaml", backend="local"))]) == 0
    assert "backend local" in capsys.readouterr().out


def _capture_render(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_run(source: object, options: pipeline.RenderOptions, *args: object) -> None:
        seen.update(vars(options))
        raise EnvironmentProblem("stop here")  # exit 3 before anything runs

    monkeypatch.setattr(pipeline, "run", fake_run)
    return seen


def test_render_takes_its_defaults_from_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPOSER_CACHE")  # the environment would win (conftest sets it)
    write_config(tmp_path, CONFIG, monkeypatch)
    seen = _capture_render(monkeypatch)
    assert main(["render", str(storyboard(tmp_path))]) == 3
    jobs = seen["jobs"]
    assert (seen["backend"], seen["model"], seen["workers"]) == ("gemini", "quality", 3)
    assert (seen["base_url"], seen["proxy"]) == ("http://127.0.0.1:9", "http://proxy.test:3128")
    assert seen["cache_dir"] == Path("~/composer-cache").expanduser()
    assert seen["prices"] == {"veo-3.1-fast-generate-preview": 0.1}
    assert (jobs.concurrency, jobs.requests_per_minute, jobs.poll_interval_s, jobs.budget_usd) == (
        4,
        5,
        2,
        12.5,
    )


def test_render_options_beat_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, CONFIG, monkeypatch)
    seen = _capture_render(monkeypatch)
    argv = ["render", str(storyboard(tmp_path)), "--backend", "openai", "--model", "sora-2",
            "--concurrency", "2", "--rpm", "3", "--budget", "1", "--poll-interval", "0.5", "--workers", "1",
            "--base-url", "http://cli.test", "--proxy", "http://cliproxy.test:1"]  # fmt: skip
    assert main(argv) == 3
    jobs = seen["jobs"]
    assert (seen["backend"], seen["model"], seen["workers"]) == ("openai", "sora-2", 1)
    assert (seen["base_url"], seen["proxy"], seen["prices"]) == (
        "http://cli.test",
        "http://cliproxy.test:1",
        None,
    )
    assert (jobs.concurrency, jobs.requests_per_minute, jobs.poll_interval_s, jobs.budget_usd) == (
        2,
        3,
        0.5,
        1.0,
    )


def test_render_without_a_config_passes_nothing_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture_render(monkeypatch)
    assert main(["render", str(storyboard(tmp_path))]) == 3
    assert all(
        seen[k] is None for k in ("backend", "model", "workers", "base_url", "proxy", "cache_dir", "prices")
    )
    assert seen["jobs"] == JobSettings()


def test_ambiguous_retries_from_the_command_line_the_environment_and_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMPOSER_AMBIGUOUS_RETRIES", raising=False)
    config = write_config(tmp_path, "[defaults]\nambiguous_retries = 0\n", monkeypatch)
    s = effective_settings({})
    assert (s.ambiguous_retries.value, s.ambiguous_retries.source) == (
        0,
        f"config {config}:{line_of(config, 'ambiguous_retries')}",
    )
    seen = _capture_render(monkeypatch)
    board = str(storyboard(tmp_path))
    assert main(["render", board]) == 3
    assert seen["jobs"].ambiguous_retries == 0  # the file's 0, not the built-in 1
    assert main(["render", board, "--ambiguous-retries", "3"]) == 3
    assert seen["jobs"].ambiguous_retries == 3  # the command line beats the file
    # The environment beats the file and is read by the job machinery itself, as without a file.
    monkeypatch.setenv("COMPOSER_AMBIGUOUS_RETRIES", "2")
    s = effective_settings({})
    assert (s.ambiguous_retries.value, s.ambiguous_retries.source) == (
        "2",
        "environment COMPOSER_AMBIGUOUS_RETRIES",
    )
    assert s.given("ambiguous_retries") is None
    assert main(["render", board]) == 3
    assert seen["jobs"].ambiguous_retries == 2
    # Without any of them: 1.
    monkeypatch.delenv("COMPOSER_AMBIGUOUS_RETRIES")
    write_config(tmp_path, "[defaults]\n", monkeypatch)
    assert effective_settings({}).ambiguous_retries.value == 1
    assert main(["render", board]) == 3
    assert seen["jobs"].ambiguous_retries == 1


def test_a_negative_ambiguous_retries_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "[defaults]\nambiguous_retries = -1\n", monkeypatch)
    with pytest.raises(EnvironmentProblem, match="ambiguous_retries"):
        load_config(config)
    write_config(tmp_path, "[defaults]\n", monkeypatch)
    assert main(["render", str(storyboard(tmp_path)), "--ambiguous-retries", "-1"]) == 1
    assert "--ambiguous-retries must not be negative" in capsys.readouterr().err


def test_a_price_override_reaches_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # At the list price a $1.00 budget buys one 4 s take ($0.60, see test_render_api); at $0.50/s
    # the first take costs $2.00, so nothing may be submitted: the backend instance has the price.
    from composer.sim import Simulator

    monkeypatch.setenv("GEMINI_API_KEY", "AIzaFAKE-config-0123456789")
    with Simulator(latency_s=0.05, seed=1) as sim:
        write_config(
            tmp_path,
            f'[defaults]\nbackend = "gemini"\nbudget_usd = 1.0\npoll_interval_s = 0.05\n'
            f'[backends.gemini]\nbase_url = "{sim.base_url}"\nprices = {{ fast = 0.5 }}\n',
            monkeypatch,
        )
        assert main(["render", str(storyboard(tmp_path)), "-o", str(tmp_path / "out")]) == 1
        assert sim.stats()["gemini"]["created"] == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["failures"][0]["kind"] == "budget" and manifest["backend"] == "gemini"


def test_every_row_of_the_backend_table_names_real_code() -> None:
    # A row is all it takes to add a backend: its module must hold the class and the
    # capabilities it names, declared under its own name, and a key only where it needs one.
    import importlib

    from composer.backends import BACKENDS

    for name, spec in BACKENDS.items():
        module = importlib.import_module(spec.module)
        assert isinstance(getattr(module, spec.cls), type), name
        caps = capabilities(name, "quality")
        assert caps.name == name and caps.needs_key == bool(spec.key_variables), name
        assert spec.calls_service == (spec.base_url_variable is not None), name


def test_the_config_reads_the_backend_table() -> None:
    # One table (composer/backends/__init__.py) names every backend: a [backends.NAME] table
    # exists for each that calls a service, and `composer config` lists each one's key variables.
    from composer.backends import BACKENDS

    assert set(cfg.Backends.model_fields) == {n for n, spec in BACKENDS.items() if spec.calls_service}
    assert list(effective_settings({}).keys) == [v for spec in BACKENDS.values() for v in spec.key_variables]
