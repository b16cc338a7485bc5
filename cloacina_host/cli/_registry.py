"""``cloacina-ctl register`` and ``cloacina-ctl packages``: the registry of the tenant (``--tenant``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click
from rich.table import Table

from .._defaults import DEFAULT_LOAD_TIMEOUT_S
from . import _complete as complete
from ._common import Settings, global_options, pass_settings, print_json
from ._streams import package_output_to_stderr
from ._text import safe_cell, safe_text

if TYPE_CHECKING:
    from .._registry import PackageInfo, Registry


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


def _local(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


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

    registry = _registry(settings, load_timeout)
    try:
        with package_output_to_stderr():  # loading the package runs its code
            result = registry.register(archive, force=force, activate=activate, progress=say)
    finally:
        registry.close()
    if settings.json:
        print_json(result.to_json())
        return
    verb = {"registered": "Registered", "replaced": "Replaced", "unchanged": "Already registered:"}[result.status]
    state = "active" if result.active else f"not active (active: {result.previous_active or 'none'})"
    settings.out.print(
        safe_text(f"{verb} {result.name} {result.version} in tenant {result.tenant!r}, {state}"),
        markup=False,
        highlight=False,
    )
    for wf in result.workflows:
        settings.out.print(safe_text(f"  {wf.key}: {' → '.join(wf.tasks)}"), markup=False, highlight=False)
    if result.signers:
        settings.out.print(f"  signed by {', '.join(s.text() for s in result.signers)}", markup=False, highlight=False)


@click.group("packages")
def packages_group() -> None:
    """Registered packages: list, show, activate a version (roll back), deactivate, remove."""


def _versions_text(info: PackageInfo) -> str:
    return ", ".join(f"{v.version}*" if v.active else v.version for v in info.versions)


@packages_group.command("list")
@global_options
@pass_settings
def list_command(settings: Settings) -> None:
    """List the tenant's registered packages: versions (* marks the active one) and workflows."""
    registry = _registry(settings, read_only=True)
    try:
        packages = registry.list_packages()
    finally:
        registry.close()
    if settings.json:
        print_json({"tenant": settings.tenant, "packages": [p.to_json() for p in packages]})
        return
    if not packages:
        settings.out.print(
            f"No packages registered in tenant {settings.tenant!r}. Register one: cloacina-ctl register FILE",
            markup=False,
        )
        return
    table = Table(box=None, pad_edge=False)
    for column in ("PACKAGE", "ACTIVE", "VERSIONS", "WORKFLOWS"):  # wrapped between names, never inside one
        table.add_column(column, no_wrap=column != "WORKFLOWS", overflow="ellipsis")
    for p in packages:
        shown = p.active or p.versions[-1]
        table.add_row(
            safe_cell(p.name),
            safe_cell(p.active_version or "-"),
            safe_cell(_versions_text(p)),
            safe_cell(", ".join(w.key for w in shown.workflows)),
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
    registry = _registry(settings, read_only=True)
    try:
        info = registry.show(name)
    finally:
        registry.close()
    if settings.json:
        print_json(info.to_json(detail=True))
        return

    def line(text: str) -> None:
        settings.out.print(safe_text(text), markup=False, highlight=False)

    line(f"Package {info.name} (tenant {info.tenant!r})")
    line(f"  active    {info.active_version or 'none (deactivated)'}")
    for v in info.versions:
        mark = " (active)" if v.active else ""
        line(f"  version {v.version}{mark}")
        line(f"    registered  {_local(v.registered_at)}")
        line(f"    archive     {v.size:,} bytes, sha256 {v.sha256}")
        line(f"    running     {v.running} unfinished execution(s)")
        line(f"    signed by   {', '.join(s.text() for s in v.signers) or 'nobody (unsigned)'}")
        for wf in v.workflows:
            line(f"    workflow    {wf.key}: {' → '.join(wf.tasks)}")
            line(f"                {wf.fingerprint}")


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
    registry = _registry(settings)
    try:
        with package_output_to_stderr():  # loading the package runs its code
            result = registry.activate(name, version)
    finally:
        registry.close()
    if settings.json:
        print_json(result.to_json())
        return
    was = f" (was {result.previous})" if result.previous and result.previous != version else ""
    settings.out.print(
        f"{result.name} {version} is active in tenant {result.tenant!r}{was}", markup=False, highlight=False
    )


@packages_group.command("deactivate")
@click.argument("name", shell_complete=complete.packages)
@global_options
@pass_settings
def deactivate_command(settings: Settings, name: str) -> None:
    """Leave package NAME without an active version: its workflows are no longer offered (versions stay)."""
    registry = _registry(settings)
    try:
        result = registry.deactivate(name)
    finally:
        registry.close()
    if settings.json:
        print_json(result.to_json())
        return
    settings.out.print(
        f"{result.name} has no active version now (was {result.previous or 'none'}); activate one with "
        f"cloacina-ctl packages activate {result.name}==VERSION",
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
    registry = _registry(settings)
    try:
        result = registry.remove(name, version, force=force)
    finally:
        registry.close()
    if settings.json:
        print_json(result.to_json())
        return
    note = (
        f"; it was active, so {result.name} has no active version now (cloacina-ctl packages activate "
        f"{result.name}==VERSION)"
        if result.was_active
        else ""
    )
    settings.out.print(
        f"Removed {result.name} {version} from tenant {result.tenant!r}{note}", markup=False, highlight=False
    )
