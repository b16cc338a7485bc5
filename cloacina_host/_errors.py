"""The host's errors. All derive from the kit's ``CloacinaError``; each carries its exit status.

Exit statuses (documented in ``cloacina-ctl --help``): 0 success, 1 user error (bad input,
validation), 2 infrastructure failure (database unreachable), 3 not found.
"""

from __future__ import annotations

from cloacina_workflow import CloacinaError

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_INFRASTRUCTURE = 2
EXIT_NOT_FOUND = 3


class HostError(CloacinaError):
    """Root of the host's own errors. ``exit_status`` is what ``cloacina-ctl`` exits with."""

    exit_status: int = EXIT_USER_ERROR


class UsageError(HostError):
    """The user's input is wrong (a bad option value, invalid JSON...)."""


class PluginLoadError(HostError):
    """A plugin could not be loaded or returned something unusable.

    ``distribution`` and ``entry_point`` say where it came from; ``__cause__`` holds the original error.
    """

    def __init__(self, message: str, *, distribution: str, entry_point: str) -> None:
        super().__init__(message)
        self.distribution = distribution
        self.entry_point = entry_point


class WorkflowConflictError(HostError):
    """Two sources offer the same ``package::workflow``; ``sources`` names them."""

    def __init__(self, message: str, *, name: str, sources: list[str]) -> None:
        super().__init__(message)
        self.name = name
        self.sources = sources


class WorkflowNotFoundError(HostError):
    """No workflow matches the name given; ``known`` lists the ones that exist."""

    exit_status = EXIT_NOT_FOUND

    def __init__(self, message: str, *, name: str, known: list[str]) -> None:
        super().__init__(message)
        self.name = name
        self.known = known


class AmbiguousWorkflowError(HostError):
    """A bare workflow name matches several packages; ``candidates`` lists ``package::workflow``."""

    def __init__(self, message: str, *, name: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.name = name
        self.candidates = candidates


class NotFoundError(HostError):
    """An execution, package or other object named by the user does not exist."""

    exit_status = EXIT_NOT_FOUND


class StorageError(HostError):
    """The database failed or cannot be reached. The message masks any password in the URL.

    ``permanent``: trying again cannot help (a wrong password, an unknown user or database).
    """

    exit_status = EXIT_INFRASTRUCTURE
    permanent: bool = False


def shown(value: object, limit: int = 80) -> str:
    """``value`` quoted for a message (``repr``: control characters visible), cut to about ``limit`` chars."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]
