"""``cloacina-ctl``: the command line. ``main(argv)`` returns the exit status, for tests and scripts.

Exit status: 0 success, 1 user error (bad input, validation), 2 infrastructure failure (database
unreachable, or at a schema version the command cannot use), 3 not found.

Each command opens its tenant's database once (``Settings.database``), on first use, and closes it
when it ends; commands that only read open it read-only and never create or migrate it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import click

from cloacina_workflow import CloacinaError

from .._errors import EXIT_INFRASTRUCTURE, EXIT_OK, EXIT_USER_ERROR
from ._common import Settings, global_options

__all__ = ["cli", "main", "run_main"]

EPILOG = """\b
Exit status: 0 success, 1 user error (bad input, validation),
2 infrastructure failure (database unreachable, or at a schema
version the command cannot use), 3 not found.
"""


#: command name -> "module:attribute"; each module is imported only when its command runs (or for --help)
COMMANDS = {
    "workflows": "._workflows:workflows_group",
    "run": "._run:run_command",
    "executions": "._executions:executions_group",
    "new": "._package:new_command",
    "package": "._package:package_command",
    "inspect": "._package:inspect_command",
    "validate": "._package:validate_command",
    "manifest-schema": "._package:manifest_schema_command",
    "register": "._registry:register_command",
    "packages": "._registry:packages_group",
    "tenants": "._tenants:tenants_group",
    "serve": "._serve:serve_command",
    "worker": "._worker:worker_command",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on use, so each command pays only for what it needs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module, __name__), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=LazyGroup,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="cloacina-host", prog_name="cloacina-ctl")
@global_options
def cli() -> None:
    """Cloacina: run Python workflows (DAGs of tasks passing a JSON context) from packages."""


def _report(exc: BaseException, settings: Settings) -> None:
    click.echo(f"error: {exc}", err=True)
    if settings.verbose:
        cause = exc.__cause__ or exc.__context__
        while cause is not None:
            click.echo(f"  caused by {type(cause).__name__}: {cause}", err=True)
            cause = cause.__cause__ or cause.__context__


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cloacina-ctl`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    settings = Settings()
    status = EXIT_USER_ERROR  # until the command says otherwise (an exception nobody expected included)
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None, prog_name="cloacina-ctl", standalone_mode=False, obj=settings
        )
        # with standalone_mode=False, click returns the code of a ``ctx.exit(code)`` instead of raising
        status = result if isinstance(result, int) else EXIT_OK
    except CloacinaError as exc:
        _report(exc, settings)
        status = getattr(exc, "exit_status", EXIT_USER_ERROR)
    except click.exceptions.Exit as exc:
        status = exc.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        status = 130
    except click.ClickException as exc:
        exc.show()
        status = EXIT_USER_ERROR
    except OSError as exc:
        _report(exc, settings)
        status = EXIT_INFRASTRUCTURE
    finally:
        settings.close(failed=status != EXIT_OK)  # the command's one database, opened on first use
    return status


def run_main() -> None:
    """Console-script entry point."""
    sys.exit(main())
