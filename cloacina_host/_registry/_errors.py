"""The registry's errors: each names the package, the rule broken and what to do."""

from __future__ import annotations

from .._errors import NotFoundError, UsageError


class RegistryError(UsageError):
    """A registry operation was refused (exit status 1); nothing was changed."""


class PackageNotFoundError(NotFoundError):
    """No registered package (or version) by that name in the tenant (exit status 3)."""

    def __init__(self, message: str, *, name: str, version: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.version = version


class TenantError(UsageError):
    """A tenant name that is not a safe identifier, or a tenant that was never created (exit status 1)."""

    def __init__(self, message: str, *, tenant: str) -> None:
        super().__init__(message)
        self.tenant = tenant
