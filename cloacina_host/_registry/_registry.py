"""``Registry``: register ``.cloacina`` archives, keep their versions, choose the active one, per tenant.

Registering runs, in order: the hostile-archive checks of ``read_archive`` (the standard-library
shadow check among them); install into the content-addressed directory; load in a fresh worker
with a time limit and compare workflows and fingerprints with the manifest; then one transaction
stores the archive, manifest and signers and switches the active version. On any failure nothing is left
behind: a directory this call created is removed and the database is unchanged. Signatures are
verified by the archive reader; whose signatures the tenant accepts, at registering and at every
later load, is ``_trust``'s to say.

A ``Registry`` is also a catalog source: ``catalog_entries()`` gives the active versions' workflows,
read from the database on each call, so a host sees a version registered by another process at its
next submit, without a restart. Executions already running keep the workflow they started with.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloacina_workflow import DEFAULT_TENANT

from .._defaults import DEFAULT_IDLE_TIMEOUT_S
from .._discovery import CatalogEntry, WorkflowCatalog, discover, normalize
from .._errors import StorageError, WorkflowConflictError, WorkflowNotFoundError
from .._packaging import DEFAULT_LOAD_TIMEOUT_S, Archive, Manifest, read_archive
from .._storage import Database
from .._storage import _queries as q
from .._storage import _schedules as qs
from .._storage import _signing as qsig
from .._storage import _triggers as qt
from .._storage._pauses import forget_source
from .._storage._records import PackageRecord
from .._storage._signing import SignerRow
from ._catalog import LoopPools, build_entries
from ._errors import PackageNotFoundError, RegistryError
from ._installer import clean_leftovers, ensure_installed, install_dir, is_installed, remove_install
from ._loader import check_loads
from ._names import check_package_name, check_tenant_name, check_version
from ._results import (
    ActivateResult,
    PackageInfo,
    PackageVersion,
    RegisteredWorkflow,
    RegisterResult,
    RemoveResult,
)
from ._tenants import open_tenant_database
from ._trust import TrustState, TrustStore, VersionSigner, version_signers

Progress = Callable[[str], None]


def _newer(candidate: str, current: str) -> bool:
    """Whether version ``candidate`` sorts after ``current`` (PEP 440; plain text when not PEP 440)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(candidate) > Version(current)
    except InvalidVersion:
        return candidate > current


def _version_order(record: PackageRecord) -> tuple[int, object, float]:
    """Sort key: PEP 440 versions in version order (1.10 after 1.9), any others after them as text."""
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(record.version), record.registered_at)
    except InvalidVersion:
        return (1, record.version, record.registered_at)


def _workflows(manifest: Manifest) -> tuple[RegisteredWorkflow, ...]:
    return tuple(
        RegisteredWorkflow(
            key=wf.key,
            description=wf.description,
            fingerprint=wf.fingerprint,
            entry_point=wf.entry_point.name,
            tasks=tuple(t.id for t in wf.tasks),
            dependencies={t.id: tuple(t.dependencies) for t in wf.tasks},
        )
        for wf in manifest.workflows
    )


def _schedule_specs(manifest: Manifest, tenant: str) -> list[qs.ScheduleSpec]:
    """The schedules a version declares, as the scheduler stores them (format 1 declares none)."""
    return [
        qs.ScheduleSpec.of(f"{tenant}::{wf.package}::{wf.name}", s) for wf in manifest.workflows for s in wf.schedules
    ]


def _trigger_specs(manifest: Manifest, tenant: str) -> list[qt.TriggerSpecRow]:
    """The triggers a version declares, with the workflows each starts (format 1 declares none)."""
    return [
        qt.TriggerSpecRow(
            package=keys[0].split("::")[0],
            name=name,
            poll_interval_s=spec.poll_interval_s,
            timeout_s=spec.timeout_s,
            workflows=tuple(f"{tenant}::{k}" for k in keys),
        )
        for name, (spec, keys) in sorted(manifest.trigger_subscribers().items())
    ]


def _swap_triggers(conn: Any, manifest: Manifest, *, source: str, version: str, tenant: str, now: float) -> None:
    specs = _trigger_specs(manifest, tenant)
    qt.replace_triggers(conn, source=source, package_version=version, specs=specs, now=now)


def _key(name: str) -> str:
    """The stored (normalised) form of a package name a user typed; ``RegistryError`` when it cannot be one."""
    return normalize(check_package_name(name))


class Registry:
    """The packages registered in one tenant. ``Registry(database_url, home=..., tenant=...)``.

    ``database_url`` and ``home`` default as for ``DefaultRunner`` (``$CLOACINA_DATABASE_URL``, else
    ``cloacina.db`` under ``$CLOACINA_HOME`` or ``~/.cloacina``); installs go to ``<home>/packages``.
    ``load_timeout_s`` limits loading a package's entry points in a worker; ``idle_timeout_s`` is how
    long an unused worker lives. Methods are blocking (call them from a thread inside an event loop);
    ``aclose()`` stops the workers started on the running loop. ``database_opener``: where the
    tenant's database comes from when a command owns it (called on first use; the registry never
    disposes a database it did not open).
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        tenant: str = DEFAULT_TENANT,
        load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        database_opener: Callable[[], Database] | None = None,
    ) -> None:
        self.database_url = database_url
        self.home = None if home is None else str(home)
        self.tenant = check_tenant_name(tenant)
        self.load_timeout_s = load_timeout_s
        self.pools = LoopPools(
            self._ensure_dir, idle_timeout_s=idle_timeout_s, load_timeout_s=load_timeout_s, check_dir=self._check_dir
        )
        self._lock = threading.Lock()
        self._db: Database | None = None
        self._opener = database_opener
        self._entries: dict[tuple[str, str, str], list[CatalogEntry]] = {}
        self._dirs: dict[Path, tuple[str, str]] = {}

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def database(self) -> Database:
        """The tenant's database, opened (and migrated) on first use; stale install staging is removed then."""
        with self._lock:
            if self._db is None:
                if self._opener is not None:
                    self._db = self._opener()
                else:
                    self._db = open_tenant_database(self.database_url, home=self.home, tenant=self.tenant)
                clean_leftovers(self.home)  # staging directories of installs killed half way
            return self._db

    def close(self) -> None:
        """Release the database connections (opened again if the registry is used after)."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None and self._opener is None:  # a database given through the opener is its owner's
            db.dispose()

    async def aclose(self) -> None:
        """Stop the workers started on the running event loop, and release the database connections."""
        await self.pools.aclose()
        self.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def trust(self) -> TrustStore:
        """The tenant's trusted keys and signature policy (``trust add|list|remove``, ``tenants policy``)."""
        return TrustStore(self.database, self.tenant)

    def _record(self, name: str, version: str) -> PackageRecord:
        check_version(version, name=name)
        with self.database.read("reading a registered package") as conn:
            record = q.get_package(conn, name=name, version=version)
            known = [] if record is not None else [r.version for r in q.list_packages(conn, name=name)]
        if record is None:
            if known:
                raise PackageNotFoundError(
                    f"Package {name} has no version {version} in tenant {self.tenant!r}; registered versions: "
                    f"{', '.join(known)}.",
                    name=name,
                    version=version,
                )
            raise self._not_found(name)
        return record

    def _not_found(self, name: str) -> PackageNotFoundError:
        return PackageNotFoundError(
            f"No package {name!r} is registered in tenant {self.tenant!r}. See `cloacina-ctl packages list`, "
            "or register one with `cloacina-ctl register FILE`.",
            name=name,
        )

    # -- registering ------------------------------------------------------------------------------

    def register(
        self,
        source: str | os.PathLike[str] | bytes,
        *,
        force: bool = False,
        activate: bool | None = None,
        progress: Progress | None = None,
        name: str | None = None,
    ) -> RegisterResult:
        """Register a ``.cloacina`` archive (a path or its bytes); return what was done.

        ``activate``: None makes the version active when the package has no active version or this
        one is newer (PEP 440); True always; False never. ``name``: what messages call archive bytes
        (an upload's file name; default ``<archive bytes>``). The same bytes again is a no-op;
        different bytes under a registered name and version are refused unless ``force``.
        Raises ``ArchiveError`` or ``RegistryError`` (user errors), ``StorageError``; changes nothing then.
        """
        say = progress or (lambda _message: None)
        started = time.perf_counter()
        archive, data = self._read(source, name)
        manifest = archive.manifest
        name, version = normalize(manifest.package.name), manifest.package.version
        display = f"{manifest.package.name} {version}"
        say(
            f"Read {archive.source}: {display}, {archive.size:,} bytes, sha256 {archive.sha256[:12]}; "
            "archive checks passed (structure, hashes, tags, graphs, no standard-library shadowing)"
        )
        db = self.database
        with db.read("reading a registered package") as conn:
            existing = q.get_package(conn, name=name, version=version)
            state = TrustState.read(conn, self.tenant)
        signers = state.signers(archive, source=archive.source)  # refused here when the tenant's trust says so
        shown_signers = version_signers(state, signers)
        if archive.signatures:
            say(f"Signatures verified over the manifest: {', '.join(s.text() for s in shown_signers)}")
        if existing is not None and existing.archive_sha256 == archive.sha256:
            say(f"{display} is registered already with these exact bytes: nothing to do")
            active, previous = existing.active, None
            if activate and not existing.active:
                previous = self.activate(name, version).previous
                active = True
            return self._result(archive, "unchanged", active, previous, started, shown_signers)
        if existing is not None and not force:
            raise RegistryError(
                f"{archive.source}: {display} is registered already in tenant {self.tenant!r} with different "
                f"bytes (sha256 {existing.archive_sha256[:12]}, this archive {archive.sha256[:12]}). A version "
                "never changes: bump the version in pyproject.toml and package again, or replace it with --force."
            )
        target, created = ensure_installed(self.home, archive)
        try:
            say(f"{'Installed' if created else 'Found'} the wheels with installer in {target}")
            check_loads(target, manifest, source=archive.source, timeout_s=self.load_timeout_s)
            say(
                f"Loaded {len(manifest.workflows)} workflow(s) in a fresh worker within the "
                f"{self.load_timeout_s:g} s limit: workflows, tasks and fingerprints match the manifest"
            )
            status, active, previous, shown_signers = self._store(archive, data, name, force=force, activate=activate)
        except BaseException:
            if created:
                remove_install(target)
            raise
        self._dirs[target] = (name, version)
        if active and previous != version:
            say(f"{display} is active now" + (f" (was {previous})" if previous else ""))
        elif not active:
            say(f"{display} is registered; the active version stays {previous}")
        return self._result(archive, status, active, previous, started, shown_signers)

    def _read(self, source: str | os.PathLike[str] | bytes, name: str | None = None) -> tuple[Archive, bytes]:
        archive = read_archive(source, name=name)  # the bytes it checked are the bytes stored: no second read, no race
        return archive, archive.data

    def _store(
        self, archive: Archive, data: bytes, name: str, *, force: bool, activate: bool | None
    ) -> tuple[str, bool, str | None, tuple[VersionSigner, ...]]:
        manifest = archive.manifest
        version = manifest.package.version
        now = time.time()
        record = PackageRecord(
            name=name,
            version=version,
            display_name=manifest.package.name,
            archive_sha256=archive.sha256,
            archive_size=archive.size,
            registered_at=now,
            manifest=manifest.to_json(),
            active=False,
        )
        workflows = [(wf.package, wf.name, wf.fingerprint) for wf in manifest.workflows]
        with self.database.write("registering a package") as conn:
            current = q.get_package(conn, name=name, version=version)  # again, under the write lock
            if current is not None and current.archive_sha256 != archive.sha256 and not force:
                raise RegistryError(
                    f"{archive.source}: {manifest.package.name} {version} was registered by another process "
                    "meanwhile, with different bytes; bump the version, or replace it with --force."
                )
            state = TrustState.read(conn, self.tenant)  # again, under the write lock: a key revoked meanwhile counts
            signers = state.signers(archive, source=archive.source)
            active_now = q.active_version(conn, name=name)
            if current is None or current.archive_sha256 != archive.sha256:
                q.store_package(conn, record=record, archive=data, workflows=workflows, replace=current is not None)
                qsig.replace_signers(conn, name=name, version=version, signers=signers)
            make_active = activate if activate is not None else (active_now is None or _newer(version, active_now))
            if active_now == version:
                make_active = True
            if make_active:
                q.set_active_version(conn, name=name, version=version, now=now)
                # its schedules go live with it, in this transaction: never the old and the new together
                qs.replace_schedules(
                    conn, source=name, package_version=version, specs=_schedule_specs(manifest, self.tenant), now=now
                )
                _swap_triggers(conn, manifest, source=name, version=version, tenant=self.tenant, now=now)
        status = "replaced" if current is not None else "registered"
        previous = None if active_now is None else str(active_now)
        return status, bool(make_active), previous, version_signers(state, signers)

    def _result(
        self,
        archive: Archive,
        status: str,
        active: bool,
        previous: str | None,
        started: float,
        signers: tuple[VersionSigner, ...] = (),
    ) -> RegisterResult:
        manifest = archive.manifest
        return RegisterResult(
            name=manifest.package.name,
            version=manifest.package.version,
            tenant=self.tenant,
            status=status,  # type: ignore[arg-type]
            sha256=archive.sha256,
            size=archive.size,
            active=active,
            previous_active=previous,
            workflows=_workflows(manifest),
            install_dir=install_dir(self.home, archive.sha256),
            seconds=time.perf_counter() - started,
            signers=signers,
        )

    # -- versions ---------------------------------------------------------------------------------

    def activate(self, name: str, version: str) -> ActivateResult:
        """Make ``version`` the one new executions of ``name`` use (a roll-back, or forward).

        The version is installed when missing and loaded in a fresh worker first; if that fails, the
        active version does not change.
        """
        key = _key(name)
        record = self._record(key, version)
        archive = self._stored_archive(key, version, record)
        with self.database.read("reading the trusted keys") as conn:
            TrustState.read(conn, self.tenant).signers(archive, source=f"{record.display_name} {version}")
        target, created = self._install(key, version)
        try:
            manifest = Manifest.model_validate_json(record.manifest)
            check_loads(
                target,
                manifest,
                source=f"{key}=={version}",
                timeout_s=self.load_timeout_s,
            )
            with self.database.write("activating a package version") as conn:
                if q.get_package(conn, name=key, version=version) is None:
                    raise self._not_found(key)
                now = time.time()
                previous = q.set_active_version(conn, name=key, version=version, now=now)
                specs = _schedule_specs(manifest, self.tenant)
                qs.replace_schedules(conn, source=key, package_version=version, specs=specs, now=now)
                _swap_triggers(conn, manifest, source=key, version=version, tenant=self.tenant, now=now)
        except BaseException:
            if created:  # refused: leave this machine as it was
                remove_install(target)
            raise
        return ActivateResult(record.display_name, self.tenant, version, previous)

    def deactivate(self, name: str) -> ActivateResult:
        """Leave ``name`` without an active version: its workflows are no longer offered (versions stay)."""
        key = _key(name)
        with self.database.write("deactivating a package") as conn:
            versions = q.list_packages(conn, name=key)
            if not versions:
                raise self._not_found(key)
            previous = q.clear_active_version(conn, name=key)
            qs.clear_schedules(conn, source=key)  # its schedules stop with it
            qt.clear_triggers(conn, source=key)  # and its triggers
        return ActivateResult(versions[0].display_name, self.tenant, None, previous)

    def remove(self, name: str, version: str, *, force: bool = False) -> RemoveResult:
        """Delete a registered version. Refused while executions still run on it, unless ``force``."""
        key = _key(name)
        record = self._record(key, version)
        with self.database.write("removing a package version") as conn:
            packages = sorted({p for p, _w, _f in q.package_workflow_rows(conn, name=key, version=version)})
            running = q.count_running_executions(conn, tenant=self.tenant, packages=packages, version=version)
            if running and not force:
                raise RegistryError(
                    f"{record.display_name} {version} is still used by {running} unfinished execution(s) in tenant "
                    f"{self.tenant!r}; wait for them to finish (cloacina-ctl executions list --status running), "
                    "or remove it anyway with --force (they then fail to resume)."
                )
            was_active = record.active
            if was_active:
                q.clear_active_version(conn, name=key)
                qs.clear_schedules(conn, source=key)
                qt.clear_triggers(conn, source=key)
            q.delete_package(conn, name=key, version=version)
            if not q.list_packages(conn, name=key):  # its last version: nothing can bring its pauses back
                forget_source(conn, source=key)
        return RemoveResult(record.display_name, self.tenant, version, was_active, running)

    # -- reading ----------------------------------------------------------------------------------

    def _package_versions(
        self,
        records: list[PackageRecord],
        running: dict[str, int],
        signers: dict[str, tuple[VersionSigner, ...]] | None = None,
    ) -> tuple[PackageVersion, ...]:
        return tuple(
            PackageVersion(
                name=r.display_name,
                version=r.version,
                sha256=r.archive_sha256,
                size=r.archive_size,
                registered_at=r.registered_at,
                active=r.active,
                workflows=_workflows(Manifest.model_validate_json(r.manifest)),
                running=running.get(r.version, 0),
                signers=(signers or {}).get(r.version, ()),
            )
            for r in records
        )

    def list_packages(self) -> list[PackageInfo]:
        """Every registered package of the tenant, by name, with its versions."""
        with self.database.read("listing packages") as conn:
            records = q.list_packages(conn)
        by_name: dict[str, list[PackageRecord]] = {}
        for r in records:
            by_name.setdefault(r.name, []).append(r)
        return [self._info(rs, {}) for _name, rs in sorted(by_name.items())]

    def _info(
        self,
        records: list[PackageRecord],
        running: dict[str, int],
        signers: dict[str, tuple[VersionSigner, ...]] | None = None,
    ) -> PackageInfo:
        records = sorted(records, key=_version_order)  # 1.10 after 1.9, whatever the order of registration
        active = next((r.version for r in records if r.active), None)
        versions = self._package_versions(records, running, signers)
        return PackageInfo(records[0].display_name, self.tenant, active, versions)

    def show(self, name: str) -> PackageInfo:
        """One package: every version, the active one, their workflows and unfinished executions."""
        key = _key(name)
        with self.database.read("reading a package") as conn:
            records = q.list_packages(conn, name=key)
            running = {}
            for r in records:
                packages = sorted({p for p, _w, _f in q.package_workflow_rows(conn, name=key, version=r.version)})
                running[r.version] = q.count_running_executions(
                    conn, tenant=self.tenant, packages=packages, version=r.version
                )
            state = TrustState.read(conn, self.tenant)
            rows = qsig.signers_of_package(conn, name=key)
        if not records:
            raise self._not_found(key)
        signers = {v: version_signers(state, r) for (_n, v), r in rows.items()}
        return self._info(records, running, signers)

    # -- installing and resolving -----------------------------------------------------------------

    def ensure_installed(self, name: str, version: str) -> Path:
        """The install directory of ``name==version`` on this machine, re-created from the database if missing."""
        target, _created = self._install(_key(name), version)
        return target

    def _install(self, key: str, version: str) -> tuple[Path, bool]:
        record = self._record(key, version)
        target = install_dir(self.home, record.archive_sha256)
        created = False
        if not is_installed(target):
            archive = self._stored_archive(key, version, record)
            with self.database.read("reading the signers of a package version") as conn:
                rules = self._load_rules(conn, key, version)
            self._check_load(key, version, record, rules, archive)
            target, created = ensure_installed(self.home, archive)
        self._dirs[target] = (key, version)
        return target, created

    def _stored_archive(self, key: str, version: str, record: PackageRecord) -> Archive:
        """The stored archive of a version, read with every check again (signatures verified over its bytes)."""
        with self.database.read("reading a package archive") as conn:
            data = q.package_archive(conn, name=key, version=version)
        if data is None:
            raise self._not_found(key)
        archive = read_archive(data)
        if archive.sha256 != record.archive_sha256 or archive.manifest != Manifest.model_validate_json(record.manifest):
            raise StorageError(
                f"The stored archive of {key} {version} does not match its recorded sha256 and manifest; "
                "register it again with --force."
            )
        return archive

    def _load_rules(self, conn: Any, key: str, version: str) -> tuple[list[SignerRow], TrustState]:
        """What loading a version is checked against: its recorded signers and the tenant's trust (in ``conn``)."""
        return qsig.signers_of(conn, name=key, version=version), TrustState.read(conn, self.tenant)

    def _check_load(
        self,
        key: str,
        version: str,
        record: PackageRecord,
        rules: tuple[list[SignerRow], TrustState],
        archive: Archive | None = None,
    ) -> None:
        """Refuse to load a version the tenant's signature policy does not accept (its archive verified again).

        Nothing to do for an unsigned version in a tenant that does not require signatures.
        """
        recorded, state = rules
        if not recorded and not state.require and archive is None:
            return
        archive = archive or self._stored_archive(key, version, record)
        state.check_load(archive, recorded, what=f"Registered package {record.display_name} {version}")

    def _check_dir(self, package_dir: Path) -> None:
        """The load check of the version installed in ``package_dir``, before a worker first runs its code here."""
        known = self._dirs.get(package_dir)
        if known is None:
            raise RegistryError(f"{package_dir} is not the install directory of a registered package version.")
        key, version = known
        with self.database.read("reading the signers of a package version") as conn:
            record = q.get_package(conn, name=key, version=version)
            rules = self._load_rules(conn, key, version)
        if record is None:
            raise self._not_found(key)
        self._check_load(key, version, record, rules)

    def _ensure_dir(self, package_dir: Path) -> Path:
        known = self._dirs.get(package_dir)
        if known is None:
            raise RegistryError(f"{package_dir} is not the install directory of a registered package version.")
        return self.ensure_installed(*known)

    def _entries_for(self, name: str, version: str, sha256: str) -> list[CatalogEntry]:
        cached = self._entries.get((name, version, sha256))
        if cached is not None:
            return cached
        with self.database.read("reading a package manifest") as conn:
            record = q.get_package(conn, name=name, version=version)
        if record is None or record.archive_sha256 != sha256:  # changed meanwhile: read it afresh next time
            return [] if record is None else self._entries_for(name, version, record.archive_sha256)
        manifest = Manifest.model_validate_json(record.manifest)
        target = install_dir(self.home, sha256)
        self._dirs[target] = (name, version)
        entries = build_entries(self.pools, target, manifest, display_name=record.display_name, version=version)
        self._entries[(name, version, sha256)] = entries
        return entries

    def catalog_entries(self) -> list[CatalogEntry]:
        """The workflows of every active version (one query; entries cached per archive)."""
        with self.database.read("reading the active package versions") as conn:
            active = q.active_packages_state(conn)
        return [entry for name, version, sha in active for entry in self._entries_for(name, version, sha)]

    def resolve(self, package: str, workflow: str, version: str | None = None) -> CatalogEntry:
        """The registered workflow ``package::workflow`` at ``version`` (None: the active version).

        ``package`` is the workflow's package (as in ``package::workflow`` and in execution rows), not
        the distribution name. Its tasks run in that version's worker; the install directory is
        re-created from the database on first use when this machine lacks it.
        """
        with self.database.read("looking up a registered workflow") as conn:
            found = q.find_registered_workflow(conn, workflow_package=package, workflow=workflow, version=version)
            shas = {(n, v): q.get_package(conn, name=n, version=v) for n, v in found}
        key = f"{package}::{workflow}"
        if not found:
            what = f"version {version}" if version else "an active version"
            raise WorkflowNotFoundError(
                f"No registered package offers workflow {key!r} at {what} in tenant {self.tenant!r}. "
                "See `cloacina-ctl packages list`.",
                name=key,
                known=[],
            )
        if len(found) > 1:
            sources = [f"registered {n} {v}" for n, v in found]
            raise WorkflowConflictError(
                f"Workflow {key!r} is offered by several registered packages: {', '.join(sources)}. "
                "Deactivate or remove all but one.",
                name=key,
                sources=sources,
            )
        name, ver = found[0]
        record = shas[(name, ver)]
        assert record is not None
        for entry in self._entries_for(name, ver, record.archive_sha256):
            if entry.key == key:
                return entry
        raise WorkflowNotFoundError(f"Workflow {key!r} vanished from {name} {ver} meanwhile.", name=key, known=[])

    def catalog(self, *, installed: bool = False) -> WorkflowCatalog:
        """A catalog offering this registry's active workflows (and, ``installed``, every installed plugin's)."""
        catalog = discover() if installed else WorkflowCatalog()
        catalog.add_source(self)
        return catalog

    def __repr__(self) -> str:
        return f"<Registry tenant={self.tenant!r} {self.database_url or 'default database'}>"
