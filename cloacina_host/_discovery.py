"""Discovery: find workflows in installed distributions through pluggy, and name them.

Every ``cloacina.workflows`` entry point of the environment is loaded and registered with a
``pluggy.PluginManager("cloacina")`` under the name ``<distribution>:<entry point>``. Workflows are
collected by calling each plugin's ``cloacina_workflows`` hook. A plugin that fails in any way is
recorded as a ``PluginLoadError`` (distribution, entry point, cause) and never stops the others.

Entry points are read through the ``importlib_metadata`` distribution (the same code on every
Python from 3.10 to 3.13, unlike the standard library's ``importlib.metadata``), imported on first
use. The scan of installed distributions is done once per process and search path and cached
(``installed_entry_points``); a process that installs something and must see it calls
``invalidate_entry_point_cache()`` (or passes ``refresh=True``). Each ``discover`` still builds a
fresh plugin manager and loads the plugins into it. ``discover_async`` runs it off the event loop.
"""

from __future__ import annotations

import asyncio
import difflib
import importlib
import logging
import os
import re
import sys
import threading
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

import pluggy

from cloacina_workflow import DEFAULT_TENANT, EMBEDDED_PACKAGE, Workflow, hookspecs

from ._errors import (
    AmbiguousWorkflowError,
    PluginLoadError,
    WorkflowConflictError,
    WorkflowNotFoundError,
)

if TYPE_CHECKING:
    import importlib_metadata

log = logging.getLogger("cloacina_host.discovery")
# Problems are returned in ``WorkflowCatalog.problems`` for the caller to report; without a handler of
# our own, logging's last-resort handler would print each one to stderr a second time, unprefixed.
log.addHandler(logging.NullHandler())

ENTRY_POINT_GROUP = "cloacina.workflows"
DISABLE_ENV = "CLOACINA_DISABLE_PLUGINS"

SourceKind = Literal["embedded", "installed", "registered"]


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, finding the hook implementations of a plugin object's class once per class.

    pluggy looks at every attribute of every plugin it registers with ``inspect.getattr_static``
    (about 1 ms for a ``Workflow``, which has some 50 attributes: most of discovering 100 plugins).
    An attribute found on the class is marked or not whatever the instance, so which names of a
    class carry a marker is read once; the instance's own attributes and modules and classes
    registered as plugins are looked at as pluggy does.
    """

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        if not isinstance(plugin, type) and not isinstance(plugin, types.ModuleType):
            own = _instance_dict(plugin)
            if name not in own and name not in _marked_names(type(plugin), self.project_name):
                return None
        return super().parse_hookimpl_opts(plugin, name)


def _instance_dict(obj: object) -> dict[str, object]:
    try:
        found = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return {}
    return found if isinstance(found, dict) else {}


_marked: dict[tuple[type, str], frozenset[str]] = {}


def _marked_names(cls: type, project_name: str) -> frozenset[str]:
    """Names of ``cls`` whose attribute, looked up on the class, carries a hook implementation marker."""
    found = _marked.get((cls, project_name))
    if found is None:
        probe = pluggy.PluginManager(project_name)
        found = frozenset(name for name in dir(cls) if probe.parse_hookimpl_opts(cls, name) is not None)
        _marked[(cls, project_name)] = found
    return found


def make_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager that knows Cloacina's hook specifications."""
    pm = _PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def normalize(name: str) -> str:
    """PEP 503 normalisation, so ``Simple_Packaged.Demo`` and ``simple-packaged-demo`` match."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class WorkflowSource:
    """Where a workflow comes from."""

    kind: SourceKind
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None

    def describe(self) -> str:
        if self.kind == "embedded":
            return "embedded"
        return f"{self.kind} {self.distribution} {self.version} (entry point {self.entry_point!r})"


@dataclass(frozen=True)
class CatalogEntry:
    """A workflow the host can run, with its package name and source.

    ``fingerprint`` is the workflow's ``Workflow.fingerprint()`` when known without running code (a
    registered package's manifest records it); executions store it with the package version.
    """

    workflow: Workflow
    package: str
    source: WorkflowSource
    fingerprint: str | None = None

    @property
    def key(self) -> str:
        """``package::workflow``: unique within a tenant."""
        return f"{self.package}::{self.workflow.name}"

    def namespace(self, tenant: str = DEFAULT_TENANT) -> str:
        return f"{tenant}::{self.key}"


class CatalogSource(Protocol):
    """Workflows that change while the host runs (the registry's active versions), asked on each lookup."""

    def catalog_entries(self) -> list[CatalogEntry]:
        """The entries offered now (may read storage: call it off the event loop)."""

    async def aclose(self) -> None:
        """Release what the entries use on the running event loop (worker processes)."""


def _add_entry(entries: dict[str, CatalogEntry], conflicts: dict[str, list[CatalogEntry]], entry: CatalogEntry) -> None:
    if entry.key in conflicts:
        conflicts[entry.key].append(entry)
        return
    existing = entries.get(entry.key)
    if existing is None:
        entries[entry.key] = entry
        return
    if existing.workflow is entry.workflow and existing.source == entry.source:
        return
    del entries[entry.key]
    conflicts[entry.key] = [existing, entry]


@dataclass
class WorkflowCatalog:
    """Every workflow the host knows, by ``package::workflow``, with the problems met finding them.

    ``entries`` and ``conflicts`` hold the fixed workflows (embedded and installed); ``sources`` add
    those that change while the host runs (registered packages), merged in by ``snapshot()``.
    """

    plugin_manager: pluggy.PluginManager = field(default_factory=make_plugin_manager)
    entries: dict[str, CatalogEntry] = field(default_factory=dict)
    conflicts: dict[str, list[CatalogEntry]] = field(default_factory=dict)
    problems: list[PluginLoadError] = field(default_factory=list)
    sources: list[CatalogSource] = field(default_factory=list)
    #: The tenant whose workflows these are, checked against ``TENANT::PACKAGE::WORKFLOW`` names; None:
    #: the tenant of the first source that has one (a ``Registry``), else not checked.
    tenant: str | None = None

    @property
    def current_tenant(self) -> str | None:
        """The tenant a ``TENANT::...`` name must name (see ``tenant``)."""
        if self.tenant is not None:
            return self.tenant
        for source in self.sources:
            found = getattr(source, "tenant", None)
            if isinstance(found, str):
                return found
        return None

    def add(self, entry: CatalogEntry) -> None:
        """Add ``entry``; a second entry with the same key makes that key a conflict (and unusable)."""
        _add_entry(self.entries, self.conflicts, entry)

    def add_source(self, source: CatalogSource) -> None:
        """Add a source of workflows asked on every lookup (e.g. a ``Registry``)."""
        self.sources.append(source)

    def snapshot(self) -> tuple[dict[str, CatalogEntry], dict[str, list[CatalogEntry]]]:
        """Entries and conflicts now, the sources' current entries included (reads storage when there are sources)."""
        if not self.sources:
            return self.entries, self.conflicts
        entries = dict(self.entries)
        conflicts = {key: list(found) for key, found in self.conflicts.items()}
        for source in self.sources:
            for entry in source.catalog_entries():
                _add_entry(entries, conflicts, entry)
        return entries, conflicts

    async def aclose(self) -> None:
        """Let every source release what it holds on the running event loop."""
        for source in self.sources:
            await source.aclose()

    def add_workflow(self, wf: Workflow, package: str | None = None) -> CatalogEntry:
        """Add an embedded workflow (defined in the host application's own code)."""
        entry = CatalogEntry(wf, package or wf.package or EMBEDDED_PACKAGE, WorkflowSource("embedded"))
        self.add(entry)
        return entry

    def conflict_error(self, key: str, conflicts: dict[str, list[CatalogEntry]] | None = None) -> WorkflowConflictError:
        found = (conflicts if conflicts is not None else self.conflicts)[key]
        sources = [e.source.describe() for e in found]
        registered = [e for e in found if e.source.kind == "registered"]
        hint = (
            " Or remove the registered version (cloacina-ctl packages remove NAME==VERSION) or deactivate it "
            "(cloacina-ctl packages deactivate NAME)."
            if registered
            else ""
        )
        return WorkflowConflictError(
            f"Workflow {key!r} is offered by more than one source: {'; '.join(sources)}. "
            "Uninstall one of them, or block one with --disable-plugin DISTRIBUTION "
            f"(or {DISABLE_ENV}=DISTRIBUTION).{hint}",
            name=key,
            sources=sources,
        )

    def resolve(self, name: str, *, tenant: str | None = None) -> CatalogEntry:
        """Find a workflow by ``workflow``, ``package::workflow`` or ``tenant::package::workflow``.

        A name with a tenant must name ``tenant`` (default: ``current_tenant``): a workflow of another
        tenant is never found here (``WorkflowNotFoundError`` naming both tenants).
        """
        check_tenant_of(name, tenant if tenant is not None else self.current_tenant)
        entries, conflicts = self.snapshot()
        return self._resolve(name, entries, conflicts)

    def _resolve(
        self, name: str, entries: dict[str, CatalogEntry], conflicts: dict[str, list[CatalogEntry]]
    ) -> CatalogEntry:
        parts = name.split("::")
        if len(parts) == 3:
            parts = parts[1:]
        if len(parts) == 2:
            key = "::".join(parts)
            if key in conflicts:
                raise self.conflict_error(key, conflicts)
            if key in entries:
                return entries[key]
        elif len(parts) == 1:
            matches = [k for k, e in entries.items() if e.workflow.name == name]
            matches += [k for k in conflicts if k.split("::")[1] == name]
            if len(matches) == 1:
                return self._resolve(matches[0], entries, conflicts)
            if len(matches) > 1:
                raise AmbiguousWorkflowError(
                    f"Workflow name {name!r} is ambiguous; it exists in several packages: "
                    f"{', '.join(sorted(matches))}. Name it as PACKAGE::WORKFLOW.",
                    name=name,
                    candidates=sorted(matches),
                )
        known = sorted(set(entries) | set(conflicts))
        failed = sorted({f"{p.distribution}:{p.entry_point}" for p in self.problems})
        hint = f" Plugins that failed to load (it may be in one of them): {', '.join(failed)}." if failed else ""
        close = _closest(name, known)
        did_you_mean = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise WorkflowNotFoundError(
            f"No workflow named {name!r}.{did_you_mean} "
            f"Known workflows: {', '.join(known) if known else '(none)'}.{hint} "
            "Install a workflow package (pip install ...) or check `cloacina-ctl workflows list`.",
            name=name,
            known=known,
        )


def _closest(name: str, known: list[str]) -> list[str]:
    """The known ``package::workflow`` names closest to ``name`` (by the whole key or the workflow's name)."""
    wanted = "::".join(name.split("::")[-2:])  # a tenant's prefix aside
    by_name = {k.split("::")[1]: k for k in known}
    found = difflib.get_close_matches(wanted, known, n=3, cutoff=0.6)
    found += [by_name[m] for m in difflib.get_close_matches(wanted, list(by_name), n=3, cutoff=0.6)]
    return list(dict.fromkeys(found))[:3]


def check_tenant_of(name: str, tenant: str | None) -> None:
    """Refuse ``TENANT::PACKAGE::WORKFLOW`` when TENANT is not ``tenant`` (None: any tenant is accepted)."""
    parts = name.split("::")
    if tenant is None or len(parts) != 3 or parts[0] == tenant:
        return
    other, key = parts[0], "::".join(parts[1:])
    raise WorkflowNotFoundError(
        f"Workflow {name!r} belongs to tenant {other!r}, not to tenant {tenant!r} that this command works in; "
        f"a tenant never sees another's workflows. Use --tenant {other!r} to work in that tenant, or name "
        f"it {key!r} for tenant {tenant!r}'s own.",
        name=name,
        known=[],
    )


def disabled_from_env(environ: dict[str, str] | None = None) -> list[str]:
    value = (environ if environ is not None else os.environ).get(DISABLE_ENV, "")
    return [part.strip() for part in value.split(",") if part.strip()]


def _is_blocked(blocked: set[str], dist_name: str, ep_name: str) -> bool:
    return bool(blocked & {normalize(dist_name), normalize(ep_name), f"{normalize(dist_name)}:{normalize(ep_name)}"})


class _Distribution(Protocol):
    """What discovery reads of an ``importlib_metadata`` distribution (its class differs by version)."""

    def read_text(self, filename: str) -> str | None: ...

    @property
    def metadata(self) -> importlib_metadata.PackageMetadata | None: ...

    @property
    def entry_points(self) -> importlib_metadata.EntryPoints: ...


@dataclass(frozen=True)
class InstalledEntryPoint:
    """One ``cloacina.workflows`` entry point of an installed distribution, as its metadata declares it."""

    distribution: str
    version: str | None
    name: str
    value: str
    entry_point: importlib_metadata.EntryPoint = field(compare=False, repr=False)

    def load(self) -> object:
        """Import the entry point's module and return the object it names."""
        return self.entry_point.load()


#: Scans of installed distributions, by search path (the directories, in order).
_scans: dict[tuple[str, ...], tuple[InstalledEntryPoint, ...]] = {}
_scans_lock = threading.Lock()


def invalidate_entry_point_cache() -> None:
    """Forget every scan of installed distributions (and the import system's directory caches).

    Call it after installing or removing distributions in a running process that must see the
    change: the next ``discover`` (or ``installed_entry_points``) reads the metadata again.
    """
    with _scans_lock:
        _scans.clear()
    importlib.invalidate_caches()


def installed_entry_points(
    path: Sequence[str] | None = None, *, refresh: bool = False
) -> tuple[InstalledEntryPoint, ...]:
    """The ``cloacina.workflows`` entry points installed on ``path`` (default ``sys.path``).

    Sorted by distribution, then entry point; of several distributions of one name (shadowed on the
    path), the first wins. Read once per process and search path; ``refresh`` reads again.
    """
    key = tuple(path) if path is not None else tuple(sys.path)
    with _scans_lock:
        if refresh:
            _scans.pop(key, None)
            importlib.invalidate_caches()
        found = _scans.get(key)
        if found is None:
            found = _scans[key] = _scan(list(key))
    return found


def _scan(search: list[str]) -> tuple[InstalledEntryPoint, ...]:
    """Read the entry points of every distribution on ``search``; parse METADATA only where they are ours.

    Of several distributions of one name the first valid one (with a METADATA naming it) wins, as
    ``importlib_metadata.entry_points()`` decides; a distribution that declares no entry point of the
    group is only read further if a later one of the same name does.
    """
    import importlib_metadata  # on first use: commands that discover nothing never pay for it

    seen: set[str] = set()  # normalised names of the valid distributions met so far
    unread: dict[str, list[_Distribution]] = {}  # not ours, by their directory's name
    found: list[InstalledEntryPoint] = []
    for dist in importlib_metadata.distributions(path=search):
        key = _directory_key(dist)
        if key is not None:
            if key in seen:
                continue
            if ENTRY_POINT_GROUP not in (dist.read_text("entry_points.txt") or ""):
                unread.setdefault(key, []).append(dist)
                continue
        name, version = _name_and_version(dist)
        if name is None:
            continue
        earlier = unread.pop(normalize(name), [])
        shadowed = normalize(name) in seen or any(_name_and_version(d)[0] is not None for d in earlier)
        seen.add(normalize(name))
        if shadowed:
            continue
        for ep in dist.entry_points.select(group=ENTRY_POINT_GROUP):
            found.append(InstalledEntryPoint(name, version, ep.name, ep.value, ep))
    found.sort(key=lambda ep: (normalize(ep.distribution), ep.name))
    return tuple(found)


def _directory_key(dist: _Distribution) -> str | None:
    """The normalised name in the distribution's ``.dist-info``/``.egg-info`` directory name (no file read)."""
    try:  # what importlib_metadata's own entry_points() deduplicates on
        stem_name = getattr(dist, "_normalized_name", None)
    except (KeyError, TypeError, FileNotFoundError):  # no name in the directory's: it reads METADATA
        return None
    return normalize(stem_name) if isinstance(stem_name, str) and stem_name else None


def _name_and_version(dist: _Distribution) -> tuple[str | None, str | None]:
    try:
        meta = dist.metadata  # None (8.7) or MetadataNotFound (9+) without a METADATA file
    except FileNotFoundError:
        return None, None
    if meta is None:
        return None, None
    return meta.get("Name") or None, meta.get("Version")


def _collect(catalog: WorkflowCatalog, plugin: object, source: WorkflowSource) -> None:
    """Call the ``cloacina_workflows`` implementations of ``plugin`` and add what they return."""
    assert source.distribution is not None
    assert source.entry_point is not None
    pm = catalog.plugin_manager
    impls = [impl for impl in pm.hook.cloacina_workflows.get_hookimpls() if impl.plugin is plugin]
    package_default = source.distribution.replace("-", "_").replace(".", "_").lower()
    for impl in impls:
        try:
            result = impl.function()
        except Exception as exc:  # noqa: BLE001  # any failure of plugin code is reported, not raised
            err = PluginLoadError(
                f"Plugin {source.distribution}:{source.entry_point} raised in cloacina_workflows(): "
                f"{type(exc).__name__}: {exc}",
                distribution=source.distribution,
                entry_point=source.entry_point,
            )
            err.__cause__ = exc
            catalog.problems.append(err)
            continue
        items = list(result) if isinstance(result, (list, tuple)) else [result]
        for item in items:
            if not isinstance(item, Workflow):
                catalog.problems.append(
                    PluginLoadError(
                        f"Plugin {source.distribution}:{source.entry_point} returned {type(item).__name__} "
                        f"{item!r:.80} from cloacina_workflows(), not a Workflow. Return the object made "
                        "by @workflow (or a list of them).",
                        distribution=source.distribution,
                        entry_point=source.entry_point,
                    )
                )
                continue
            catalog.add(CatalogEntry(item, item.package or package_default, source))


def discover(
    *,
    disabled: Iterable[str] = (),
    path: Sequence[str] | None = None,
    catalog: WorkflowCatalog | None = None,
    refresh: bool = False,
) -> WorkflowCatalog:
    """Load every ``cloacina.workflows`` entry point and return the catalog of workflows found.

    ``disabled`` names plugins not to load (distribution, entry point or ``dist:entry-point``); the
    ``CLOACINA_DISABLE_PLUGINS`` environment variable adds to it. ``path`` searches those
    directories instead of ``sys.path`` (and makes them importable). The installed entry points are
    read once per process and search path; ``refresh`` reads them again (see
    ``invalidate_entry_point_cache``). This imports plugin code: from async code, use
    ``discover_async``.
    """
    catalog = catalog if catalog is not None else WorkflowCatalog()
    pm = catalog.plugin_manager
    blocked = {normalize(b) if ":" not in b else ":".join(map(normalize, b.split(":", 1))) for b in disabled}
    blocked |= {normalize(b) for b in disabled_from_env()}
    if path is not None:
        for entry in reversed(path):
            if entry not in sys.path:
                sys.path.insert(0, entry)
    for ep in installed_entry_points(path, refresh=refresh):
        dist_name = ep.distribution
        plugin_name = f"{dist_name}:{ep.name}"
        source = WorkflowSource("installed", dist_name, ep.version, ep.name)
        if _is_blocked(blocked, dist_name, ep.name):
            pm.set_blocked(plugin_name)
            log.info("plugin %s is disabled", plugin_name)
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=plugin_name)
            pm.check_pending()
            if not pm.get_hookcallers(plugin):  # else it would be registered and silently offer nothing
                raise pluggy.PluginValidationError(
                    plugin,
                    f"{ep.value} is {plugin!r:.100}, which implements no Cloacina hook. Point the "
                    "entry point at a Workflow made by @workflow, or mark the module's cloacina_workflows() "
                    "function with @hookimpl.",
                )
        except Exception as exc:  # noqa: BLE001  # import errors, bad hookimpls: report, go on
            if pm.has_plugin(plugin_name):
                pm.unregister(name=plugin_name)
            err = PluginLoadError(
                f"Plugin {plugin_name} (distribution {dist_name} {ep.version}, entry point "
                f"{ep.name} = {ep.value}) failed to load: {type(exc).__name__}: {exc}",
                distribution=dist_name,
                entry_point=ep.name,
            )
            err.__cause__ = exc
            catalog.problems.append(err)
            continue
        _collect(catalog, plugin, source)
    for problem in catalog.problems:
        log.warning("%s", problem)
    return catalog


async def discover_async(
    *,
    disabled: Iterable[str] = (),
    path: Sequence[str] | None = None,
    catalog: WorkflowCatalog | None = None,
    refresh: bool = False,
) -> WorkflowCatalog:
    """``discover`` in a worker thread, so that reading metadata and importing plugins never blocks the loop."""
    return await asyncio.to_thread(discover, disabled=list(disabled), path=path, catalog=catalog, refresh=refresh)
