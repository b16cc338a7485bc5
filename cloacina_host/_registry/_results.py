"""What registry operations return: plain, typed, JSON-able."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ._trust import VersionSigner

RegisterStatus = Literal["registered", "replaced", "unchanged"]


def _when(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RegisteredWorkflow:
    """A workflow a registered version offers, as its manifest records it."""

    key: str
    description: str
    fingerprint: str
    entry_point: str
    tasks: tuple[str, ...]
    dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.key,
            "description": self.description,
            "fingerprint": self.fingerprint,
            "entry_point": self.entry_point,
            "tasks": list(self.tasks),
            "dependencies": {k: list(v) for k, v in self.dependencies.items()},
        }


@dataclass(frozen=True)
class PackageVersion:
    """One registered version of a package."""

    name: str
    version: str
    sha256: str
    size: int
    registered_at: float
    active: bool
    workflows: tuple[RegisteredWorkflow, ...]
    running: int = 0
    #: the keys that signed it (empty: unsigned)
    signers: tuple[VersionSigner, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "active": self.active,
            "sha256": self.sha256,
            "size": self.size,
            "registered_at": _when(self.registered_at),
            "running_executions": self.running,
            "signed_by": [s.to_json() for s in self.signers],
            "workflows": [w.to_json() for w in self.workflows],
        }


@dataclass(frozen=True)
class PackageInfo:
    """A registered package: its versions (oldest first) and the active one (None when deactivated)."""

    name: str
    tenant: str
    active_version: str | None
    versions: tuple[PackageVersion, ...]

    @property
    def active(self) -> PackageVersion | None:
        return next((v for v in self.versions if v.active), None)

    def to_json(self, *, detail: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "tenant": self.tenant,
            "active_version": self.active_version,
            "versions": [v.version for v in self.versions],
        }
        shown = self.active or (self.versions[-1] if self.versions else None)
        data["workflows"] = [w.key for w in shown.workflows] if shown else []
        if detail:
            data["versions"] = [v.to_json() for v in self.versions]
        return data


@dataclass(frozen=True)
class RegisterResult:
    """What ``register`` did: ``registered`` (new version), ``replaced`` (``force``), ``unchanged`` (same bytes)."""

    name: str
    version: str
    tenant: str
    status: RegisterStatus
    sha256: str
    size: int
    active: bool
    previous_active: str | None
    workflows: tuple[RegisteredWorkflow, ...]
    install_dir: Path
    seconds: float
    signers: tuple[VersionSigner, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "tenant": self.tenant,
            "status": self.status,
            "sha256": self.sha256,
            "size": self.size,
            "active": self.active,
            "previous_active": self.previous_active,
            "workflows": [w.to_json() for w in self.workflows],
            "install_dir": str(self.install_dir),
            "signed_by": [s.to_json() for s in self.signers],
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ActivateResult:
    """The active version of ``name`` changed from ``previous`` to ``version`` (None: deactivated)."""

    name: str
    tenant: str
    version: str | None
    previous: str | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "tenant": self.tenant, "active_version": self.version, "previous": self.previous}


@dataclass(frozen=True)
class RemoveResult:
    """Version ``version`` of ``name`` was removed; ``was_active``: the package has no active version now."""

    name: str
    tenant: str
    version: str
    was_active: bool
    running: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tenant": self.tenant,
            "version": self.version,
            "was_active": self.was_active,
            "running_executions": self.running,
        }
