"""Backends by name, with friendly errors for unknown names and missing keys or extras.

What lives here: :data:`KNOWN` (the names a storyboard or ``--backend`` may use),
:func:`capabilities` (declared data, no connection, no key needed) and :func:`create` (a ready
instance: the local generator, or an API backend that checks its key and address now). What
does not: the backends themselves; each API backend's module is imported only when it is
named, so ``local`` runs never import the HTTP stack.
"""

from __future__ import annotations

from composer.backends.base import Backend, Capabilities
from composer.backends.remote import RemoteBackend
from composer.errors import EnvironmentProblem

#: Names a storyboard or ``--backend`` may use, and what each one is.
KNOWN = {
    "local": "embedded procedural generator (default; no key, no network)",
    "gemini": "Veo 3.1 through the Gemini API (GEMINI_API_KEY)",
    "vertex": "Veo 3.1 through Vertex AI (GOOGLE_CLOUD_PROJECT + an access token or gcloud ADC)",
    "openai": "the OpenAI Videos API: Sora 2, or Veo behind an OpenAI-compatible relay (OPENAI_API_KEY)",
    "relay": "a Veo relay with its own JSON protocol (COMPOSER_RELAY_BASE_URL + COMPOSER_RELAY_API_KEY)",
}


def capabilities(name: str, model: str | None = None) -> Capabilities:
    """The declared capabilities of backend ``name`` (no connection is made, no key is needed).

    ``model`` (an id or an alias such as ``quality``) matters only to ``openai``, whose
    families (Sora 2, Sora 2 Pro, Veo behind a relay) differ; the others ignore it.
    """
    if name == "local":
        from composer.backends.local import CAPABILITIES as local

        return local
    if name == "gemini":
        from composer.backends.gemini import CAPABILITIES as gemini

        return gemini
    if name == "vertex":
        from composer.backends.vertex import CAPABILITIES as vertex

        return vertex
    if name == "openai":
        from composer.backends.openai import capabilities_for

        return capabilities_for(model)
    if name == "relay":
        from composer.backends.relay import CAPABILITIES as relay

        return relay
    raise EnvironmentProblem(_unknown(name))


def create(
    name: str, *, base_url: str | None = None, proxy: str | None = None, model: str | None = None
) -> Backend | RemoteBackend:
    """A ready backend instance; API backends raise EnvironmentProblem now for a missing key or address.

    The options go to the API backends; ``local`` ignores them.
    """
    if name == "local":
        from composer.backends.local import LocalBackend

        return LocalBackend()
    if name == "gemini":
        from composer.backends.gemini import GeminiBackend

        return GeminiBackend(base_url=base_url, proxy=proxy, model=model)
    if name == "vertex":
        from composer.backends.vertex import VertexBackend

        return VertexBackend(base_url=base_url, proxy=proxy, model=model)
    if name == "openai":
        from composer.backends.openai import OpenAIBackend

        return OpenAIBackend(base_url=base_url, proxy=proxy, model=model)
    if name == "relay":
        from composer.backends.relay import RelayBackend

        return RelayBackend(base_url=base_url, proxy=proxy, model=model)
    raise EnvironmentProblem(_unknown(name))


def _unknown(name: str) -> str:
    known = ", ".join(sorted(KNOWN))
    return f"unknown backend {name!r}; available: {known}"
