"""``cloacina-ctl server``: ``serve`` for every tenant, plus the HTTP API (FastAPI on uvicorn) in the same
process and event loop. Needs the ``server`` extra (``pip install 'cloacina-host[server]'``).

Each tenant (``public`` and every one created, and one created later on its first request) runs the
loop ``serve`` runs (scheduler, triggers, recovery, the distributed share on PostgreSQL); ``--watch DIR``
reconciles DIR into the ``--tenant`` one. SIGTERM or Ctrl-C stops it gracefully: no new connections,
the requests in flight finish (event streams end), then every tenant's engine stops as ``serve`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import socket
import time
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._errors import UsageError
from ._common import Settings, pass_settings
from ._serve import Served, _serve, serve_command
from ._streams import package_output_to_stderr

if TYPE_CHECKING:
    from .._server import TenantRuntime

__all__ = ["server_command"]

#: the server's third-party parts, by import name (the ``server`` extra installs them)
REQUIRED = ("fastapi", "uvicorn", "prometheus_client", "python_multipart")
#: how long requests in flight may take to finish once a stop is asked
GRACEFUL_S = 30.0


def require_extra() -> None:
    """``UsageError`` naming the install command when the ``server`` extra is not installed."""
    missing = []
    for name in REQUIRED:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UsageError(
            f"`cloacina-ctl server` needs the server extra, which is not installed (missing: {', '.join(missing)}). "
            "Install it with: pip install 'cloacina-host[server]'"
        )


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one), or ``UsageError`` saying why not."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        raise UsageError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Choose another --port or --host."
        ) from None
    sock.setblocking(False)
    return sock


def _server_options(command: click.Command) -> click.Command:
    """``serve``'s options (the same names, defaults and help) on ``server``, after its own."""
    command.params.extend(serve_command.params)
    return command


@click.command("server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port (0: any free one).")
@click.option(
    "--max-archive-size",
    "max_archive_size",
    type=click.IntRange(min=1),
    default=None,
    hidden=True,  # tests: a small upload limit, so that refusing one over it needs no gigabyte
    envvar="CLOACINA_SERVER_MAX_ARCHIVE_SIZE",
)
@pass_settings
def server_command(  # serve's options, passed on to it
    settings: Settings,
    host: str,
    port: int,
    max_archive_size: int | None,
    watch: Path | None,
    interval: float,
    watch_timeout: float,
    allow_downgrade: bool,
    schedule_tick: float,
    clock_offset: float,
    max_concurrent_tasks: int,
    idle_timeout: float,
    distributed: int | None,
) -> None:
    """Run the HTTP API (OpenAPI at /openapi.json) and everything `serve` runs, for every tenant.

    Requests carry an API key (`Authorization: Bearer KEY`, from `cloacina-ctl api-keys create`); the
    key's tenant is the only one they see. /healthz, /readyz and /metrics need no key. Stop it with
    SIGTERM or Ctrl-C: requests in flight finish, then executions still running are left to resume later.
    """
    settings.refuse_server()  # it serves the database: --server names a server to talk to, not this one
    require_extra()
    serve = {
        "watch": watch,
        "interval": interval,
        "watch_timeout": watch_timeout,
        "allow_downgrade": allow_downgrade,
        "schedule_tick": schedule_tick,
        "clock_offset": clock_offset,
        "max_concurrent_tasks": max_concurrent_tasks,
        "idle_timeout": idle_timeout,
        "distributed": distributed,
    }
    if watch is not None and not watch.is_dir():
        raise click.BadParameter(f"{watch} is not a directory.", param_hint="--watch")
    sock = _listen(host, port)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("cloacina_host")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if settings.verbose else logging.WARNING)
    try:
        with package_output_to_stderr():
            asyncio.run(_run(settings, sock, max_archive_size, serve))
    finally:
        logger.removeHandler(handler)
        sock.close()


_server_options(server_command)


class _Tenant:
    """One tenant's ``serve`` loop inside the server."""

    def __init__(self, settings: Settings, task: asyncio.Task[None]) -> None:
        self.settings = settings
        self.task = task


async def _run(settings: Settings, sock: socket.socket, max_archive_size: int | None, serve: dict[str, Any]) -> None:
    import uvicorn

    from .._registry import list_tenants
    from .._registry._api_keys import open_key_store
    from .._server import TenantRuntime, Tenants, create_app
    from .._server._app import Where

    requested, engines_stop = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, requested.set)
    served: dict[str, _Tenant] = {}

    def note(line: str) -> None:
        settings.err.print(f"{time.strftime('%H:%M:%S')} {line}", markup=False, highlight=False)

    async def start(tenant: str) -> TenantRuntime:
        own = settings if tenant == settings.tenant else _settings_for(settings, tenant)
        ready: asyncio.Future[TenantRuntime] = loop.create_future()

        def on_ready(s: Served) -> None:
            ready.set_result(TenantRuntime(s.tenant, s.host, s.runner, s.database))

        options = {**serve, "watch": serve["watch"] if tenant == settings.tenant else None}
        task = asyncio.ensure_future(_serve_tenant(own, options, engines_stop, on_ready))
        served[tenant] = _Tenant(own, task)

        def ended(t: asyncio.Task[None]) -> None:
            if not ready.done():
                exc = None if t.cancelled() else t.exception()
                ready.set_exception(exc or RuntimeError(f"serving tenant {tenant!r} ended before it started"))

        task.add_done_callback(ended)
        try:
            return await ready
        except BaseException:
            served.pop(tenant, None)
            if own is not settings:
                own.close(failed=True)
            raise

    tenants = Tenants(start)
    store = await asyncio.to_thread(open_key_store, settings.database_url, home=settings.home)
    try:
        await tenants.get(settings.tenant)
        for info in await asyncio.to_thread(list_tenants, settings.database_url, home=settings.home):
            if info.name not in served:
                await tenants.get(info.name)
        app = create_app(
            tenants=tenants,
            api_keys=store,
            where=Where(settings.database_url, settings.home),
            **({"max_archive_size": max_archive_size} if max_archive_size else {}),
        )
        config = uvicorn.Config(
            app, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=int(GRACEFUL_S)
        )
        server = _Server(config)
        http = asyncio.ensure_future(server.serve(sockets=[sock]))
        address = sock.getsockname()
        note(f"listening on http://{_url_host(address[0])}:{address[1]} (OpenAPI at /openapi.json)")
        await _until_stopped(requested, http, served)
        note("stopping: finishing the requests in flight")
        app.state.closing.set()  # event streams end
        server.should_exit = True
        await asyncio.gather(http, return_exceptions=True)
    finally:
        engines_stop.set()
        results = await asyncio.gather(*(t.task for t in served.values()), return_exceptions=True)
        for t in served.values():
            if t.settings is not settings:
                t.settings.close()
        await asyncio.to_thread(store.database.dispose)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


async def _serve_tenant(settings: Settings, options: dict[str, Any], stop: asyncio.Event, on_ready: Any) -> None:
    await _serve(
        settings,
        options["watch"],
        options["interval"],
        options["watch_timeout"],
        options["max_concurrent_tasks"],
        options["idle_timeout"],
        options["distributed"],
        allow_downgrade=options["allow_downgrade"],
        schedule_tick=options["schedule_tick"],
        clock_offset=options["clock_offset"],
        stop=stop,
        on_ready=on_ready,
    )


async def _until_stopped(requested: asyncio.Event, http: asyncio.Future[None], served: dict[str, _Tenant]) -> None:
    """Until a stop is asked, the HTTP server ends, or a tenant's loop dies (whose error is raised)."""
    asking = asyncio.ensure_future(requested.wait())
    try:
        while True:
            watched: set[asyncio.Future[Any]] = {asking, http, *(t.task for t in served.values())}
            done, _ = await asyncio.wait(watched, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            if asking in done or http in done:
                return
            for t in served.values():
                if t.task in done:
                    t.task.result()  # its error, if any, stops the server
                    return
    finally:
        asking.cancel()


def _settings_for(settings: Settings, tenant: str) -> Settings:
    return Settings(
        database_url=settings.database_url,
        home=settings.home,
        tenant=tenant,
        json=settings.json,
        verbose=settings.verbose,
        disabled_plugins=list(settings.disabled_plugins),
        given=set(settings.given),
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, leaving signals to ``cloacina-ctl server`` (one stop for the API and the engines)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

        def install_signal_handlers(self) -> None:  # uvicorn before 0.29
            return

    return Server


def _Server(config: Any) -> Any:  # built on use: uvicorn is imported only when the server runs
    return _server_class()(config)
