"""The user's config file and the effective settings of a command, each with where it came from.

What lives here: finding the config file (:func:`config_path`), reading and checking it
(:func:`load_config`, errors that name ``file:line`` and the fix), the precedence that turns the
command line, the storyboard, the environment, the config file and the built-in defaults into
one :class:`Effective` (:func:`effective_settings`, one named step per setting).

What does not live here: argument parsing and printing (``cli.py``; :meth:`Effective.text`
only formats), and any use of a setting (the pipeline, the job runner and the backends take
plain values). The library API
(``composer.render(...)``) never reads the config file on its own; the CLI reads it and passes
values on, so a program that calls the library gets exactly what it asks for.

Precedence, highest first (docs/configuration.md has the table)::

    command line  >  storyboard file  >  environment  >  config file  >  built-in default

The storyboard has a say only on ``backend`` and ``model`` (``generation.backend`` /
``generation.model``), and only when the *file* writes them: the storyboard model fills in
``local`` / ``fast`` for a file that says nothing, and those fill-ins must not hide the config's
defaults. The environment has a say only where a variable exists already: ``COMPOSER_CACHE``
(cache folder), each backend's base-URL variable and the proxy variables httpx reads. The
backends, their variables and which of them take a ``[backends.NAME]`` table come from the one
table :data:`composer.backends.BACKENDS`.

API keys are never read from the config file: a key-looking field there is refused, so a file
that is shared, committed or backed up never carries one.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from composer.backends import API_BACKENDS, BACKENDS
from composer.errors import EnvironmentProblem
from composer.models import Frozen
from composer.plan.io import Source, read_source
from composer.urls import redact_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

if TYPE_CHECKING:
    from composer.backends.base import Capabilities

#: The variable that names the config file outright.
CONFIG_ENV = "COMPOSER_CONFIG"

#: Each API backend's key variables, first set wins (from the backend table).
KEY_VARIABLES: dict[str, tuple[str, ...]] = {name: BACKENDS[name].key_variables for name in API_BACKENDS}
#: Each API backend's base-URL variable (from the backend table).
BASE_URL_VARIABLES: dict[str, str] = {
    name: var for name in API_BACKENDS if (var := BACKENDS[name].base_url_variable) is not None
}
#: The proxy variables httpx honours (``trust_env``), in the order a https request looks at them.
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")
CACHE_ENV = "COMPOSER_CACHE"

#: The settings :func:`effective_settings` resolves; also the keys ``cli_values`` may hold.
SETTINGS = (
    "backend",
    "model",
    "base_url",
    "proxy",
    "concurrency",
    "rpm",
    "poll_interval_s",
    "budget_usd",
    "ambiguous_retries",
    "workers",
    "cache_dir",
)

_KEYS_HINT = "keys come only from environment variables: " + ", ".join(
    f"{BACKENDS[name].key_hint} ({name})" for name in API_BACKENDS
)
# A field name that looks like a credential: ``key``, ``api_key``, ``apikey``, ``access_token``,
# ``client_secret``, ``password``... but not ``keyframe`` or ``monkey``.
_SECRET_NAME = re.compile(
    r"(^|[_\-.])(api[_\-]?key|apikey|keys?|tokens?|secrets?|passwords?|passwd|credentials?|auth)($|[_\-.])",
    re.IGNORECASE,
)


# -- the file's model ---------------------------------------------------------------------------


class _Frozen(Frozen):
    # strict: TOML is typed, so `concurrency = "4"` or `= true` is a mistake worth naming.
    model_config = ConfigDict(strict=True)


def _check_url(value: str | None, what: str, schemes: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"{value!r} is not a {what} URL; write it whole, e.g. {schemes[0]}://host:port")
    query_names = {name.lower() for name, _ in parse_qsl(parts.query)}
    if parts.password or query_names & {"key", "api_key", "token", "access_token"}:
        # Never echo the value: it holds a credential.
        raise ValueError(
            f"this {what} URL carries a credential; {_KEYS_HINT} (a proxy's password: HTTPS_PROXY)"
        )
    return value.strip()


class Defaults(_Frozen):
    """``[defaults]``: what a command uses when nothing more specific says otherwise."""

    backend: str | None = Field(default=None, description="local, gemini, vertex, openai or relay.")
    model: str | None = Field(
        default=None, min_length=1, description="An alias (fast, quality) or a model id."
    )
    concurrency: int | None = Field(default=None, ge=1, description="Operations in flight at once.")
    rpm: int | None = Field(default=None, ge=1, description="Create requests per minute.")
    budget_usd: float | None = Field(default=None, ge=0, description="Stop before submitting past this cost.")
    ambiguous_retries: int | None = Field(
        default=None,
        ge=0,
        description="Creates sent again after one whose answer was lost (each a possible duplicate charge).",
    )
    poll_interval_s: float | None = Field(default=None, ge=0, description="First wait before polling.")
    workers: int | None = Field(default=None, ge=1, description="Segments generated at once.")
    cache_dir: str | None = Field(
        default=None, min_length=1, description="The take cache folder (~ expands)."
    )
    proxy: str | None = Field(default=None, description="HTTP(S) proxy for the API backends.")

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is not None and value not in BACKENDS:
            close = difflib.get_close_matches(value, list(BACKENDS), n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown backend {value!r}{guess}; available: {', '.join(sorted(BACKENDS))}")
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        return _check_url(value, "proxy", ("http", "https", "socks5", "socks5h"))


class BackendSettings(_Frozen):
    """``[backends.NAME]``: settings for one API backend."""

    base_url: str | None = Field(
        default=None, description="The service's address (a relay, a proxy, the simulator)."
    )
    model: str | None = Field(
        default=None, min_length=1, description="This backend's default model (alias or id)."
    )
    rpm: int | None = Field(default=None, ge=1, description="Create requests per minute on this backend.")
    prices: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="USD per generated second, by model id or alias."
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return _check_url(value, "base", ("http", "https"))


#: ``[backends]``: one optional table per API backend of the backend table.
Backends: type[_Frozen] = create_model(
    "Backends",
    __base__=_Frozen,
    **{name: (BackendSettings | None, None) for name in API_BACKENDS},  # type: ignore[call-overload]
)


class Config(_Frozen):
    """The whole config file."""

    defaults: Defaults = Defaults()
    backends: Backends = Backends()  # type: ignore[valid-type]

    def backend(self, name: str) -> BackendSettings:
        """The ``[backends.NAME]`` table (empty when the file has none, or for ``local``)."""
        settings = getattr(self.backends, name, None) if name in API_BACKENDS else None
        return settings if isinstance(settings, BackendSettings) else BackendSettings()


Loc = tuple[str, ...]


@dataclass(frozen=True)
class LoadedConfig:
    """A checked config file, where it is, and the line each key was written on."""

    config: Config
    path: Path
    found: bool
    how: str  # how the path was chosen: "COMPOSER_CONFIG", "XDG_CONFIG_HOME" or "default"
    lines: dict[Loc, int] = field(default_factory=dict, repr=False)

    def source(self, *loc: str) -> str:
        """``config FILE:LINE`` for a key of this file."""
        line = _line(self.lines, loc)
        return f"config {self.path}" + (f":{line}" if line else "")


# -- finding and reading the file ---------------------------------------------------------------


def config_path(environ: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """The config file to read and how it was chosen.

    ``$COMPOSER_CONFIG`` if set; else ``$XDG_CONFIG_HOME/composer/config.toml`` (an absolute
    XDG_CONFIG_HOME only, as the XDG spec says); else ``~/.config/composer/config.toml``. The same
    on macOS and Windows: a file people edit by hand and keep with their dotfiles is easiest to
    find, document and sync at one path everywhere (the take cache, which is machine data, uses
    each platform's cache folder instead).
    """
    env = os.environ if environ is None else environ
    named = env.get(CONFIG_ENV, "").strip()
    if named:
        return Path(named).expanduser(), CONFIG_ENV
    xdg = env.get("XDG_CONFIG_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "composer" / "config.toml", "XDG_CONFIG_HOME"
    return Path.home() / ".config" / "composer" / "config.toml", "default"


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read and check the config file (``path``, else :func:`config_path`).

    A missing file at the usual place is an empty config; a missing file named by
    ``COMPOSER_CONFIG`` (or ``path``), unreadable TOML, an unknown or wrong key, or a key-looking
    field raise :class:`~composer.errors.EnvironmentProblem` (exit 3) naming ``file:line`` and the fix.
    """
    if path is not None:
        file, how = Path(path), "argument"
    else:
        file, how = config_path(environ)
    if not file.exists():
        if how in (CONFIG_ENV, "argument"):
            raise EnvironmentProblem(
                f"{file}: no such config file ({how} names it); create it (see docs/configuration.md) "
                f"or unset {CONFIG_ENV}"
            )
        return LoadedConfig(Config(), file, False, how)
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _problem(
            file, [(None, "", f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")]
        ) from None
    except OSError as exc:
        raise _problem(file, [(None, "", f"cannot be read ({exc.strerror})")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_problem(file, exc) from None
    lines = _key_lines(text)
    secrets = [
        (
            _line(lines, loc),
            _dotted(loc),
            f"a key-looking field is not allowed in the config file; remove it: {_KEYS_HINT}",
        )
        for loc in _secret_fields(data)
    ]
    if secrets:
        raise _problem(file, secrets)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = tuple(str(p) for p in error["loc"])
            problems.append((_line(lines, loc), _dotted(loc), _message(dict(error), loc)))
        raise _problem(file, problems) from None
    return LoadedConfig(config, file, True, how, lines)


def _problem(file: Path, problems: list[tuple[int | None, str, str]]) -> EnvironmentProblem:
    text = []
    # In file order, so the first line to fix comes first; unlocated ones last.
    for line, where, message in sorted(problems, key=lambda p: (p[0] is None, p[0] or 0)):
        location = f"{file}:{line}" if line else str(file)
        text.append(f"{location}: {where + ': ' if where else ''}{message}")
    text.append(
        f"fix the config file (docs/configuration.md lists every key), or point {CONFIG_ENV} at another file"
    )
    return EnvironmentProblem("\n".join(text))


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _toml_problem(file: Path, exc: tomllib.TOMLDecodeError) -> EnvironmentProblem:
    message = str(exc)
    match = _TOML_AT.search(message)
    where = str(file)
    if match:
        where += f":{match.group(1)}:{match.group(2)}"
        message = message[: match.start()]
    hint = ""
    if message.startswith("Invalid value"):
        hint = ' (text needs quotes: backend = "gemini")'
    elif "twice" in message:
        hint = " (each table and key may appear once; merge them)"
    return EnvironmentProblem(
        f"{where}: not valid TOML: {message}{hint}\n"
        f"fix the config file (docs/configuration.md shows one), or point {CONFIG_ENV} at another file"
    )


def _secret_fields(data: Any, loc: Loc = ()) -> Iterator[Loc]:
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        here = (*loc, str(key))
        if loc[-1:] == ("prices",):
            continue  # model ids, not field names
        if _SECRET_NAME.search(str(key)):
            yield here
        else:
            yield from _secret_fields(value, here)


def _dotted(loc: Loc) -> str:
    return ".".join(loc)


def _line(lines: dict[Loc, int], loc: Loc) -> int | None:
    # The deepest part of the path written in the file: a wrong table is reported at its header.
    for depth in range(len(loc), 0, -1):
        line = lines.get(tuple(loc[:depth]))
        if line is not None:
            return line
    return None


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY_PART = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_-]+)\s*')


def _split_key(text: str) -> Loc | None:
    """``backends. "gemini" .model`` -> ("backends", "gemini", "model"); None if not a plain key."""
    parts: list[str] = []
    pos = 0
    while True:
        match = _KEY_PART.match(text, pos)
        if not match:
            return None
        part = match.group(1)
        parts.append(part[1:-1] if part[0] in "\"'" else part)
        pos = match.end()
        if pos == len(text):
            return tuple(parts)
        if text[pos] != ".":
            return None
        pos += 1


def _key_lines(text: str) -> dict[Loc, int]:
    """The line of each table header and key, by a simple scan (the file is valid TOML already).

    Good enough for the small files this is for: multi-line strings and arrays are not
    followed, so a key inside one can be misplaced; keys of an inline table on one line
    (``prices = {...}``) get that line.
    """
    lines: dict[Loc, int] = {}
    table: Loc = ()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("[["):
            continue
        header = _HEADER.match(line)
        if header:
            loc = _split_key(header.group(1))
            if loc is not None:
                table = loc
                for depth in range(1, len(loc) + 1):
                    lines.setdefault(loc[:depth], number)
            continue
        key, sep, rest = line.partition("=")
        loc = _split_key(key.strip()) if sep else None
        if loc is None:
            continue
        full = (*table, *loc)
        for depth in range(len(table) + 1, len(full) + 1):
            lines.setdefault(full[:depth], number)
        if rest.strip().startswith("{"):
            for inner in re.finditer(r'("(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_-]+)\s*=', rest):
                name = inner.group(1)
                lines.setdefault((*full, name[1:-1] if name[0] in "\"'" else name), number)
    return lines


def _allowed(loc: Loc) -> list[str]:
    model: type[BaseModel] | None = Config
    for part in loc[:-1]:
        if model is None:
            return []
        info = model.model_fields.get(part)
        annotation = info.annotation if info else None
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return sorted(model.model_fields) if model else []


def _message(error: dict[str, Any], loc: Loc) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed(loc)
        if loc[:1] == ("backends",) and len(loc) == 2:
            tables = ", ".join(f"[backends.{name}]" for name in allowed)
            if loc[1] == "local":
                return f"local has no settings here (no address, rate limit or price); tables: {tables}"
            close = difflib.get_close_matches(loc[-1], allowed, n=1)
            guess = f" (did you mean [backends.{close[0]}]?)" if close else ""
            return f"no backend {loc[1]!r}{guess}; tables: {tables}"
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key {loc[-1]!r}{guess}; allowed here: {', '.join(allowed)}"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"expected a table here (got {value!r}); write it as [{'.'.join(loc)}] with keys under it"
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    return f"{msg} (got {value!r})"


# -- effective settings -------------------------------------------------------------------------


class Setting(_Frozen):
    """One setting's value and where it came from."""

    value: Any = None
    source: str = "default"
    note: str = Field(default="", description="What the value means when it is None (the backend's own...).")

    @property
    def given(self) -> bool:
        """True when the command line or the config file set it (rather than a default)."""
        return self.source == "command line" or self.source.startswith("config ")

    def shown(self) -> str:
        if self.value is None:
            return self.note or "none"
        if isinstance(self.value, dict):
            return ", ".join(f"{k} = {v:g} USD/s" for k, v in self.value.items()) or "none"
        if isinstance(self.value, float):
            return f"{self.value:g}"
        return str(self.value)


class Effective(_Frozen):
    """Every setting a render would use, each with its source; nothing secret in it."""

    config_file: str
    config_found: bool
    backend: Setting
    model: Setting
    base_url: Setting
    proxy: Setting
    concurrency: Setting
    rpm: Setting
    poll_interval_s: Setting
    budget_usd: Setting
    ambiguous_retries: Setting
    workers: Setting
    cache_dir: Setting
    prices: Setting = Field(description="Price overrides (USD/s by model id) for the effective backend.")
    model_id: str = Field(description="The model id the model alias stands for on the effective backend.")
    price_per_s: Setting = Field(description="USD per generated second of that model, after overrides.")
    keys: dict[str, bool] = Field(description="Each key variable, and whether it is set (never its value).")

    def given(self, name: str) -> Any:
        """The value to pass on when the command line or config set it, else None (the callee's default).

        The environment and the storyboard are left to the code that already reads them, so
        their precedence holds exactly as it does without a config file.
        """
        setting: Setting = getattr(self, name)
        return setting.value if setting.given else None

    def rows(self) -> list[tuple[str, str, str]]:
        """(setting, value, source) for a table."""
        rows = [(name, getattr(self, name).shown(), getattr(self, name).source) for name in SETTINGS]
        if self.model_id != self.model.value:
            rows[1] = ("model", f"{self.model.value} ({self.model_id})", self.model.source)
        price = self.price_per_s
        shown = f"{price.value:g} USD/s" if price.value is not None else price.note
        return [
            *rows,
            ("price_per_s", shown, price.source),
            ("prices", self.prices.shown(), self.prices.source),
        ]

    def text(self) -> str:
        """The table ``composer config`` prints: setting, value, source; then the key variables."""
        found = "" if self.config_found else "  (not found: nothing from a config file)"
        lines = [f"config file: {self.config_file}{found}", ""]
        rows = [("setting", "value", "source"), *self.rows()]
        name_w = max(len(r[0]) for r in rows)
        value_w = min(48, max(len(r[1]) for r in rows))
        lines.extend(f"{n:<{name_w}}  {v:<{value_w}}  {s}" for n, v, s in rows)
        lines += ["", "keys (read from the environment only; values are never shown):"]
        lines.extend(
            f"  {var}: {'set (from environment)' if on else 'not set'}" for var, on in self.keys.items()
        )
        return "\n".join(lines)


def _redact(url: str) -> str:
    """A URL without its user:password part nor the values of key-like query parameters, for display."""
    return redact_url(url)


def _first_env(env: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return name, value
    return None


def effective_settings(
    cli_values: Mapping[str, Any],
    storyboard: str | Path | Source | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config: LoadedConfig | None = None,
) -> Effective:
    """The settings a command would use, each with its source.

    ``cli_values`` maps names in :data:`SETTINGS` to what the command line gave (None: not
    given). ``storyboard`` (the path of a storyboard or a ``plan.json``, or the file read
    already by :func:`~composer.plan.io.read_source`) adds the file's say on backend and
    model; a bad storyboard raises its usual located StoryboardError. The config file is read
    here (``config`` passes one already read).
    """
    unknown = set(cli_values) - set(SETTINGS)
    if unknown:
        raise ValueError(f"not settings: {', '.join(sorted(unknown))}; known: {', '.join(SETTINGS)}")
    env = os.environ if environ is None else environ
    loaded = config if config is not None else load_config(environ=env)
    sources = _Sources({k: v for k, v in cli_values.items() if v is not None}, loaded, env)
    said = _from_storyboard(storyboard) if storyboard is not None else _Said()
    backend = _backend(sources, said)
    name = str(backend.value)
    model = _model(sources, said, name)
    caps = _capabilities(name, str(model.value))
    prices, model_id, price = _prices(sources, name, str(model.value), caps)
    return Effective(
        config_file=str(loaded.path),
        config_found=loaded.found,
        backend=backend,
        model=model,
        base_url=_base_url(sources, name),
        proxy=_proxy(sources),
        concurrency=_concurrency(sources),
        rpm=_rpm(sources, name, caps),
        poll_interval_s=_poll_interval(sources, caps),
        budget_usd=sources.pick(
            "budget_usd", sources.default("budget_usd", loaded.config.defaults.budget_usd), note="no limit"
        ),
        ambiguous_retries=_ambiguous_retries(sources),
        workers=sources.pick(
            "workers",
            sources.default("workers", loaded.config.defaults.workers),
            (min(2, os.cpu_count() or 1), "default"),
        ),
        cache_dir=_cache_dir(sources),
        prices=prices,
        model_id=model_id,
        price_per_s=price,
        keys=_keys(env),
    )


Candidate = tuple[Any, str]  # (value or None, where it would come from)


@dataclass(frozen=True)
class _Sources:
    """What the command line, the config file and the environment say; each setting picks from them."""

    cli: Mapping[str, Any]
    loaded: LoadedConfig
    env: Mapping[str, str]

    def pick(self, name: str, *candidates: Candidate, note: str = "") -> Setting:
        """The command line's value, else the first candidate with one, else None (``note`` says what that means)."""
        if name in self.cli:
            return Setting(value=self.cli[name], source="command line")
        for value, source in candidates:
            if value is not None:
                return Setting(value=value, source=source)
        return Setting(value=None, source="default", note=note)

    def default(self, key: str, value: Any) -> Candidate:
        """A ``[defaults]`` key's value, with its line in the config file."""
        return value, self.loaded.source("defaults", key)

    def table(self, backend: str, key: str) -> Candidate:
        """A ``[backends.NAME]`` key's value, with its line in the config file."""
        return getattr(self.loaded.config.backend(backend), key), self.loaded.source("backends", backend, key)

    def environment(self, *names: str, expand: bool = False) -> list[Candidate]:
        """The first of these variables that is set, as a candidate (none when none is)."""
        found = _first_env(self.env, names)
        if found is None:
            return []
        value = str(Path(found[1]).expanduser()) if expand else found[1]
        return [(value, f"environment {found[0]}")]


@dataclass(frozen=True)
class _Said:
    """What a storyboard file (or a plan.json) says about backend and model, where it says it."""

    backend: Setting | None = None
    model: Setting | None = None

    def candidates(self, name: str) -> list[Candidate]:
        said: Setting | None = getattr(self, name)
        return [(said.value, said.source)] if said is not None else []


def _from_storyboard(storyboard: str | Path | Source) -> _Said:
    source = storyboard if isinstance(storyboard, Source) else read_source(storyboard)
    if source.plan is not None:
        where = f"plan {source.path}"
        generation = source.plan.generation
        return _Said(
            Setting(value=generation.backend, source=where), Setting(value=generation.model, source=where)
        )
    assert source.storyboard is not None  # a Source holds one or the other
    loaded = source.storyboard
    found: dict[str, Setting] = {}
    for name in ("backend", "model"):
        position = loaded.positions.get(("generation", name))
        if position:  # only what the file writes: the model's fill-ins must not hide the config
            value = getattr(loaded.storyboard.generation, name)
            found[name] = Setting(value=value, source=f"storyboard {source.path}:{position[0]}")
    return _Said(**found)


def _backend(sources: _Sources, said: _Said) -> Setting:
    """command line > storyboard file > config > the storyboard model's own default."""
    return sources.pick(
        "backend",
        *said.candidates("backend"),
        sources.default("backend", sources.loaded.config.defaults.backend),
        ("local", "default"),
    )


def _model(sources: _Sources, said: _Said, backend: str) -> Setting:
    """command line > storyboard file > [backends.NAME] > [defaults] > "fast"."""
    return sources.pick(
        "model",
        *said.candidates("model"),
        sources.table(backend, "model"),
        sources.default("model", sources.loaded.config.defaults.model),
        ("fast", "default"),
    )


def _base_url(sources: _Sources, backend: str) -> Setting:
    """command line > the backend's variable > [backends.NAME]; redacted for display."""
    variable = BASE_URL_VARIABLES.get(backend)
    base_url = sources.pick(
        "base_url",
        *(sources.environment(variable) if variable else []),
        sources.table(backend, "base_url"),
        note="the backend's own address" if backend in API_BACKENDS else f"not used by {backend}",
    )
    return _redacted(base_url)


def _proxy(sources: _Sources) -> Setting:
    """command line > the proxy variables httpx reads > [defaults]; redacted for display."""
    proxy = sources.pick(
        "proxy",
        *sources.environment(*PROXY_VARIABLES),
        sources.default("proxy", sources.loaded.config.defaults.proxy),
        note="none (direct)",
    )
    return _redacted(proxy)


def _redacted(setting: Setting) -> Setting:
    # Whatever the source (the command line too: `composer config --base-url` must not echo a
    # key); a value from the environment is never passed on (see Effective.given), the backend
    # or httpx reads the variable itself.
    if isinstance(setting.value, str):
        return setting.model_copy(update={"value": _redact(setting.value)})
    return setting


def _concurrency(sources: _Sources) -> Setting:
    from composer.jobs.remote import JobSettings  # the job machinery, only for its default

    return sources.pick(
        "concurrency",
        sources.default("concurrency", sources.loaded.config.defaults.concurrency),
        (JobSettings().concurrency, "default"),
    )


def _ambiguous_retries(sources: _Sources) -> Setting:
    """command line > $COMPOSER_AMBIGUOUS_RETRIES > [defaults] > 1.

    The variable is shown here but read by the job machinery itself (:meth:`Effective.given`
    passes on only the command line's or the file's value), as it is without a config file.
    """
    from composer.jobs.remote import AMBIGUOUS_RETRIES_ENV  # the job machinery, only for its name

    return sources.pick(
        "ambiguous_retries",
        *sources.environment(AMBIGUOUS_RETRIES_ENV),
        sources.default("ambiguous_retries", sources.loaded.config.defaults.ambiguous_retries),
        (1, "default"),
    )


def _rpm(sources: _Sources, backend: str, caps: Capabilities | None) -> Setting:
    return sources.pick(
        "rpm",
        sources.table(backend, "rpm"),
        sources.default("rpm", sources.loaded.config.defaults.rpm),
        note=(
            f"the backend's ({caps.requests_per_minute}/min on the official service)"
            if caps is not None and caps.requests_per_minute
            else "no limit"
        ),
    )


def _poll_interval(sources: _Sources, caps: Capabilities | None) -> Setting:
    return sources.pick(
        "poll_interval_s",
        sources.default("poll_interval_s", sources.loaded.config.defaults.poll_interval_s),
        note=f"the backend's ({caps.poll_interval_s:g} s)" if caps is not None else "the backend's",
    )


def _cache_dir(sources: _Sources) -> Setting:
    """command line > COMPOSER_CACHE > [defaults] > the platform's user cache folder."""
    written = sources.loaded.config.defaults.cache_dir
    cache_dir = sources.pick(
        "cache_dir",
        *sources.environment(CACHE_ENV, expand=True),
        sources.default("cache_dir", str(Path(written).expanduser()) if written else None),
        note="the platform's user cache folder + composer",
    )
    if cache_dir.value is None:
        from composer.jobs.cache import default_cache_dir  # the cache's own rule, not a copy

        cache_dir = cache_dir.model_copy(update={"value": str(default_cache_dir())})
    return cache_dir


def _prices(
    sources: _Sources, backend: str, model: str, caps: Capabilities | None
) -> tuple[Setting, str, Setting]:
    """The ``[backends.NAME] prices`` (by model id), the model's id, and its price per second.

    The price is the one :meth:`~composer.backends.base.Capabilities.with_prices` gives the
    render; its source is the config line that wins there, else the backend's list.
    """
    written = sources.loaded.config.backend(backend).prices
    resolve = caps.resolve_model if caps is not None else str
    resolved = {resolve(k): v for k, v in written.items()}
    prices = (
        Setting(value=resolved, source=sources.loaded.source("backends", backend, "prices"))
        if resolved
        else Setting(value=None, source="default", note="the backend's list prices")
    )
    model_id = resolve(model)
    priced = caps.with_prices(written) if caps is not None else None
    lines = [k for k in written if resolve(k) == model_id]
    if lines:
        value = priced.price_per_s[model_id] if priced is not None else resolved[model_id]
        price = Setting(value=value, source=sources.loaded.source("backends", backend, "prices", lines[-1]))
    elif priced is not None and model_id in priced.price_per_s:
        price = Setting(value=priced.price_per_s[model_id], source=f"default ({backend} list price)")
    elif caps is not None and not caps.needs_key:
        price = Setting(value=0.0, source=f"default ({backend} costs nothing)")
    else:
        price = Setting(value=None, source="default", note="not known (estimates count it as 0)")
    return prices, model_id, price


def _keys(env: Mapping[str, str]) -> dict[str, bool]:
    """Each key variable of the backend table, and whether it is set (never its value)."""
    return {var: bool(env.get(var, "").strip()) for names in KEY_VARIABLES.values() for var in names}


def _capabilities(name: str, model: str) -> Capabilities | None:
    # None for an unknown backend: the pipeline reports that, located in the storyboard.
    from composer.backends import registry  # the backends' modules, only for their declared data

    try:
        return registry.capabilities(name, model)
    except EnvironmentProblem:
        return None
