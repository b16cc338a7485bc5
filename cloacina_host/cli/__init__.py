"""``cloacina-ctl``: the command line. ``main(argv)`` returns the exit status, for tests and scripts.

Exit status: 0 success, 1 user error (bad input, validation), 2 infrastructure failure (database
unreachable), 3 not found.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from cloacina_workflow import CloacinaError

from .._errors import EXIT_INFRASTRUCTURE, EXIT_OK, EXIT_USER_ERROR
from ._common import Settings, global_options
from ._executions import executions_group
from ._package import inspect_command, manifest_schema_command, new_command, package_command, validate_command
from ._run import run_command
from ._workflows import workflows_group

__all__ = ["cli", "main", "run_main"]

EPILOG = """\b
Exit status: 0 success, 1 user error (bad input, validation),
2 infrastructure failure (database unreachable), 3 not found.
"""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="cloacina-host", prog_name="cloacina-ctl")
@global_options
def cli() -> None:
    """Cloacina: run Python workflows (DAGs of tasks passing a JSON context) from packages."""


cli.add_command(workflows_group)
cli.add_command(run_command)
cli.add_command(new_command)
cli.add_command(package_command)
cli.add_command(inspect_command)
cli.add_command(validate_command)
cli.add_command(manifest_schema_command)
cli.add_command(executions_group)


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
    try:
        cli.main(
            args=list(argv) if argv is not None else None, prog_name="cloacina-ctl", standalone_mode=False, obj=settings
        )
    except CloacinaError as exc:
        _report(exc, settings)
        return getattr(exc, "exit_status", EXIT_USER_ERROR)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return EXIT_USER_ERROR
    except OSError as exc:
        _report(exc, settings)
        return EXIT_INFRASTRUCTURE
    return EXIT_OK


def run_main() -> None:
    """Console-script entry point."""
    sys.exit(main())
