"""The one base of composer's data models: frozen pydantic models that refuse unknown fields.

Every record composer reads or writes (plans, takes, manifests, reports, checks, settings)
derives from :class:`Frozen`: a value once built cannot change under a reader, and a file
with a misspelt or unknown key is refused naming it instead of being half read. A model
that needs more (strict types for TOML, stripped strings for a storyboard) adds to the
config in its own class; pydantic merges it with this one. What does not live here: any
model itself, or dataclasses for values that never cross a file or a process boundary.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Immutable; unknown fields are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")
