"""The registry's errors: each names the package, the rule broken and what to do."""

from __future__ import annotations

from .._errors import NotFoundError, UsageError
from .._storage._tenants import TenantError  # a tenant is where tables live: storage says which exist

__all__ = ["PackageNotFoundError", "RegistryError", "TenantError"]


class RegistryError(UsageError):
    """A registry operation was refused (exit status 1); nothing was changed."""


class PackageNotFoundError(NotFoundError):
    """No registered package (or version) by that name in the tenant (exit status 3)."""

    def __init__(self, message: str, *, name: str, version: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.version = version
