"""Trust per tenant: the keys a tenant trusts, its signature policy, and the rules the registry applies.

The archive reader has already refused any signature that does not verify over the manifest's
bytes; what is left to decide here is whose signatures count:

- **registering** (``register``, ``serve --watch``) and **activating** a version: a signature by a
  key the tenant revoked refuses it, whatever the policy; under ``require_signatures`` at least
  one signature must be by a key the tenant trusts now;
- **loading** a registered version (building its workflows in a process, installing it from the
  database): its stored archive is read again, every signature verified over its bytes, and under
  the policy at least one must be by a key trusted now or trusted when the version was registered
  (a key revoked since keeps the versions it signed running until they are deactivated).

Each registered version records its signers (``package_signers``), with whether the tenant trusted
each key then.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._packaging import Archive, PublicKey
from .._storage import Database
from .._storage import _signing as qsig
from .._storage._signing import SignerRow, TrustedKeyRow
from ._errors import RegistryError

__all__ = [
    "PolicyResult",
    "RevokeResult",
    "SignedVersion",
    "TrustResult",
    "TrustState",
    "TrustStore",
    "TrustedKey",
    "VersionSigner",
]


def _utc(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def short(fingerprint: str) -> str:
    """The first 16 hex digits of a fingerprint: what messages and tables show."""
    return fingerprint[:16]


@dataclass(frozen=True)
class TrustedKey:
    """A key in the tenant's trust store (``revoked_at`` set: revoked by ``trust remove``)."""

    name: str
    fingerprint: str
    public_key: str
    added_at: float
    revoked_at: float | None

    @property
    def trusted(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def of(cls, row: TrustedKeyRow) -> TrustedKey:
        return cls(row.name, row.fingerprint, row.public_key, row.added_at, row.revoked_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "trusted": self.trusted,
            "added_at": _utc(self.added_at),
            "revoked_at": _utc(self.revoked_at),
            "public_key": self.public_key,
        }


@dataclass(frozen=True)
class VersionSigner:
    """A key that signed a registered version: its name, and its standing when registered and now."""

    fingerprint: str
    name: str
    trusted_at_registration: bool
    #: ``trusted``, ``revoked`` or ``not trusted`` (not in the trust store)
    now: str

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "name": self.name,
            "trusted_at_registration": self.trusted_at_registration,
            "trust": self.now,
        }

    def text(self) -> str:
        return f"{self.name} ({short(self.fingerprint)}, {self.now})"


@dataclass(frozen=True)
class SignedVersion:
    name: str
    version: str
    active: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "active": self.active}


@dataclass(frozen=True)
class TrustResult:
    """``trust add``: ``added``, ``restored`` (a revoked key trusted again) or ``unchanged``."""

    tenant: str
    key: TrustedKey
    status: str

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "status": self.status, **self.key.to_json()}


@dataclass(frozen=True)
class RevokeResult:
    """``trust remove``: the key revoked, and the registered versions it signed (they keep running)."""

    tenant: str
    key: TrustedKey
    changed: bool
    signed: tuple[SignedVersion, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "revoked": self.changed,
            "key": self.key.to_json(),
            "signed_versions": [v.to_json() for v in self.signed],
        }


@dataclass(frozen=True)
class PolicyResult:
    tenant: str
    require_signatures: bool
    previous: bool
    trusted_keys: int

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "require_signatures": self.require_signatures,
            "previous": self.previous,
            "trusted_keys": self.trusted_keys,
        }


@dataclass(frozen=True)
class TrustState:
    """What a tenant trusts, read in one transaction: its policy and its keys by fingerprint."""

    tenant: str
    require: bool
    keys: dict[str, TrustedKeyRow]

    @classmethod
    def read(cls, conn: Any, tenant: str) -> TrustState:
        keys = {k.fingerprint: k for k in qsig.list_keys(conn, include_revoked=True)}
        return cls(tenant, qsig.require_signatures(conn), keys)

    def standing(self, fingerprint: str) -> str:
        key = self.keys.get(fingerprint)
        return "not trusted" if key is None else ("trusted" if key.trusted else "revoked")

    def signers(self, archive: Archive, *, source: str) -> list[SignerRow]:
        """The signers of an archive being registered or activated; ``RegistryError`` when this tenant refuses it."""
        rows = []
        for entry in archive.signatures:
            key = self.keys.get(entry.fingerprint)
            if key is not None and not key.trusted:
                raise RegistryError(
                    f"{source}: it is signed by key {key.name!r} ({short(key.fingerprint)}), which tenant "
                    f"{self.tenant!r} revoked at {_utc(key.revoked_at)}; nothing was registered. Sign it with a key "
                    "the tenant trusts (cloacina-ctl trust list), or trust the key again with `cloacina-ctl trust "
                    "add NAME PUBKEY` if revoking it was a mistake."
                )
            rows.append(SignerRow(entry.fingerprint, key.name if key else entry.key_name, key is not None))
        if self.require and not any(r.trusted for r in rows):
            raise RegistryError(f"{source}: {self._untrusted(archive)}; nothing was registered. {self._fix()}")
        return rows

    def check_load(self, archive: Archive, recorded: Sequence[SignerRow], *, what: str) -> None:
        """Refuse to load a registered version that the tenant's policy no longer accepts."""
        if not self.require:
            return
        trusted_then = {r.fingerprint for r in recorded if r.trusted}
        for entry in archive.signatures:
            key = self.keys.get(entry.fingerprint)
            if key is not None and (key.trusted or entry.fingerprint in trusted_then):
                return
        raise RegistryError(
            f"{what} cannot be loaded: {self._untrusted(archive)}. Deactivate it (cloacina-ctl packages deactivate "
            f"NAME), or register a version signed by a key the tenant trusts. {self._fix()}"
        )

    def _untrusted(self, archive: Archive) -> str:
        head = f"tenant {self.tenant!r} requires signatures by a key it trusts (cloacina-ctl tenants policy)"
        if not archive.signatures:
            return f"{head}, and the archive is not signed"
        names = ", ".join(f"{e.key_name!r} ({short(e.fingerprint)})" for e in archive.signatures)
        return f"{head}, and the archive is signed only by keys it does not trust: {names}"

    def _fix(self) -> str:
        return (
            "Sign the archive with a trusted key (cloacina-ctl sign FILE --key KEY; trusted keys: cloacina-ctl "
            "trust list), or trust the signer's public key (cloacina-ctl trust add NAME PUBKEY)."
        )


class TrustStore:
    """The trust store and signature policy of one tenant, over its database."""

    def __init__(self, database: Database, tenant: str) -> None:
        self.database = database
        self.tenant = tenant

    def state(self) -> TrustState:
        with self.database.read("reading the trusted keys") as conn:
            return TrustState.read(conn, self.tenant)

    def keys(self, *, include_revoked: bool = False) -> list[TrustedKey]:
        with self.database.read("listing the trusted keys") as conn:
            return [TrustedKey.of(k) for k in qsig.list_keys(conn, include_revoked=include_revoked)]

    def add(self, name: str, key: PublicKey) -> TrustResult:
        """Trust ``key`` under ``name`` (a revoked key is trusted again); the same key and name again is a no-op."""
        from .._packaging._keys import check_key_name

        check_key_name(name)
        now = time.time()
        with self.database.write("adding a trusted key") as conn:
            same = qsig.get_key(conn, fingerprint=key.fingerprint)
            named = qsig.get_key(conn, name=name)
            if same is not None and same.name != name:
                raise RegistryError(
                    f"This key ({short(key.fingerprint)}) is in tenant {self.tenant!r}'s trust store already, as "
                    f"{same.name!r}{'' if same.trusted else ' (revoked)'}; use that name "
                    f"(cloacina-ctl trust add {same.name} ...)."
                )
            if same is None and named is not None:
                raise RegistryError(
                    f"Tenant {self.tenant!r} has a key named {name!r} already ({short(named.fingerprint)}"
                    f"{'' if named.trusted else ', revoked'}), a different one; choose another name."
                )
            if same is None:
                qsig.insert_key(conn, fingerprint=key.fingerprint, name=name, public_key=key.pem, now=now)
                status = "added"
            elif same.trusted:
                status = "unchanged"
            else:
                qsig.set_key_revoked(conn, fingerprint=key.fingerprint, revoked_at=None)
                status = "restored"
            row = qsig.get_key(conn, fingerprint=key.fingerprint)
        assert row is not None
        return TrustResult(self.tenant, TrustedKey.of(row), status)

    def _find(self, conn: Any, which: str) -> TrustedKeyRow:
        row = qsig.get_key(conn, name=which)
        if row is None and len(which) >= 8:
            matches = [k for k in qsig.list_keys(conn, include_revoked=True) if k.fingerprint.startswith(which.lower())]
            if len(matches) > 1:
                raise RegistryError(
                    f"Fingerprint prefix {which!r} matches {len(matches)} keys; give more digits, or the key's name."
                )
            row = matches[0] if matches else None
        if row is None:
            from .._errors import NotFoundError

            raise NotFoundError(
                f"Tenant {self.tenant!r} has no trusted key named {which!r} (nor one whose fingerprint starts so); "
                "see `cloacina-ctl trust list --all`."
            )
        return row

    def revoke(self, which: str) -> RevokeResult:
        """Revoke the key named ``which`` (or whose fingerprint starts with it): new registrations signed by
        it are refused from now on; the versions it signed are reported, and keep running."""
        now = time.time()
        with self.database.write("revoking a trusted key") as conn:
            row = self._find(conn, which)
            changed = row.trusted
            if changed:
                qsig.set_key_revoked(conn, fingerprint=row.fingerprint, revoked_at=now)
            signed = qsig.versions_signed_by(conn, fingerprint=row.fingerprint)
            row = qsig.get_key(conn, fingerprint=row.fingerprint) or row
        versions = tuple(SignedVersion(v.display_name, v.version, v.active) for v in signed)
        return RevokeResult(self.tenant, TrustedKey.of(row), changed, versions)

    def set_policy(self, *, required: bool) -> PolicyResult:
        """Require signatures by a trusted key (or not) for every later register, activation and load.

        Refused while an active version would no longer load under it, and (to require) while the
        tenant trusts no key at all: either would stop the tenant's workflows at their next load.
        """
        now = time.time()
        with self.database.write("setting the signature policy") as conn:
            keys = qsig.list_keys(conn)
            if required:
                self._check_can_require(conn, keys)
            previous = qsig.set_require_signatures(conn, required=required, now=now)
        return PolicyResult(self.tenant, required, previous, len(keys))

    def _check_can_require(self, conn: Any, keys: list[TrustedKeyRow]) -> None:
        from .._storage import _queries as q

        if not keys:
            raise RegistryError(
                f"Tenant {self.tenant!r} trusts no key, so requiring signatures would refuse every package. "
                "Trust a key first: cloacina-ctl trust add NAME PUBKEY (make one with cloacina-ctl signing-keys "
                "generate NAME)."
            )
        trusted = {k.fingerprint for k in keys}
        signers = qsig.signers_of_package(conn)
        unsigned = [
            f"{name} {version}"
            for name, version, _sha in q.active_packages_state(conn)
            if not any(s.fingerprint in trusted or s.trusted for s in signers.get((name, version), []))
        ]
        if unsigned:
            raise RegistryError(
                f"Cannot require signatures in tenant {self.tenant!r}: active version(s) {', '.join(unsigned)} are "
                "not signed by a key it trusts, and would stop loading. Register signed versions of them, or "
                "deactivate them (cloacina-ctl packages deactivate NAME), then set the policy again."
            )

    def policy(self) -> PolicyResult:
        with self.database.read("reading the signature policy") as conn:
            required = qsig.require_signatures(conn)
            keys = len(qsig.list_keys(conn))
        return PolicyResult(self.tenant, required, required, keys)


def version_signers(state: TrustState, rows: Sequence[SignerRow]) -> tuple[VersionSigner, ...]:
    """The recorded signers of a version, with their standing now."""
    return tuple(VersionSigner(r.fingerprint, r.key_name, r.trusted, state.standing(r.fingerprint)) for r in rows)
