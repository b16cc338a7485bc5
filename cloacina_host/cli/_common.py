"""What every ``cloacina-ctl`` command shares: global options, output, JSON input."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

import click
from click.core import ParameterSource

from .._defaults import DEFAULT_MAX_CONCURRENT_TASKS, DEFAULT_TENANT
from ._streams import closed_pipe, package_output_to_stderr, real_stdout, silence_closed_streams, was_a_terminal

if TYPE_CHECKING:
    from rich.console import Console

    from .._discovery import WorkflowCatalog
    from .._host import Database, Host
    from ._client import Client

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    """The global options, whether given before or after the subcommand."""

    database_url: str | None = None
    home: str | None = None
    tenant: str = DEFAULT_TENANT
    json: bool = False
    verbose: bool = False
    disabled_plugins: list[str] = field(default_factory=list)
    #: the settings given as options on the command line (the environment does not override them)
    given: set[str] = field(default_factory=set)
    #: the settings given at all (as options or in the environment)
    chosen: set[str] = field(default_factory=set)
    #: ``--server URL`` (env ``CLOACINA_SERVER``): the commands that support it use the server's API
    server: str | None = None
    api_key: str | None = None
    _host: Host | None = None
    _db: Database | None = None
    _client: Client | None = None

    def remote(self) -> Client | None:
        """The client of ``--server`` (None without it), connected on first use; ``tenant`` becomes the key's."""
        if self.server is None:
            return None
        if self._client is None:
            from ._client import connect

            self._client, self.tenant = connect(
                self.server, self.api_key, tenant=self.tenant if "tenant" in self.chosen else None
            )
        return self._client

    def refuse_server(self) -> None:
        """``UsageError`` when ``--server`` is set: the running command works on the database only."""
        if self.server is None:
            return
        from .._errors import UsageError
        from ._client import COVERED

        ctx = click.get_current_context(silent=True)
        command = ctx.command_path if ctx is not None else "this command"
        raise UsageError(
            f"`{command}` works on the database and cannot go through --server {self.server} (--server applies "
            f"to: {COVERED}). Run it where the database is, without --server (unset CLOACINA_SERVER)."
        )

    def database(self, *, read_only: bool = False, pool_size: int = 4) -> Database:
        """The tenant's database: opened once per command, on first use, and closed when the command ends.

        ``read_only``, for commands that only read: nothing is created, migrated or written (a
        database not there yet reads as empty). The first call decides; a command that writes must
        not ask for it read-only first.
        """
        if self._db is None:
            from .._host import open_command_database

            self.check_database_url()
            self._db = open_command_database(
                self.database_url, home=self.home, tenant=self.tenant, read_only=read_only, pool_size=pool_size
            )
        elif self._db.read_only and not read_only:
            raise RuntimeError("this command opened the database read-only; it cannot write to it")
        return self._db

    def check_database_url(self) -> None:
        """A SQLite ``--database-url`` must name a file in a directory that exists: none is created for it
        (a mistyped path would otherwise become a new, empty database). The home's default one is.

        Every command that reaches the database passes here first: with ``--server`` it is refused.
        """
        self.refuse_server()  # never the database silently in place of the server asked for
        if not self.database_url:
            return
        from .._errors import UsageError
        from .._storage._database import parse_database_url

        parsed = parse_database_url(self.database_url)
        if parsed.drivername != "sqlite" or parsed.database is None:
            return
        directory = Path(parsed.database).expanduser().parent
        if not directory.is_dir():
            raise UsageError(
                f"The directory {directory} of the SQLite database {parsed.database} does not exist. "
                f"Create it first (mkdir -p {directory}) or correct --database-url (or CLOACINA_DATABASE_URL)."
            )

    def host(self, *, read_only: bool = False, **options: Any) -> Host:
        """The composed host (installed plugins + the tenant's registry over ``database()``), built once
        per command; ``options`` (e.g. ``idle_timeout_s``) apply when this call builds it."""
        if self._host is None:
            from .._host import compose  # not needed by commands that only read archives

            self.refuse_server()
            with package_output_to_stderr():  # importing plugins runs their code: what it prints is no result
                self._host = compose(
                    self.database_url,
                    home=self.home,
                    tenant=self.tenant,
                    disabled=self.disabled_plugins,
                    database_opener=lambda: self.database(read_only=read_only),
                    **options,
                )
        return self._host

    def catalog(self, *, read_only: bool = False) -> WorkflowCatalog:
        """Discover installed workflows once per command; the tenant's registered ones are looked up on use."""
        return self.host(read_only=read_only).catalog

    def close(self, *, failed: bool = False) -> None:
        """Release what the command opened: the registry's workers and the database.

        ``failed``: the command failed; a SQLite file it created and left holding nothing is removed
        (a refused ``register`` on a new home leaves no empty database behind).
        """
        if self._client is not None:
            self._client.close()
        if self._host is not None:
            self._host.close()
        db, self._db = self._db, None
        if db is not None:
            if failed:
                db.discard_if_empty()
            else:
                db.dispose()

    @functools.cached_property
    def out(self) -> Console:
        return _console(stderr=False)

    @functools.cached_property
    def err(self) -> Console:
        return _console(stderr=True)


def _console(*, stderr: bool) -> Console:
    """A rich console; when the stream is not a terminal, lines are never wrapped (grep-friendly).

    stderr's never fails on a closed pipe (progress is not worth failing for).
    """
    from rich.console import Console  # on first output: a command that prints nothing does not load rich

    stream = cast("IO[str]", ForgivingStream(sys.stderr)) if stderr else real_stdout()
    tty = was_a_terminal(stream)  # as it was before package code's output was put under it
    return Console(
        file=stream, width=None if tty else 1000, force_terminal=True if tty else None, highlight=False, soft_wrap=True
    )


class ForgivingStream:
    """A text stream whose writes to a pipe whose reader has gone are dropped, not raised."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            if closed_pipe(exc):
                return len(text)
            raise

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            if not closed_pipe(exc):
                raise

    def isatty(self) -> bool:
        return was_a_terminal(self._stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _setter(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        settings = ctx.ensure_object(Settings)
        if attr == "disabled_plugins":
            settings.disabled_plugins.extend(_plugin_names(value))
            return
        if value is None or value is False:
            return
        from_env = param.name is not None and ctx.get_parameter_source(param.name) is ParameterSource.ENVIRONMENT
        if from_env and attr in settings.given:
            return  # an option given before the subcommand wins over the environment, as options do
        setattr(settings, attr, value)
        settings.chosen.add(attr)
        if not from_env:
            settings.given.add(attr)

    return callback


def _plugin_names(values: tuple[str, ...]) -> list[str]:
    return [v[3:] if v.startswith("no:") else v for v in values]


def global_options(f: F) -> F:
    """Options accepted both by the group and by every subcommand."""
    options = [
        click.option(
            "--database-url",
            envvar="CLOACINA_DATABASE_URL",
            expose_value=False,
            callback=_setter("database_url"),
            help="sqlite:///PATH or postgresql://USER:PASS@HOST/DB [env CLOACINA_DATABASE_URL; default: a "
            "SQLite file under the Cloacina home].",
        ),
        click.option(
            "--home",
            envvar="CLOACINA_HOME",
            expose_value=False,
            callback=_setter("home"),
            help="Cloacina's directory [env CLOACINA_HOME; default ~/.cloacina].",
        ),
        click.option(
            "--tenant",
            envvar="CLOACINA_TENANT",
            expose_value=False,
            callback=_setter("tenant"),
            help="Tenant whose packages and executions to use; create one with `tenants create` "
            "[env CLOACINA_TENANT; default: public].",
        ),
        click.option(
            "--server",
            envvar="CLOACINA_SERVER",
            expose_value=False,
            callback=_setter("server"),
            metavar="URL",
            help="Talk to `cloacina-ctl server` at URL instead of the database, with the API key in "
            "CLOACINA_API_KEY (its tenant is used). Applies to: register, packages, workflows list, run, "
            "executions, schedules, triggers; commands that need the database refuse it "
            "[env CLOACINA_SERVER].",
        ),
        click.option(
            "--api-key",
            envvar="CLOACINA_API_KEY",
            expose_value=False,
            callback=_setter("api_key"),
            metavar="KEY",
            help="The API key for --server (prefer the environment: CLOACINA_API_KEY).",
        ),
        click.option(
            "--json", "json_", is_flag=True, expose_value=False, callback=_setter("json"), help="JSON output."
        ),
        click.option(
            "-v",
            "--verbose",
            is_flag=True,
            expose_value=False,
            callback=_setter("verbose"),
            help="Show causes of errors and more detail.",
        ),
        click.option(
            "-p",
            "--disable-plugin",
            "disabled_plugins",
            multiple=True,
            expose_value=False,
            callback=_setter("disabled_plugins"),
            metavar="[no:]NAME",
            help="Do not load this plugin (distribution, entry point or DIST:ENTRY-POINT); repeatable "
            "[env CLOACINA_DISABLE_PLUGINS, comma-separated].",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


pass_settings = click.make_pass_decorator(Settings, ensure=True)

#: ``--max-concurrent-tasks``, for the commands that run an in-process engine (``run``, ``serve``)
max_concurrent_tasks_option = click.option(
    "--max-concurrent-tasks",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CONCURRENT_TASKS,
    show_default=True,
    help="Tasks allowed to run at once.",
)

#: ``--timeout`` (as ``default_timeout_s``), for the commands that run tasks (``run``, ``worker``)
task_timeout_option = click.option(
    "--timeout",
    "default_timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Timeout for tasks that set no timeout_s of their own.",
)


def print_json(data: Any) -> None:
    """``data`` as JSON on stdout; a stdout whose reader has gone (``| head``) is silenced, not an error."""
    try:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
        sys.stdout.flush()
    except OSError as exc:
        if not closed_pipe(exc):
            raise
        silence_closed_streams()
