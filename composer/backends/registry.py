"""Backends by name, with friendly errors for unknown names and missing keys or extras.

What lives here: :data:`KNOWN` (the names a storyboard or ``--backend`` may use, and what each
is), :func:`capabilities` (declared data, no connection, no key needed) and :func:`create` (a
ready instance: the local generator, or an API backend that checks its key and address now),
both read from the table :data:`composer.backends.BACKENDS`. What does not: the backends
themselves; each one's module is imported only when it is named, so ``local`` runs never
import the HTTP stack.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from composer.backends import BACKENDS, BackendSpec
from composer.backends.base import Backend, Capabilities
from composer.backends.remote import RemoteBackend
from composer.errors import EnvironmentProblem

#: Names a storyboard or ``--backend`` may use, and what each one is.
KNOWN = {name: spec.description for name, spec in BACKENDS.items()}


def capabilities(name: str, model: str | None = None) -> Capabilities:
    """The declared capabilities of backend ``name`` (no connection is made, no key is needed).

    ``model`` (an id or an alias such as ``quality``) matters only to a backend whose model
    families differ (``openai``: Sora 2, Sora 2 Pro, Veo behind a relay); the others ignore it.
    """
    spec = _spec(name)
    declared = getattr(_module(spec), spec.capabilities)
    if isinstance(declared, Capabilities):
        return declared
    found = declared(model)
    assert isinstance(found, Capabilities), f"{spec.module}.{spec.capabilities} returned {found!r}"
    return found


def create(
    name: str, *, base_url: str | None = None, proxy: str | None = None, model: str | None = None
) -> Backend | RemoteBackend:
    """A ready backend instance; API backends raise EnvironmentProblem now for a missing key or address.

    The options go to the backends that call a service; ``local`` has no use for them.
    """
    spec = _spec(name)
    cls = getattr(_module(spec), spec.cls)
    instance: Backend | RemoteBackend = (
        cls(base_url=base_url, proxy=proxy, model=model) if spec.calls_service else cls()
    )
    return instance


def _spec(name: str) -> BackendSpec:
    spec = BACKENDS.get(name)
    if spec is None:
        raise EnvironmentProblem(_unknown(name))
    return spec


def _module(spec: BackendSpec) -> ModuleType:
    return importlib.import_module(spec.module)


def _unknown(name: str) -> str:
    known = ", ".join(sorted(KNOWN))
    return f"unknown backend {name!r}; available: {known}"
