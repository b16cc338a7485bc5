"""The command line as a client of a real ``cloacina-ctl server`` (``--server`` / ``CLOACINA_SERVER`` with
``CLOACINA_API_KEY``): every covered command prints the same text and ``--json`` and exits with the same
status as against the database the server serves, and the server's refusals become the CLI's exit
statuses (3 not found, 1 bad input or a refused key, 2 server unreachable).

Both sides run in-process (``main(argv)``) with their own environment, the server as a real process on
loopback; the remote side's database URL points nowhere, so that a command that read the database
instead of the server would fail. The unreachable server is tried with the installed console script.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloacina_host.cli import main

pytestmark = pytest.mark.slow

SERVING = importlib.import_module("tests.conftest").load_helper(  # tests/ is not a package
    "cloacina_tests_serving", "serving.py"
)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Result:
    status: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def _ctl(env: dict[str, str], *args: str) -> Result:
    """The installed ``cloacina-ctl ARGS`` as a real process with exactly ``env``."""
    proc = subprocess.run(
        [SERVING.ctl_path(), *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Sides:
    """The same command against the database (``local``) and through the server (``remote``), run
    in-process (``main(argv)``, as the CLI tests do) with each side's environment."""

    local_env: dict[str, str]
    remote_env: dict[str, str]
    capfd: pytest.CaptureFixture[str]

    def _main(self, env: dict[str, str], args: tuple[str, ...]) -> Result:
        self.capfd.readouterr()
        with _environment(env):
            status = main(list(args))
        out, err = self.capfd.readouterr()
        return Result(status, out, err)

    def local(self, *args: str) -> Result:
        return self._main(self.local_env, args)

    def remote(self, *args: str, key: str | None = None, **env: str) -> Result:
        found = {**self.remote_env, **env}
        if key is not None:
            found["CLOACINA_API_KEY"] = key
        return self._main(found, args)

    def same(self, *args: str, status: int = 0) -> Result:
        """Run ``args`` on both sides, text and ``--json``: equal stdout, equal exit status ``status``."""
        for extra in ((), ("--json",)):
            here, there = self.local(*args, *extra), self.remote(*args, *extra)
            assert here.status == status, (args, extra, here)
            assert there.status == status, (args, extra, there)
            assert there.out == here.out, (args, extra)
        return here

    def same_settled(self, *args: str, attempts: int = 20) -> None:
        """``same`` for a view a running server may change between the two calls (a trigger poll that was in
        flight when its trigger was paused still records its time): the remote output must equal the local
        one taken before and after it, whenever those two agree."""
        for extra in ((), ("--json",)):
            for _ in range(attempts):
                before, there, after = self.local(*args, *extra), self.remote(*args, *extra), self.local(*args, *extra)
                assert before.status == there.status == after.status == 0, (args, extra, before, there, after)
                if before.out == after.out:
                    assert there.out == before.out, (args, extra)
                    break
            else:
                raise AssertionError(f"{args} {extra}: the local output never held still over {attempts} tries")

    def same_error(self, *args: str, status: int) -> str:
        """Both sides refuse ``args`` with exit status ``status`` and the same message (text and --json)."""
        here, there = self.local(*args), self.remote(*args)
        assert (here.status, there.status) == (status, status), (here, there)
        assert there.err == here.err
        here_j, there_j = self.local(*args, "--json"), self.remote(*args, "--json")
        assert (
            json.loads(there_j.err) == json.loads(here_j.err) == {"error": here.err[7:].strip(), "exit_status": status}
        )
        return here.err


def _sides(deployment: Any, server: Any, key: str, capfd: pytest.CaptureFixture[str]) -> Sides:
    remote = {
        **deployment.env,
        "CLOACINA_SERVER": server.url,
        "CLOACINA_API_KEY": key,
        # nothing there: a command reading a database instead of the server would fail
        "CLOACINA_DATABASE_URL": f"sqlite:///{deployment.tmp / 'no-such-dir' / 'x.db'}",
        "CLOACINA_HOME": str(deployment.tmp / "client-home"),
    }
    return Sides(dict(deployment.env), remote, capfd)


def _ids_out(text: str) -> str:
    return UUID.sub("ID", text)


def _result(data: dict[str, Any]) -> dict[str, Any]:
    """A ``run --json`` result without what differs between two executions: id and durations."""
    return {
        **data,
        "execution_id": "ID",
        "duration_s": None,
        "tasks": {k: {**v, "duration_s": None} for k, v in data["tasks"].items()},
    }


def test_every_command_prints_the_same_through_the_server(
    deployment: Any,
    reg_archives: dict[str, Path],
    cli_flows_site: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = deployment.start()
    sides = _sides(deployment, server, deployment.key("admin", name="cli"), capfd)
    monkeypatch.syspath_prepend(str(cli_flows_site))  # the server's plugins are this process's too (cli_pkg)

    # register: the same result, first registered here, then (removed and) through the server
    here = sides.local("register", str(reg_archives["swap-1"]), "--json")
    assert here.status == 0, here.err
    assert sides.local("packages", "remove", "reg-swap==1.0.0").status == 0
    there = sides.remote("register", str(reg_archives["swap-1"]), "--json")
    assert there.status == 0, there.err
    assert {**there.json(), "seconds": 0} == {**here.json(), "seconds": 0}
    again = sides.remote("register", str(reg_archives["swap-1"]))
    assert (again.status, again.out) == (0, sides.local("register", str(reg_archives["swap-1"])).out)
    assert again.out.startswith("Already registered: reg-swap 1.0.0")
    for name in ("sched-1", "trig", "typed"):
        assert sides.remote("register", str(reg_archives[name])).status == 0
    assert sides.remote("register", str(reg_archives["swap-2"]), "--no-activate").status == 0

    sides.same("packages", "list")
    sides.same("packages", "show", "reg-swap")
    sides.same("workflows", "list")

    # packages activate, deactivate, remove: each done here, undone, then done through the server
    for done, undo in (
        (("packages", "activate", "reg-swap==2.0.0"), ("packages", "activate", "reg-swap==1.0.0")),
        (("packages", "deactivate", "reg-swap"), ("packages", "activate", "reg-swap==1.0.0")),
        (("packages", "remove", "reg-swap==2.0.0"), ("register", str(reg_archives["swap-2"]), "--no-activate")),
    ):
        for extra in ((), ("--json",)):
            here = sides.local(*done, *extra)
            assert here.status == 0, here.err
            assert sides.local(*undo).status == 0
            there = sides.remote(*done, *extra)
            assert (there.status, there.out) == (0, here.out), (done, there.err)
            assert sides.local(*undo).status == 0

    # run: the same result and exit status (a failed execution exits 1 naming where to look)
    for extra in ((), ("--json",)):
        here = sides.local("run", "cli_demo", "--context", '{"name": "ada"}', *extra)
        there = sides.remote("run", "cli_demo", "--context", '{"name": "ada"}', *extra)
        assert (here.status, there.status) == (0, 0), (here.err, there.err)
        if extra:
            assert _result(there.json()) == _result(here.json())
        else:
            assert there.out == here.out
            assert json.loads(there.out) == {"name": "ada", "greeting": "hello ada", "shout": "HELLO ADA"}
    failed_here, failed_there = sides.local("run", "cli_failing"), sides.remote("run", "cli_failing")
    assert (failed_here.status, failed_there.status) == (1, 1)
    assert failed_there.out == failed_here.out
    assert _ids_out(failed_there.err.splitlines()[-1]) == _ids_out(failed_here.err.splitlines()[-1])
    assert "bad thing happened" in failed_there.err
    failed_id = UUID.findall(failed_there.err)[-1]
    detached = sides.remote("run", "cli_demo", "--detach")
    assert detached.status == 0, detached.err
    demo_id = detached.out.strip()
    watched = sides.remote("executions", "watch", demo_id)
    assert watched.status == 0, watched.err
    assert json.loads(watched.out)["shout"] == "HELLO WORLD"

    # executions: list, show, logs, watch of the same stored executions
    sides.same("executions", "list")
    sides.same("executions", "list", "--workflow", "cli_failing", "--status", "failed", "-n", "1")
    sides.same("executions", "show", demo_id)
    sides.same("executions", "show", failed_id, "--verbose")
    sides.same("executions", "logs", failed_id)
    sides.same("executions", "logs", failed_id, "--task", "breaks")
    sides.same("executions", "logs", failed_id, "--task", "breaks", "--attempt", "2")
    sides.same("executions", "logs", demo_id, "--follow")
    sides.same("executions", "watch", demo_id)
    sides.same("executions", "watch", failed_id, status=1)
    sides.same_error("executions", "logs", failed_id, "--task", "nope", status=3)
    sides.same_error("executions", "logs", failed_id, "--attempt", "9", status=3)
    sides.same_error("executions", "cancel", demo_id, status=1)  # it has ended

    # retry (two executions that failed alike) and rerun: the same result, followed to the end
    for extra in ((), ("--json",)):
        first, second = (UUID.findall(sides.local("run", "cli_failing").err)[-1] for _ in range(2))
        here, there = (
            sides.local("executions", "retry", first, *extra),
            sides.remote("executions", "retry", second, *extra),
        )
        assert (here.status, there.status) == (1, 1)
        if extra:
            assert _result(there.json()) == _result(here.json())
        else:
            assert there.out == here.out
        here = sides.local("executions", "rerun", demo_id, *extra)
        there = sides.remote("executions", "rerun", demo_id, *extra)
        assert (here.status, there.status) == (0, 0), (here.err, there.err)
        assert (_result(there.json()) == _result(here.json())) if extra else (there.out == here.out)
    rerun = sides.remote("executions", "rerun", demo_id, "--detach", "--json").json()
    assert rerun["detached"] is True
    assert sides.remote("executions", "watch", rerun["execution_id"]).status == 0

    # schedules and triggers: lists, and each change made here, undone, then made through the server
    for extra in ((), ("--json",)):
        here = sides.local("schedules", "pause", "sched_flow", *extra)
        assert here.status == 0, here.err
        assert sides.local("schedules", "resume", "sched_flow").status == 0
        there = sides.remote("schedules", "pause", "sched_flow", *extra)
        assert (there.status, there.out) == (0, here.out), there.err
        sides.same("schedules", "pause", "sched_flow", "nightly")  # nothing to do now, on either side
        assert sides.local("schedules", "resume", "sched_flow").status == 0
    assert sides.local("schedules", "pause", "sched_flow").status == 0  # paused: no next fire time moves on
    sides.same("schedules", "list")
    for name in ("trig_flow::on_file", "trig_flow::broken", "trig_flow::stuck"):
        assert sides.local("triggers", "pause", name).status == 0  # paused: nothing polls them
        sides.same("triggers", "pause", name)  # nothing to do now
    sides.same_settled("triggers", "list")
    for extra in ((), ("--json",)):
        here = sides.local("triggers", "resume", "trig_flow::broken", *extra)
        assert sides.local("triggers", "pause", "trig_flow::broken").status == 0
        there = sides.remote("triggers", "resume", "trig_flow::broken", *extra)
        assert (there.status, there.out) == (0, here.out), there.err
        assert sides.local("triggers", "pause", "trig_flow::broken").status == 0
    fired_here = sides.local("triggers", "fire", "trig_flow::on_file", "--context", '{"item": 3}', "--json")
    fired_there = sides.remote("triggers", "fire", "trig_flow::on_file", "--context", '{"item": 3}', "--json")
    assert (fired_here.status, fired_there.status) == (0, 0), fired_there.err
    assert _ids_out(fired_there.out) == _ids_out(fired_here.out)
    collect = fired_there.json()["executions"][0]["execution_id"]
    assert json.loads(sides.remote("executions", "watch", collect).out)["took"] == 3
    sides.same_error("triggers", "fire", "no_such_trigger", status=3)
    sides.same_error("schedules", "pause", "no_such_flow", status=3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refusals_keep_their_exit_status_through_the_server(
    deployment: Any,
    reg_archives: dict[str, Path],
    cli_flows_site: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    typed = reg_archives["typed"]
    limit = typed.stat().st_size - 1
    server = deployment.start("--max-archive-size", str(limit))
    writer, reader = deployment.key("write"), deployment.key("read")
    sides = _sides(deployment, server, writer, capfd)
    monkeypatch.syspath_prepend(str(cli_flows_site))  # the server's plugins are this process's too (cli_pkg)

    # too big for this server: 413, exit 1, the message `register` gives; nothing stored
    big = sides.remote("register", str(typed))
    assert big.status == 1, big
    assert f"is {typed.stat().st_size:,} bytes, more than the limit of {limit:,} (MAX_ARCHIVE_SIZE)" in big.err
    assert sides.remote("packages", "list", "--json").json()["packages"] == []
    assert sides.local("register", str(typed)).status == 0

    # not found: 3, the same message as against the database
    sides.same_error("packages", "show", "no-such-package", status=3)
    sides.same_error("executions", "show", "0000", status=3)
    sides.same_error("run", "no_such_flow", status=3)
    # bad input: 1, the typed input's field named, as against the database; nothing stored
    refused = sides.same_error("run", "nightly_report", "--context", '{"day": "someday"}', status=1)
    assert "'day'" in refused
    sides.same_error("run", "nightly_report", "--context", "[1]", status=1)  # checked before sending
    sides.same_error("register", str(deployment.tmp / "missing.cloacina"), status=1)
    assert sides.remote("executions", "list", "--json").json() == {"executions": []}

    # keys: a wrong one (401) and a read key doing a write (403) are exit 1, naming the fix
    wrong = sides.remote("packages", "list", key="ck_not-a-key")
    assert wrong.status == 1
    assert "The API key is not valid" in wrong.err
    assert "CLOACINA_API_KEY" in wrong.err
    wrong_json = sides.remote("packages", "list", "--json", key="ck_not-a-key")
    assert json.loads(wrong_json.err)["exit_status"] == 1
    forbidden = sides.remote("packages", "deactivate", "typed-flow", key=reader)
    assert forbidden.status == 1
    assert "has role read" in forbidden.err
    assert "--role write" in forbidden.err
    assert sides.remote("packages", "list", key=reader).status == 0  # reading is allowed
    missing = sides.remote("packages", "list", key="")
    assert missing.status == 1
    assert "needs an API key" in missing.err

    # the key decides the tenant: another --tenant is refused, the key's own is fine
    other = sides.remote("packages", "list", "--tenant", "elsewhere")
    assert other.status == 1
    assert "is not the tenant of the API key ('public')" in other.err
    assert sides.remote("packages", "list", "--tenant", "public").status == 0

    # commands that need the database refuse --server instead of using the database
    for args in (("tenants", "list"), ("api-keys", "list"), ("serve",), ("trust", "list")):
        refused_cmd = sides.remote(*args)
        assert refused_cmd.status == 1, (args, refused_cmd)
        assert "cannot go through --server" in refused_cmd.err, refused_cmd.err
    assert sides.remote("inspect", str(typed), "--json").status == 0  # purely local: --server is no matter

    # the server unreachable: exit 2, naming its address
    down = f"http://127.0.0.1:{_free_port()}"
    unreachable = _ctl({**sides.remote_env, "CLOACINA_SERVER": down}, "packages", "list")  # the console script
    assert unreachable.status == 2, unreachable
    assert f"Cannot reach the Cloacina server at {down}" in unreachable.err
    not_a_url = sides.remote("packages", "list", CLOACINA_SERVER="localhost:8080")
    assert not_a_url.status == 1
    assert "is not a server address" in not_a_url.err
