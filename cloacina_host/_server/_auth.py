"""Who may call what: API keys (``Authorization: Bearer KEY``) and one rule per route, failing closed.

``RULES`` maps every route's name to the least role it needs, or to ``PUBLIC``. ``authorize`` runs
before every route of the API (an application-wide dependency): a route whose name has no rule is
refused (403), whatever the key; a missing, malformed, unknown or revoked key is 401; a key whose role
is below the rule is 403. The key's tenant is the only tenant a request sees: its routes look objects
up in that tenant alone, so another tenant's are not found (404).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from fastapi import Request
from starlette.routing import BaseRoute

from .._registry._api_keys import ApiKey, ApiKeyStore, Role

__all__ = ["PUBLIC", "RULES", "AuthError", "Principal", "authorize", "principal"]

PUBLIC: Final = "public"

#: route name -> the least role that may call it (``PUBLIC``: no key needed). A route not listed is refused.
RULES: dict[str, Role | str] = {
    "health": PUBLIC,
    "ready": PUBLIC,
    "metrics": PUBLIC,
    "whoami": Role.READ,
    "packages.list": Role.READ,
    "packages.show": Role.READ,
    "packages.upload": Role.WRITE,
    "packages.activate": Role.WRITE,
    "packages.deactivate": Role.WRITE,
    "packages.remove": Role.ADMIN,
    "workflows.list": Role.READ,
    "executions.list": Role.READ,
    "executions.show": Role.READ,
    "executions.logs": Role.READ,
    "executions.submit": Role.WRITE,
    "executions.cancel": Role.WRITE,
    "executions.retry": Role.WRITE,
    "executions.rerun": Role.WRITE,
    "executions.events": Role.READ,
    "events": Role.READ,
    "schedules.list": Role.READ,
    "schedules.pause": Role.WRITE,
    "schedules.resume": Role.WRITE,
    "triggers.list": Role.READ,
    "triggers.pause": Role.WRITE,
    "triggers.resume": Role.WRITE,
    "triggers.fire": Role.WRITE,
    "api_keys.list": Role.ADMIN,
    "api_keys.create": Role.ADMIN,
    "api_keys.revoke": Role.ADMIN,
    "tenants.list": Role.READ,
    "tenants.policy": Role.READ,
    "tenants.set_policy": Role.ADMIN,
    "trust.list": Role.READ,
    "trust.add": Role.ADMIN,
    "trust.remove": Role.ADMIN,
}


class AuthError(Exception):
    """A request refused for its key: ``status`` 401 (no valid key) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Principal:
    """The caller: its key, hence its tenant and role."""

    key: ApiKey

    @property
    def tenant(self) -> str:
        return self.key.tenant

    @property
    def role(self) -> Role:
        return self.key.role


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else ""
    return request.headers.get("x-api-key")


def _rule(request: Request) -> Role | str | None:
    route = request.scope.get("route")
    name = getattr(route, "name", None) if isinstance(route, BaseRoute) else None
    return RULES.get(name) if isinstance(name, str) else None


async def authorize(request: Request) -> None:
    """The application-wide check: the route's rule against the request's key (see the module's docstring)."""
    rule = _rule(request)
    if rule is None:
        raise AuthError(403, f"{request.method} {request.url.path} has no access rule, so it is refused for every key.")
    if rule == PUBLIC:
        return
    assert isinstance(rule, Role)
    token = _token(request)
    if not token:
        raise AuthError(
            401,
            "No API key. Send one as `Authorization: Bearer KEY` (create it with "
            "`cloacina-ctl api-keys create --tenant T --role read`).",
        )
    store: ApiKeyStore = request.app.state.api_keys
    key = await asyncio.to_thread(store.authenticate, token)
    if key is None:
        raise AuthError(
            401, "The API key is not valid (unknown, mistyped or revoked). List keys: cloacina-ctl api-keys list"
        )
    if not key.role.allows(rule):
        raise AuthError(
            403,
            f"API key {key.id} has role {key.role.value}; {request.method} {request.url.path} needs {rule.value} "
            f"or above.",
        )
    request.state.principal = Principal(key)


async def principal(request: Request) -> Principal:
    """The authorized caller of a route that needs a key (``authorize`` has run); async, so that FastAPI
    calls it on the event loop instead of handing every request to a worker thread for it."""
    found = getattr(request.state, "principal", None)
    if not isinstance(found, Principal):  # a route with a PUBLIC rule asked for a caller: refuse, never guess
        raise AuthError(401, "This route needs an API key.")
    return found
