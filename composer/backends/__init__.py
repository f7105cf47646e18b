"""Backends: one small interface (``base.py``), the embedded ``local`` generator, and a registry.

What lives here: :data:`BACKENDS`, the one table of every backend a storyboard or ``--backend``
may name: where its code is (module and class), what it is, the environment variables its
key and its address come from, and what it can do that the code around it must know
(:class:`BackendSpec`). The registry (``registry.py``), the config (``config.py``) and the
command line read it; nothing else spells a backend's name. What does not: any backend's
code. This module imports nothing, so reading the table never imports the HTTP stack.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackendSpec:
    """One backend, as data."""

    name: str
    #: The module that holds it, imported only when the backend is used.
    module: str
    #: The class :func:`~composer.backends.registry.create` makes.
    cls: str
    description: str
    #: What the module's capabilities are called: the declared ``CAPABILITIES``, or a function
    #: of the model (id or alias) for a backend whose model families differ.
    capabilities: str = "CAPABILITIES"
    #: The variables its key is read from, first set wins (empty: it needs none).
    key_variables: tuple[str, ...] = ()
    #: How the user gives it a key, for messages.
    key_hint: str = ""
    #: The variable its base URL is read from (None: it has no address).
    base_url_variable: str | None = None
    #: It calls a service: operations, retries and costs are counted (and a config file
    #: may give it a ``[backends.NAME]`` table with an address, a rate limit and prices).
    calls_service: bool = True
    #: It writes its takes straight in the output's encoding, given the keyframes where the
    #: output's crossfades fall (and the storyboard's drift), so they are assembled without a
    #: re-encode.
    encodes_output: bool = False


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec(
            "local",
            "composer.backends.local",
            "LocalBackend",
            "embedded procedural generator (default; no key, no network)",
            calls_service=False,
            encodes_output=True,
        ),
        BackendSpec(
            "gemini",
            "composer.backends.gemini",
            "GeminiBackend",
            "Veo 3.1 through the Gemini API (GEMINI_API_KEY)",
            key_variables=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
            key_hint="GEMINI_API_KEY",
            base_url_variable="GOOGLE_GEMINI_BASE_URL",
        ),
        BackendSpec(
            "vertex",
            "composer.backends.vertex",
            "VertexBackend",
            "Veo 3.1 through Vertex AI (GOOGLE_CLOUD_PROJECT + an access token or gcloud ADC)",
            key_variables=("GOOGLE_OAUTH_ACCESS_TOKEN", "VERTEX_ACCESS_TOKEN"),
            key_hint="GOOGLE_OAUTH_ACCESS_TOKEN or gcloud Application Default Credentials",
            base_url_variable="GOOGLE_VERTEX_BASE_URL",
        ),
        BackendSpec(
            "openai",
            "composer.backends.openai",
            "OpenAIBackend",
            "the OpenAI Videos API: Sora 2, or Veo behind an OpenAI-compatible relay (OPENAI_API_KEY)",
            capabilities="capabilities_for",
            key_variables=("OPENAI_API_KEY",),
            key_hint="OPENAI_API_KEY",
            base_url_variable="OPENAI_BASE_URL",
        ),
        BackendSpec(
            "relay",
            "composer.backends.relay",
            "RelayBackend",
            "a Veo relay with its own JSON protocol (COMPOSER_RELAY_BASE_URL + COMPOSER_RELAY_API_KEY)",
            key_variables=("COMPOSER_RELAY_API_KEY",),
            key_hint="COMPOSER_RELAY_API_KEY",
            base_url_variable="COMPOSER_RELAY_BASE_URL",
        ),
    )
}

#: The backends that call a service (those a config file may configure).
API_BACKENDS: tuple[str, ...] = tuple(name for name, spec in BACKENDS.items() if spec.calls_service)


def calls_service(name: str) -> bool:
    """Whether backend ``name`` calls a service (an unknown name, from an old file, is taken to)."""
    spec = BACKENDS.get(name)
    return spec is None or spec.calls_service


def encodes_output(name: str) -> bool:
    """Whether backend ``name`` writes its takes in the output's encoding (see :class:`BackendSpec`)."""
    spec = BACKENDS.get(name)
    return spec is not None and spec.encodes_output
