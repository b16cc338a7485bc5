"""Packaging's errors: both are user errors (exit status 1) and say which file or member is concerned."""

from __future__ import annotations

from pathlib import Path

from .._errors import HostError


class PackagingError(HostError):
    """A project could not be packaged. ``project`` is its directory; ``output`` is the backend's
    captured output when the build backend failed (shown with ``--verbose``)."""

    def __init__(self, message: str, *, project: Path | None = None, output: str | None = None) -> None:
        super().__init__(message)
        self.project = project
        self.output = output


class ArchiveError(HostError):
    """A ``.cloacina`` archive is refused. ``path`` is the archive, ``member`` the zip member (or
    manifest field) at fault, when there is one."""

    def __init__(self, message: str, *, path: str | None = None, member: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.member = member


class SigningError(HostError):
    """A key file cannot be made or read, or an archive cannot be signed (exit status 1). ``path`` is the
    key file concerned, when there is one."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path
