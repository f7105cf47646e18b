"""Backends by name, with friendly errors for unknown names and missing extras."""

from __future__ import annotations

from composer.backends.base import Backend, Capabilities
from composer.errors import EnvironmentProblem

#: Names a storyboard or ``--backend`` may use, and what each one is.
KNOWN = {
    "local": "embedded procedural generator (default; no key, no network)",
}


def capabilities(name: str) -> Capabilities:
    """The declared capabilities of backend ``name`` (no connection is made)."""
    if name == "local":
        from composer.backends.local import CAPABILITIES

        return CAPABILITIES
    raise EnvironmentProblem(_unknown(name))


def create(name: str) -> Backend:
    """A ready backend instance."""
    if name == "local":
        from composer.backends.local import LocalBackend

        return LocalBackend()
    raise EnvironmentProblem(_unknown(name))


def _unknown(name: str) -> str:
    known = ", ".join(sorted(KNOWN))
    return f"unknown backend {name!r}; available: {known}"
