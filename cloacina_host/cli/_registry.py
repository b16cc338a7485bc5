"""``cloacina-ctl register`` and ``cloacina-ctl packages``: the registry of the tenant (``--tenant``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from .._defaults import DEFAULT_LOAD_TIMEOUT_S
from . import _complete as complete
from ._client import path, query
from ._common import Settings, global_options, pass_settings, print_json
from ._streams import package_output_to_stderr
from ._text import local_time, safe_cell, safe_text

if TYPE_CHECKING:
    from .._registry import Registry
    from ._client import Client


def _registry(settings: Settings, load_timeout_s: float | None = None, *, read_only: bool = False) -> Registry:
    """The tenant's registry over the command's one database (read-only for commands that only read)."""
    from .._registry import Registry

    kwargs = {} if load_timeout_s is None else {"load_timeout_s": load_timeout_s}
    return Registry(
        settings.database_url,
        home=settings.home,
        tenant=settings.tenant,
        database_opener=lambda: settings.database(read_only=read_only),
        **kwargs,
    )


@click.command("register")
@click.argument("archive", type=click.Path(dir_okay=False), metavar="FILE")
@click.option("--force", is_flag=True, help="Replace a registered version that has different bytes.")
@click.option(
    "--activate/--no-activate",
    default=None,
    help="Make this version active (or not) [default: when the package has no active version or this one is newer].",
)
@click.option(
    "--load-timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_LOAD_TIMEOUT_S,
    help="Seconds allowed for loading the package's entry points in a fresh worker "
    f"[default: {DEFAULT_LOAD_TIMEOUT_S:g}].",
)
@global_options
@pass_settings
def register_command(settings: Settings, archive: str, force: bool, activate: bool | None, load_timeout: float) -> None:
    """Register the .cloacina archive FILE in the tenant's registry.

    The archive is checked (as `validate` does), stored in the database, installed under
    <home>/packages/<sha256> and loaded in a fresh worker, whose workflows and fingerprints must match
    the manifest; only then does the version become active. On any failure nothing is changed.
    The same bytes again is a no-op; different bytes under a registered version need --force.
    Every signature must verify over the manifest; a signature by a key the tenant revoked is
    refused, and under `tenants policy TENANT --require-signatures` one by a trusted key is needed.
    Steps go to stderr; the result to stdout.
    """
    step = 0

    def say(message: str) -> None:
        nonlocal step
        step += 1
        settings.err.print(f"[{step}] {message}", markup=False, highlight=False)

    client = settings.remote()
    if client is not None:
        view = _upload(client, archive, force=force, activate=activate)
    else:
        registry = _registry(settings, load_timeout)
        try:
            with package_output_to_stderr():  # loading the package runs its code
                view = registry.register(archive, force=force, activate=activate, progress=say).to_json()
        finally:
            registry.close()
    if settings.json:
        print_json(view)
        return
    verb = {"registered": "Registered", "replaced": "Replaced", "unchanged": "Already registered:"}[view["status"]]
    state = "active" if view["active"] else f"not active (active: {view['previous_active'] or 'none'})"
    line = functools.partial(settings.out.print, markup=False, highlight=False)
    line(safe_text(f"{verb} {view['name']} {view['version']} in tenant {view['tenant']!r}, {state}"))
    for wf in view["workflows"]:
        line(safe_text(f"  {wf['name']}: {' → '.join(wf['tasks'])}"))
    if view["signed_by"]:
        line(f"  signed by {_signers(view['signed_by'])}")


def _upload(client: Client, archive: str, *, force: bool, activate: bool | None) -> dict[str, Any]:
    """``register`` through the server: the archive read (and refused) as here, then sent as the body."""
    from .._packaging._source import read_archive_file

    data = read_archive_file(archive)
    params = query({"force": force, "activate": activate, "filename": archive[-200:]})
    headers = {"Content-Type": "application/octet-stream"}
    return dict(client.request("POST", path("packages"), content=data, params=params, headers=headers))


def _signers(signers: list[dict[str, Any]]) -> str:
    """Signers of a version as text: ``NAME (FINGERPRINT16, STANDING)``, as ``VersionSigner.text`` gives it."""
    from .._registry._trust import short

    return ", ".join(f"{s['name']} ({short(s['fingerprint'])}, {s['trust']})" for s in signers)


@click.group("packages")
def packages_group() -> None:
    """Registered packages: list, show, activate a version (roll back), deactivate, remove."""


def _versions_text(p: dict[str, Any]) -> str:
    return ", ".join(f"{v}*" if v == p["active_version"] else v for v in p["versions"])


def _remote_or(settings: Settings, remote: Callable[[Client], Any], local: Callable[[Registry], Any]) -> Any:
    """The JSON view from the server (``--server``), else from the tenant's registry here."""
    client = settings.remote()
    if client is not None:
        return remote(client)
    registry = _registry(settings, read_only=False)
    try:
        return local(registry)
    finally:
        registry.close()


@packages_group.command("list")
@global_options
@pass_settings
def list_command(settings: Settings) -> None:
    """List the tenant's registered packages: versions (* marks the active one) and workflows."""
    client = settings.remote()
    if client is not None:
        view = client.get(path("packages"))
    else:
        registry = _registry(settings, read_only=True)
        try:
            view = {"tenant": settings.tenant, "packages": [p.to_json() for p in registry.list_packages()]}
        finally:
            registry.close()
    if settings.json:
        print_json(view)
        return
    packages = view["packages"]
    if not packages:
        settings.out.print(
            f"No packages registered in tenant {view['tenant']!r}. Register one: cloacina-ctl register FILE",
            markup=False,
        )
        return
    table = Table(box=None, pad_edge=False)
    for column in ("PACKAGE", "ACTIVE", "VERSIONS", "WORKFLOWS"):  # wrapped between names, never inside one
        table.add_column(column, no_wrap=column != "WORKFLOWS", overflow="ellipsis")
    for p in packages:
        table.add_row(
            safe_cell(p["name"]),
            safe_cell(p["active_version"] or "-"),
            safe_cell(_versions_text(p)),
            safe_cell(", ".join(p["workflows"])),
        )
    settings.out.print(table)


@packages_group.command("show")
@click.argument("name", shell_complete=complete.packages)
@global_options
@pass_settings
def show_command(settings: Settings, name: str) -> None:
    """Show package NAME: every version, the active one, who signed each, workflows, tasks and unfinished executions.

    A signer is shown with its key's name, fingerprint and standing in the tenant now (trusted,
    revoked, not trusted).
    """
    client = settings.remote()
    if client is not None:
        info = client.get(path("packages", name))
    else:
        registry = _registry(settings, read_only=True)
        try:
            info = registry.show(name).to_json(detail=True)
        finally:
            registry.close()
    if settings.json:
        print_json(info)
        return

    def line(text: str) -> None:
        settings.out.print(safe_text(text), markup=False, highlight=False)

    line(f"Package {info['name']} (tenant {info['tenant']!r})")
    line(f"  active    {info['active_version'] or 'none (deactivated)'}")
    for v in info["versions"]:
        mark = " (active)" if v["active"] else ""
        line(f"  version {v['version']}{mark}")
        line(f"    registered  {local_time(v['registered_at'])}")
        line(f"    archive     {v['size']:,} bytes, sha256 {v['sha256']}")
        line(f"    running     {v['running_executions']} unfinished execution(s)")
        line(f"    signed by   {_signers(v['signed_by']) or 'nobody (unsigned)'}")
        for wf in v["workflows"]:
            line(f"    workflow    {wf['name']}: {' → '.join(wf['tasks'])}")
            line(f"                {wf['fingerprint']}")


@packages_group.command("activate")
@click.argument("requirement", metavar="NAME==VERSION", shell_complete=complete.package_versions)
@global_options
@pass_settings
def activate_command(settings: Settings, requirement: str) -> None:
    """Make NAME==VERSION the version new executions use (roll back or forward), without a restart.

    The version is loaded in a fresh worker first; if that fails, the active version stays.
    Executions already running finish on the version they started with.
    """
    from .._registry import parse_requirement

    name, version = parse_requirement(requirement)

    def local(registry: Registry) -> Any:
        with package_output_to_stderr():  # loading the package runs its code
            return registry.activate(name, version).to_json()

    result = _remote_or(settings, lambda c: c.post(path("packages", name, "versions", version, "activate")), local)
    if settings.json:
        print_json(result)
        return
    previous = result["previous"]
    was = f" (was {previous})" if previous and previous != version else ""
    settings.out.print(
        f"{result['name']} {version} is active in tenant {result['tenant']!r}{was}", markup=False, highlight=False
    )


@packages_group.command("deactivate")
@click.argument("name", shell_complete=complete.packages)
@global_options
@pass_settings
def deactivate_command(settings: Settings, name: str) -> None:
    """Leave package NAME without an active version: its workflows are no longer offered (versions stay)."""
    result = _remote_or(
        settings, lambda c: c.post(path("packages", name, "deactivate")), lambda r: r.deactivate(name).to_json()
    )
    if settings.json:
        print_json(result)
        return
    settings.out.print(
        f"{result['name']} has no active version now (was {result['previous'] or 'none'}); activate one with "
        f"cloacina-ctl packages activate {result['name']}==VERSION",
        markup=False,
        highlight=False,
    )


@packages_group.command("remove")
@click.argument("requirement", metavar="NAME==VERSION", shell_complete=complete.package_versions)
@click.option("--force", is_flag=True, help="Remove it even while unfinished executions still use it.")
@global_options
@pass_settings
def remove_command(settings: Settings, requirement: str, force: bool) -> None:
    """Remove version VERSION of package NAME from the tenant's registry.

    Refused while executions still run on it (their count is given), unless --force. Removing the
    active version leaves the package without one.
    """
    from .._registry import parse_requirement

    name, version = parse_requirement(requirement)
    result = _remote_or(
        settings,
        lambda c: c.delete(path("packages", name, "versions", version), force=force),
        lambda r: r.remove(name, version, force=force).to_json(),
    )
    if settings.json:
        print_json(result)
        return
    note = (
        f"; it was active, so {result['name']} has no active version now (cloacina-ctl packages activate "
        f"{result['name']}==VERSION)"
        if result["was_active"]
        else ""
    )
    settings.out.print(
        f"Removed {result['name']} {version} from tenant {result['tenant']!r}{note}", markup=False, highlight=False
    )
