"""The server's API keys: rows of ``api_keys`` in the public tenant's database (migration 7).

A key is ``cloacina_<id>_<secret>``; the row holds its id, tenant, role and name, and the sha256 of
the secret only. The typed operations here are the only SQL about keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from ._schema import api_keys

__all__ = ["ApiKeyRow", "get_api_key", "insert_api_key", "list_api_keys", "revoke_api_key"]


@dataclass(frozen=True)
class ApiKeyRow:
    id: str
    tenant: str
    role: str
    name: str | None
    secret_sha256: str
    created_at: float
    revoked_at: float | None


def _row(r: object) -> ApiKeyRow:
    m = r._mapping  # type: ignore[attr-defined]
    return ApiKeyRow(
        id=str(m["id"]),
        tenant=str(m["tenant"]),
        role=str(m["role"]),
        name=None if m["name"] is None else str(m["name"]),
        secret_sha256=str(m["secret_sha256"]),
        created_at=float(m["created_at"]),
        revoked_at=None if m["revoked_at"] is None else float(m["revoked_at"]),
    )


def insert_api_key(conn: Connection, key: ApiKeyRow) -> None:
    conn.execute(
        insert(api_keys).values(
            id=key.id,
            tenant=key.tenant,
            role=key.role,
            name=key.name,
            secret_sha256=key.secret_sha256,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )
    )


def get_api_key(conn: Connection, key_id: str) -> ApiKeyRow | None:
    found = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
    return None if found is None else _row(found)


def list_api_keys(conn: Connection, *, tenant: str | None = None) -> list[ApiKeyRow]:
    query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
    if tenant is not None:
        query = query.where(api_keys.c.tenant == tenant)
    return [_row(r) for r in conn.execute(query)]


def revoke_api_key(conn: Connection, key_id: str, *, now: float) -> bool:
    """Mark key ``key_id`` revoked (once: a revoked key keeps its first revocation time); whether it was live."""
    result = conn.execute(
        update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(result.rowcount)
