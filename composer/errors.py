"""The one error tree of composer.

Every error a user can meet is a :class:`ComposerError`; its message says what went wrong
and what to do next. The CLI maps each branch to an exit code and never shows a traceback
for them.

::

    ComposerError                      exit 1 unless noted
    ├── StoryboardError                exit 2: the storyboard file is wrong (holds located issues)
    ├── PlanError                      exit 2: the storyboard cannot be planned on this backend
    ├── EnvironmentProblem             exit 3: no ffmpeg, no key, unwritable folder, ...
    ├── GenerationError                a backend could not make a clip
    │   ├── RetryableError             408, 429, 5xx, network: the job runner tries again
    │   ├── TerminalError              400/401/403/404, a failed operation: retrying will not help
    │   │   └── ModelRefused           the service refused the model or what was asked of it
    │   │                              (unknown id, 400 to a create): the fallback model may work
    │   ├── ContentFiltered            the service's safety filter refused the request (not charged)
    │   └── BudgetExceeded             the next submission would pass --budget
    ├── MediaError                     ffmpeg failed or a file is not the video it should be
    └── Interrupted                    Ctrl-C: stopped cleanly, exit 130

What lives here: the classes and the exit codes. What does not: formatting for a terminal
(``cli.py``) or the decision to retry (``jobs/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ComposerError(Exception):
    """Base of every error composer raises on purpose."""

    exit_code = 1
    #: The manifest a failed render still wrote, so the CLI can name its possible duplicate
    #: charges and the paid work left by earlier runs (a failed render's money is real too).
    manifest_path: Path | None = None


@dataclass(frozen=True)
class Issue:
    """One located problem in an input file."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class StoryboardError(ComposerError):
    """The storyboard file is malformed; ``issues`` lists every located problem."""

    exit_code = 2

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class PlanError(ComposerError):
    """The storyboard is valid but cannot be cut into segments the backend can make.

    ``field`` names the storyboard field to change (``scenes[2].duration_s``), so the
    loader can point at its line.
    """

    exit_code = 2

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class EnvironmentProblem(ComposerError):
    """Something outside composer is missing: ffmpeg, a key, a writable folder."""

    exit_code = 3


class GenerationError(ComposerError):
    """A backend failed to produce a clip."""


class RetryableError(GenerationError):
    """A transient failure (rate limit, server error, network); the job runner retries it.

    ``retry_after_s`` is the wait the service asked for (``Retry-After``, ``retry-after-ms``
    or Google's ``RetryInfo.retryDelay``), if any. ``reached_server`` is True when the request
    may have been received before it failed (a 5xx, a dropped answer), so retrying a create
    may start a second, paid, operation.
    """

    def __init__(
        self, message: str, retry_after_s: float | None = None, *, reached_server: bool = True
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.reached_server = reached_server


class TerminalError(GenerationError):
    """A failure that retrying will not fix (bad key, unknown model, refused input)."""


class ModelRefused(TerminalError):
    """The service refused the model itself or the request it was given (an unknown or retired
    id, a 400 to a create or an extension): the storyboard's ``fallback_model`` may succeed where
    retrying would not. A bad key, a denied permission or a failed operation are not this."""


class ContentFiltered(GenerationError):
    """The service's safety filter blocked the result; not charged, not retried blindly.

    ``reason`` is the service's own words (``raiMediaFilteredReasons``, a moderation message).
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class BudgetExceeded(GenerationError):
    """Submitting the next operation would pass the run's budget; nothing more was submitted."""


class MediaError(ComposerError):
    """ffmpeg failed, or a file is not the video it claims to be."""


class Interrupted(ComposerError):
    """The user stopped the run (Ctrl-C); nothing half-written was left behind."""

    exit_code = 130
