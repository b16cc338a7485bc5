"""The queries of signed packages: a tenant's trusted keys, its signature policy, the signers of each version.

A key is trusted by its fingerprint (sha256 of its raw 32 public bytes) under a name unique in the
tenant. Revoking it keeps its row with ``revoked_at`` set: the versions it signed still say who
signed them, and a revoked key is refused at registration rather than forgotten.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from ._schema import active_packages, package_signers, packages, tenant_policy, trusted_keys

__all__ = [
    "REQUIRE_SIGNATURES",
    "SignedVersionRow",
    "SignerRow",
    "TrustedKeyRow",
    "get_key",
    "insert_key",
    "list_keys",
    "replace_signers",
    "require_signatures",
    "set_key_revoked",
    "set_require_signatures",
    "signers_of",
    "signers_of_package",
    "versions_signed_by",
]

REQUIRE_SIGNATURES = "require_signatures"
_k = trusted_keys
_s = package_signers


@dataclass(frozen=True)
class TrustedKeyRow:
    """A key in the tenant's trust store; ``revoked_at`` set once ``trust remove`` revoked it."""

    fingerprint: str
    name: str
    public_key: str
    added_at: float
    revoked_at: float | None

    @property
    def trusted(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class SignerRow:
    """A key that signed a registered version; ``trusted``: the tenant trusted it when the version was registered."""

    fingerprint: str
    key_name: str
    trusted: bool


@dataclass(frozen=True)
class SignedVersionRow:
    """A registered version a key signed."""

    name: str
    display_name: str
    version: str
    active: bool


def _key(row: Any) -> TrustedKeyRow:
    m = row._mapping
    return TrustedKeyRow(m["fingerprint"], m["name"], m["public_key"], float(m["added_at"]), m["revoked_at"])


def list_keys(conn: Connection, *, include_revoked: bool = False) -> list[TrustedKeyRow]:
    """The tenant's trusted keys by name (and the revoked ones too, ``include_revoked``)."""
    query = select(_k)
    if not include_revoked:
        query = query.where(_k.c.revoked_at.is_(None))
    return [_key(r) for r in conn.execute(query.order_by(_k.c.name))]


def get_key(conn: Connection, *, fingerprint: str | None = None, name: str | None = None) -> TrustedKeyRow | None:
    """The key (trusted or revoked) with this fingerprint, or this name."""
    query = select(_k).where(_k.c.fingerprint == fingerprint) if fingerprint is not None else select(_k)
    if name is not None:
        query = query.where(_k.c.name == name)
    row = conn.execute(query).first()
    return None if row is None else _key(row)


def insert_key(conn: Connection, *, fingerprint: str, name: str, public_key: str, now: float) -> None:
    conn.execute(insert(_k).values(fingerprint=fingerprint, name=name, public_key=public_key, added_at=now))


def set_key_revoked(conn: Connection, *, fingerprint: str, revoked_at: float | None) -> None:
    """Revoke the key (``revoked_at``), or trust it again (None)."""
    conn.execute(update(_k).where(_k.c.fingerprint == fingerprint).values(revoked_at=revoked_at))


def require_signatures(conn: Connection) -> bool:
    """Whether the tenant accepts only archives signed by a key it trusts (default: no)."""
    value = conn.execute(select(tenant_policy.c.value).where(tenant_policy.c.name == REQUIRE_SIGNATURES)).scalar()
    return bool(json.loads(value)) if value is not None else False


def set_require_signatures(conn: Connection, *, required: bool, now: float) -> bool:
    """Set the policy; return what it was."""
    previous = require_signatures(conn)
    where = tenant_policy.c.name == REQUIRE_SIGNATURES
    values = {"value": json.dumps(required), "updated_at": now}
    if conn.execute(select(tenant_policy.c.name).where(where)).first() is None:
        conn.execute(insert(tenant_policy).values(name=REQUIRE_SIGNATURES, **values))
    else:
        conn.execute(update(tenant_policy).where(where).values(**values))
    return previous


def replace_signers(conn: Connection, *, name: str, version: str, signers: Sequence[SignerRow]) -> None:
    """Record who signed ``name`` ``version`` (in the transaction that stores it)."""
    conn.execute(delete(_s).where(_s.c.name == name, _s.c.version == version))
    if signers:
        conn.execute(
            insert(_s),
            [
                {
                    "name": name,
                    "version": version,
                    "fingerprint": s.fingerprint,
                    "key_name": s.key_name,
                    "trusted": int(s.trusted),
                }
                for s in signers
            ],
        )


def _signer(row: Any) -> SignerRow:
    return SignerRow(str(row.fingerprint), str(row.key_name), bool(row.trusted))


def signers_of(conn: Connection, *, name: str, version: str) -> list[SignerRow]:
    query = select(_s).where(_s.c.name == name, _s.c.version == version).order_by(_s.c.key_name, _s.c.fingerprint)
    return [_signer(r) for r in conn.execute(query)]


def signers_of_package(conn: Connection, *, name: str | None = None) -> dict[tuple[str, str], list[SignerRow]]:
    """``(name, version)`` -> its signers, for one package (or every one)."""
    query = select(_s).order_by(_s.c.name, _s.c.version, _s.c.key_name, _s.c.fingerprint)
    if name is not None:
        query = query.where(_s.c.name == name)
    found: dict[tuple[str, str], list[SignerRow]] = {}
    for r in conn.execute(query):
        found.setdefault((str(r.name), str(r.version)), []).append(_signer(r))
    return found


def versions_signed_by(conn: Connection, *, fingerprint: str) -> list[SignedVersionRow]:
    """The registered versions ``fingerprint`` signed, by name and version, and whether each is active."""
    ap = active_packages
    query = (
        select(packages.c.name, packages.c.display_name, packages.c.version, ap.c.version.label("active_version"))
        .select_from(
            _s.join(packages, and_(packages.c.name == _s.c.name, packages.c.version == _s.c.version)).outerjoin(
                ap, ap.c.name == packages.c.name
            )
        )
        .where(_s.c.fingerprint == fingerprint)
        .order_by(packages.c.name, packages.c.registered_at, packages.c.version)
    )
    return [
        SignedVersionRow(str(r.name), str(r.display_name), str(r.version), r.active_version == r.version)
        for r in conn.execute(query)
    ]
