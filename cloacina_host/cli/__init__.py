"""``cloacina-ctl``: the command line. ``main(argv)`` returns the exit status, for tests and scripts.

Exit status: 0 success, 1 user error (bad input, validation), 2 infrastructure failure (database
unreachable, or at a schema version the command cannot use), 3 not found.

stdout carries only the result (see ``_streams``): what tasks and plugins print goes to stderr, and
a closed stdout or stderr fails no task. With ``--json``, an error is one JSON object on stderr,
``{"error": ..., "exit_status": ...}``. Shell completion: ``_complete``.

Each command opens its tenant's database once (``Settings.database``), on first use, and closes it
when it ends; commands that only read open it read-only and never create or migrate it.
"""

from __future__ import annotations

import gc
import importlib
import json
import sys
from collections.abc import Sequence

import click

from cloacina_workflow import CloacinaError

from .._errors import EXIT_INFRASTRUCTURE, EXIT_OK, EXIT_USER_ERROR
from ._common import Settings, global_options
from ._streams import closed_pipe, silence_closed_streams

__all__ = ["cli", "main", "run_main"]

EPILOG = """\b
Exit status: 0 success, 1 user error (bad input, validation),
2 infrastructure failure (database or --server unreachable, or at
a schema version the command cannot use), 3 not found. Through
--server, a missing, wrong or revoked API key (401) or a role that
does not allow the command (403) exits 1.
"""


#: command name -> ("module:attribute", its one-line summary). Each module is imported only when its
#: command runs: `cloacina-ctl --help` lists the summaries (a test holds them equal to the commands' own)
COMMANDS: dict[str, tuple[str, str]] = {
    "workflows": ("._workflows:workflows_group", "Workflows the host can run."),
    "run": (
        "._run:run_command",
        "Run WORKFLOW (name, PACKAGE::NAME or TENANT::PACKAGE::NAME) and print its final context.",
    ),
    "executions": (
        "._executions:executions_group",
        "Executions stored in the database: list, show, print what their tasks wrote, watch, cancel, retry or rerun.",
    ),
    "new": (
        "._package:new_command",
        "Create NAME/, a workflow package project: pyproject.toml, a three-task workflow, its tests.",
    ),
    "package": (
        "._package:package_command",
        "Build DIRECTORY's wheel with pypa build and write the .cloacina archive FILE.",
    ),
    "inspect": ("._package:inspect_command", "Show what the archive FILE holds, without running any of its code."),
    "validate": (
        "._package:validate_command",
        "Run every check the registry runs on FILE (or on DIR, packaged to a temporary file), without registering.",
    ),
    "manifest-schema": (
        "._package:manifest_schema_command",
        "Print the JSON Schema of manifest.json (the current format version, 2), as published in schemas/.",
    ),
    "register": ("._registry:register_command", "Register the .cloacina archive FILE in the tenant's registry."),
    "packages": (
        "._registry:packages_group",
        "Registered packages: list, show, activate a version (roll back), deactivate, remove.",
    ),
    "tenants": ("._tenants:tenants_group", "Tenants: each has its own packages and executions."),
    "serve": (
        "._serve:serve_command",
        "Run a long-lived host for the tenant: the scheduler, recovery, and (--watch) a package directory.",
    ),
    "worker": ("._worker:worker_command", "Run the tasks of distributed executions stored in a PostgreSQL database."),
    "schedules": (
        "._schedules:schedules_group",
        "Cron schedules: those of each package's active version and of installed plugins.",
    ),
    "triggers": (
        "._triggers:triggers_group",
        "Poll triggers: those of each package's active version and of installed plugins.",
    ),
    "api-keys": ("._api_keys:api_keys_group", "API keys of `cloacina-ctl server`: create, list, revoke."),
    "server": (
        "._server:server_command",
        "Run the HTTP API (OpenAPI at /openapi.json) and everything `serve` runs, for every tenant.",
    ),
    "signing-keys": (
        "._signing:signing_keys_group",
        "Ed25519 signing keys: make one, show a key's fingerprint and public key.",
    ),
    "sign": (
        "._signing:sign_command",
        "Sign the .cloacina archive FILE with KEY (added to any signatures it carries).",
    ),
    "trust": ("._signing:trust_group", "The public keys the tenant (--tenant) trusts to sign packages."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on use, so each command pays only for what it needs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, attribute = COMMANDS[cmd_name][0].split(":")
        command = getattr(importlib.import_module(module, __name__), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their summaries, as click writes them, without importing every command."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows = []
        for name in names:
            if name in COMMANDS:
                rows.append((name, click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit)))
            elif (command := super().get_command(ctx, name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="cloacina-host", prog_name="cloacina-ctl")
@global_options
def cli() -> None:
    """Cloacina: run Python workflows (DAGs of tasks passing a JSON context) from packages."""


def _say(text: str) -> None:
    """One line on stderr; a closed stderr (its reader gone) is no reason to fail differently."""
    try:
        click.echo(text, err=True)
    except OSError as exc:
        if not closed_pipe(exc):
            raise


def _report(settings: Settings, message: str, status: int, exc: BaseException | None = None) -> None:
    """The error on stderr: ``error: MESSAGE`` (causes with --verbose), or one JSON object with --json."""
    if settings.json:
        _say(json.dumps({"error": message, "exit_status": status}))
        return
    _say(f"error: {message}" if exc is not None else message)
    if settings.verbose and exc is not None:
        cause = exc.__cause__ or exc.__context__
        while cause is not None:
            _say(f"  caused by {type(cause).__name__}: {cause}")
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
        status = getattr(exc, "exit_status", EXIT_USER_ERROR)
        _report(settings, str(exc), status, exc)
    except click.exceptions.Exit as exc:
        status = exc.exit_code
    except click.Abort:
        status = 130
        _report(settings, "Aborted.", status)
    except click.ClickException as exc:
        status = EXIT_USER_ERROR
        if settings.json:
            _report(settings, exc.format_message(), status)
        else:
            exc.show()
    except OSError as exc:
        if closed_pipe(exc):  # the reader of stdout has gone (``| head``): nothing more to say
            status = EXIT_OK if silence_closed_streams() else EXIT_INFRASTRUCTURE
        else:
            status = EXIT_INFRASTRUCTURE
            _report(settings, str(exc), status, exc)
    finally:
        settings.close(failed=status != EXIT_OK)  # the command's one database, opened on first use
        silence_closed_streams()  # so that the flush at exit does not fail on a closed pipe either
    return status


def run_main() -> None:
    """Console-script entry point."""
    status = main()
    # The process ends now: what is still allocated is the OS's to reclaim. Frozen objects are left
    # out of the collections the interpreter runs while it shuts down, which otherwise walk every
    # object pydantic, rich and click built (a few hundred ms of an `inspect`); atexit handlers,
    # flushing and module teardown still happen as usual.
    gc.freeze()
    sys.exit(status)
