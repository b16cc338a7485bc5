"""API keys of ``cloacina-ctl server``: each carries a tenant and a role; only a hash of its secret is stored.

A key reads ``cloacina_<id>_<secret>``: ``id`` (12 hex digits) names the row, ``secret`` (43 URL-safe
characters, 256 random bits) is checked against the stored sha256 with ``hmac.compare_digest``. The
keys live in the public tenant's database (``api_keys``, beside ``tenants``), whatever their tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from enum import Enum

from cloacina_workflow import DEFAULT_TENANT

from .._errors import NotFoundError, UsageError, shown
from .._storage import Database, open_database
from .._storage import _api_keys as qk
from .._storage._tenants import check_tenant_name, tenant_exists

__all__ = [
    "ApiKey",
    "ApiKeyStore",
    "CreatedKey",
    "Role",
    "create_api_key",
    "list_api_keys",
    "open_key_store",
    "parse_role",
    "revoke_api_key",
]

KEY_PREFIX = "cloacina_"
_ID_LENGTH = 12
NAME_MAX = 200


class Role(str, Enum):
    """What a key may do: ``read`` reads, ``write`` also changes (upload, run, cancel, pause...), ``admin`` all."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.READ: 0, Role.WRITE: 1, Role.ADMIN: 2}


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise UsageError(f"Role {shown(text)} is not one of admin, write, read.") from None


@dataclass(frozen=True)
class ApiKey:
    """A key as listed: never its secret."""

    id: str
    tenant: str
    role: Role
    name: str | None
    created_at: float
    revoked_at: float | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "role": self.role.value,
            "name": self.name,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    token: str  # the whole key: shown once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(row: qk.ApiKeyRow) -> ApiKey:
    return ApiKey(row.id, row.tenant, Role(row.role), row.name, row.created_at, row.revoked_at)


def _main(database_url: str | None, home: str | None, *, read_only: bool = False) -> Database:
    return open_database(database_url, home=home, read_only=read_only)


def create_api_key(
    database_url: str | None, *, home: str | None, tenant: str, role: Role, name: str | None = None
) -> CreatedKey:
    """A new key of ``tenant`` (which must exist) with ``role``; the returned token is the only copy."""
    check_tenant_name(tenant)
    if name is not None and (len(name) > NAME_MAX or not name.isprintable()):
        raise UsageError(f"Key name {shown(name)} is not allowed: up to {NAME_MAX} printable characters.")
    if tenant != DEFAULT_TENANT and not tenant_exists(database_url, home, tenant):
        raise UsageError(
            f"Tenant {tenant!r} does not exist. Create it with `cloacina-ctl tenants create {tenant}` "
            "(see `cloacina-ctl tenants list`)."
        )
    key_id = secrets.token_hex(_ID_LENGTH // 2)
    secret = secrets.token_urlsafe(32)
    row = qk.ApiKeyRow(key_id, tenant, role.value, name, _digest(secret), time.time(), None)
    db = _main(database_url, home)
    try:
        with db.write("creating an API key") as conn:
            qk.insert_api_key(conn, row)
    finally:
        db.dispose()
    return CreatedKey(_key(row), f"{KEY_PREFIX}{key_id}_{secret}")


def list_api_keys(database_url: str | None, *, home: str | None, tenant: str | None = None) -> list[ApiKey]:
    """Every key (of ``tenant`` only, if given), oldest first; read-only."""
    db = _main(database_url, home, read_only=True)
    try:
        with db.read("listing API keys") as conn:
            return [_key(r) for r in qk.list_api_keys(conn, tenant=tenant)]
    finally:
        db.dispose()


def revoke_api_key(database_url: str | None, *, home: str | None, key_id: str) -> ApiKey:
    """Revoke key ``key_id`` (refused requests from then on); ``NotFoundError`` when there is none."""
    db = _main(database_url, home)
    try:
        with db.write("revoking an API key") as conn:
            qk.revoke_api_key(conn, key_id, now=time.time())
            row = qk.get_api_key(conn, key_id)
    finally:
        db.dispose()
    if row is None:
        raise NotFoundError(f"No API key {shown(key_id)}. List them with `cloacina-ctl api-keys list`.")
    return _key(row)


class ApiKeyStore:
    """Checks presented keys against the stored hashes (the server's one database connection pool)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def authenticate(self, token: str) -> ApiKey | None:
        """The live key ``token`` is, or None (malformed, unknown, wrong secret or revoked)."""
        if not token.startswith(KEY_PREFIX):
            return None
        key_id, sep, secret = token[len(KEY_PREFIX) :].partition("_")
        if not sep or len(key_id) != _ID_LENGTH or not secret:
            return None
        with self.database.read("checking an API key") as conn:
            row = qk.get_api_key(conn, key_id)
        if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
            return None
        return None if row.revoked_at is not None else _key(row)


def open_key_store(database_url: str | None, *, home: str | None) -> ApiKeyStore:
    """The key store of a server: the public tenant's database, opened (and migrated) for as long as it runs.

    Every request's key is checked in a thread of the event loop's default executor, so the pool keeps
    as many PostgreSQL connections as that has threads: with fewer, each check beyond the pool's size
    opened a connection and closed it again (a new backend per request under load).
    """
    threads = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default max_workers
    return ApiKeyStore(open_database(database_url, home=home, pool_size=threads))
