"""Shell completion of the names arguments take: workflows, packages (``NAME`` and ``NAME==VERSION``), executions.

Enable it with ``eval "$(_CLOACINA_CTL_COMPLETE=bash_source cloacina-ctl)"`` (``zsh_source``,
``fish_source`` for those shells). Each function reads what the command would read, read-only, and
offers nothing rather than an error when it cannot (no database yet, a bad URL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import click
from click.shell_completion import CompletionItem

from ._common import Settings

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _settings(ctx: click.Context) -> Settings:
    return ctx.ensure_object(Settings)


def _offer(names: Iterable[str], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(name) for name in sorted(set(names)) if name.startswith(incomplete)]


def workflows(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Workflow names (``NAME`` when unique, and every ``PACKAGE::NAME``) the command could run."""
    try:
        entries, conflicts = _settings(ctx).catalog(read_only=True).snapshot()
    except Exception:  # noqa: BLE001  # completion offers nothing rather than fail in the shell
        return []
    keys = [*entries, *conflicts]
    names = [key.split("::")[1] for key in keys]
    unique = [name for name in names if names.count(name) == 1]
    return _offer([*keys, *unique], incomplete)


def _packages(ctx: click.Context) -> list[tuple[str, list[str]]]:
    from .._registry import Registry

    settings = _settings(ctx)
    registry = Registry(
        settings.database_url,
        home=settings.home,
        tenant=settings.tenant,
        database_opener=lambda: settings.database(read_only=True),
    )
    try:
        return [(p.name, [v.version for v in p.versions]) for p in registry.list_packages()]
    finally:
        registry.close()


def packages(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Registered package names of the tenant."""
    try:
        return _offer([name for name, _versions in _packages(ctx)], incomplete)
    except Exception:  # noqa: BLE001  # completion offers nothing rather than fail in the shell
        return []


def package_versions(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``NAME==VERSION`` of every registered version of the tenant."""
    try:
        return _offer([f"{name}=={v}" for name, versions in _packages(ctx) for v in versions], incomplete)
    except Exception:  # noqa: BLE001  # completion offers nothing rather than fail in the shell
        return []


def executions(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The ids of the tenant's latest executions (newest first), with their workflow and status as help."""
    from .._engine._history import list_executions

    settings = _settings(ctx)
    try:
        found = list_executions(
            settings.database_url,
            home=settings.home,
            tenant=settings.tenant,
            limit=100,
            database=settings.database(read_only=True),
        )
    except Exception:  # noqa: BLE001  # completion offers nothing rather than fail in the shell
        return []
    return [
        CompletionItem(r.id, help=f"{r.namespace} {r.status}") for r in found.records if r.id.startswith(incomplete)
    ]
