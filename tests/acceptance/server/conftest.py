"""``cloacina-ctl server`` as a real process on a free loopback port, driven over real HTTP (httpx).

``server`` starts one (``--port 0``: the port it took is read from its ``listening on`` line) on the
test's database (``database_url``: SQLite and PostgreSQL) and private home, with the ``cli_pkg`` plugin
installed; keys and tenants are made with the real ``cloacina-ctl api-keys`` / ``tenants`` commands.
Every server started is stopped (SIGTERM, then kill) when the test ends.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

SERVING = importlib.import_module("tests.conftest").load_helper(  # tests/ is not a package
    "cloacina_tests_serving", "serving.py"
)
LISTENING = re.compile(r"listening on (http://\S+)")


def until(what: str, check: Callable[[], Any], proc: subprocess.Popen[str] | None = None) -> Any:
    """Poll ``check`` until it returns something truthy (returned), within a deadline (``serving.until``)."""
    return SERVING.until(what, check, () if proc is None else proc, name="the server")


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str
    log: Path
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        c = httpx.Client(base_url=self.url, headers=headers, timeout=60.0)
        self.clients.append(c)
        return c

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """Close the clients, then ``terminate``."""
        for c in self.clients:
            c.close()
        return self.terminate()

    def terminate(self) -> int:
        """SIGTERM, as a service manager would; its exit status (kill only if it does not stop in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@dataclass
class Deployment:
    """The database and home a test's servers and commands share."""

    env: dict[str, str]
    tmp: Path
    servers: list[Server] = field(default_factory=list)
    tenants: list[str] = field(default_factory=list)

    def tenant(self, prefix: str) -> str:
        """Create a tenant named ``PREFIX_<random>`` (on PostgreSQL a schema: unique per test, dropped after)."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.ctl("tenants", "create", name)
        self.tenants.append(name)
        return name

    def ctl(self, *args: str) -> Any:
        """``cloacina-ctl ARGS --json`` as a real process; its parsed stdout (it must succeed)."""
        proc = subprocess.run(
            [_ctl(), *args, "--json"], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def key(self, role: str, tenant: str = "public", name: str | None = None) -> str:
        extra = ["--name", name] if name else []
        return str(self.ctl("api-keys", "create", "--tenant", tenant, "--role", role, *extra)["key"])

    until = staticmethod(until)

    @staticmethod
    def wait_status(client: httpx.Client, execution_id: str, statuses: set[str]) -> dict[str, Any]:
        return wait_status(client, execution_id, statuses)

    def start(self, *args: str) -> Server:
        log = self.tmp / f"server-{len(self.servers)}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [_ctl(), "server", "--port", "0", "--interval", "0.2", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=self.env,
            )
        server = Server(proc, "", log)
        self.servers.append(server)
        found = until("the server to listen", lambda: LISTENING.search(server.output()), proc)
        server.url = found.group(1)
        return server


def _ctl() -> str:
    return str(SERVING.ctl_path())


@pytest.fixture
def deployment(database_url: str, tmp_path: Path, cli_flows_site: Path) -> Iterator[Deployment]:
    env = {
        **os.environ,
        "CLOACINA_HOME": str(tmp_path / "home"),
        "CLOACINA_DATABASE_URL": database_url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(cli_flows_site), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CLOACINA_TENANT", None)
    found = Deployment(env, tmp_path)
    try:
        yield found
    finally:
        for server in found.servers:
            server.stop()
        if found.tenants and database_url.startswith("postgresql"):
            _drop_schemas(database_url, found.tenants)


def _drop_schemas(url: str, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def wait_status(client: httpx.Client, execution_id: str, statuses: set[str]) -> dict[str, Any]:
    """The execution once its status is one of ``statuses`` (polled over the API)."""

    def check() -> dict[str, Any] | None:
        r = client.get(f"/api/v1/executions/{execution_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if body["status"] in statuses else None

    return until(f"execution {execution_id} to be {'/'.join(sorted(statuses))}", check)  # type: ignore[no-any-return]
