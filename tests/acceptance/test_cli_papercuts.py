"""The papercuts of issue 12, item 7, each as a user meets it: real ``cloacina-ctl`` processes."""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import termios
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

TIMEOUT_S = 120  # only so that a broken command fails the test instead of hanging it

SERVING = importlib.import_module("tests.conftest").load_helper(  # tests/ is not a package
    "cloacina_tests_serving", "serving.py"
)
ctl_path = SERVING.ctl_path


def until(what: str, check: Callable[[], Any], proc: subprocess.Popen[str]) -> Any:
    return SERVING.until(what, check, proc, timeout_s=TIMEOUT_S, name="serve")


QUICK = "papercut_pkg_long::a_rather_long_workflow"

FLOWS_SOURCE = """
from cloacina_workflow import Context, task, workflow


@workflow(name="a_rather_long_workflow", package="papercut_pkg_long",
          description="A workflow whose description is long enough to need wrapping on a narrow terminal, "
                      "word after word after word, so that only this column gives way")
class quick:
    @task
    def only(ctx: Context) -> None:
        ctx.set("ran", True)
"""

DUP_SOURCE = """
from cloacina_workflow import Context, task, workflow


@workflow(name="same", package="dup_pkg", description="offered twice")
class same:
    @task
    def only(ctx: Context) -> None:
        ctx.set("ran", True)
"""


def _dist(site: Path, module: str, dist: str, source: str, entry: str) -> None:
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[cloacina.workflows]\n{entry} = {module}:{entry}\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    found = tmp_path_factory.mktemp("papercut-site")
    _dist(found, "cloacina_papercut_flows", "cloacina-papercut-flows", FLOWS_SOURCE, "quick")
    return found


@pytest.fixture(scope="module")
def dup_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    found = tmp_path_factory.mktemp("papercut-dups")
    _dist(found, "cloacina_dup_one", "cloacina-dup-one", DUP_SOURCE, "same")
    _dist(found, "cloacina_dup_two", "cloacina-dup-two", DUP_SOURCE, "same")
    return found


@pytest.fixture
def env(site: Path, tmp_path: Path) -> dict[str, str]:
    found = {k: v for k, v in os.environ.items() if not k.startswith("CLOACINA_")}
    found["CLOACINA_HOME"] = str(tmp_path / "home")
    found["PYTHONPATH"] = str(site)
    return found


def ctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ctl_path(), *args], capture_output=True, text=True, env=env, timeout=TIMEOUT_S, check=False)


# -- global options ------------------------------------------------------------------------------


def test_global_options_before_the_subcommand_win_over_the_environment(env: dict[str, str], tmp_path: Path) -> None:
    opt_home, env_home = tmp_path / "opt-home", tmp_path / "env-home"
    proc = ctl({**env, "CLOACINA_HOME": str(env_home)}, "--home", str(opt_home), "run", QUICK, "--detach")
    assert proc.returncode == 0, proc.stderr
    assert (opt_home / "cloacina.db").is_file()
    assert not env_home.exists()

    proc = ctl({**env, "CLOACINA_TENANT": "nope"}, "--tenant", "public", "executions", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["executions"] == []

    good = tmp_path / "good.db"
    missing = tmp_path / "missing" / "env.db"
    proc = ctl(
        {**env, "CLOACINA_DATABASE_URL": f"sqlite:///{missing}"},
        "--database-url",
        f"sqlite:///{good}",
        "run",
        QUICK,
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert good.is_file()
    assert not missing.parent.exists()


# -- naming workflows ----------------------------------------------------------------------------


def test_another_tenants_workflow_is_refused(env: dict[str, str]) -> None:
    proc = ctl(env, "run", f"other::{QUICK}")
    assert proc.returncode == 3
    assert "belongs to tenant 'other', not to tenant 'public'" in proc.stderr
    assert ctl(env, "executions", "list", "--json").stdout.count('"id"') == 0


def test_an_unknown_workflow_suggests_the_closest_names(env: dict[str, str]) -> None:
    proc = ctl(env, "run", "a_rather_long_workflo")
    assert proc.returncode == 3
    assert f"Did you mean '{QUICK}'?" in proc.stderr
    proc = ctl(env, "run", "papercut_pkg_lng::a_rather_long_workflow")
    assert f"Did you mean '{QUICK}'?" in proc.stderr
    assert "Did you mean" not in ctl(env, "run", "zzz").stderr


def test_an_inactive_packages_workflow_says_how_to_activate_it(
    env: dict[str, str], reg_archives: dict[str, Path]
) -> None:
    assert ctl(env, "register", str(reg_archives["swap-1"])).returncode == 0
    assert ctl(env, "packages", "deactivate", "reg-swap").returncode == 0
    proc = ctl(env, "run", "swap_flow")
    assert proc.returncode == 3
    assert "is in package 'reg-swap', registered in tenant 'public' but with no active version" in proc.stderr
    assert "cloacina-ctl packages activate reg-swap==1.0.0" in proc.stderr


# -- paths that do not exist -------------------------------------------------------------------


def test_package_into_a_missing_directory_is_exit_1_creating_nothing(env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "x.cloacina"
    proc = ctl(env, "package", str(tmp_path), "-o", str(target))
    assert proc.returncode == 1
    assert f"the directory {target.parent} does not exist" in proc.stderr
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("argv", [["executions", "list"], ["run", QUICK], ["tenants", "create", "abc"]])
def test_a_sqlite_url_in_a_missing_directory_is_exit_1_creating_nothing(
    env: dict[str, str], tmp_path: Path, argv: list[str]
) -> None:
    db = tmp_path / "missing" / "dir" / "c.db"
    proc = ctl(env, "--database-url", f"sqlite:///{db}", *argv)
    assert proc.returncode == 1, proc.stderr
    assert f"The directory {db.parent} of the SQLite database {db} does not exist" in proc.stderr
    assert not (tmp_path / "missing").exists()


# -- PostgreSQL URLs -----------------------------------------------------------------------------


def test_the_password_is_masked_in_the_url_only(env: dict[str, str]) -> None:
    proc = ctl(env, "--database-url", "postgresql://someone:a@127.0.0.1:1/nowhere", "executions", "list")
    assert proc.returncode == 2
    assert "postgresql://someone:***@127.0.0.1:1/nowhere" in proc.stderr
    assert "connection failed" in proc.stderr  # the letter 'a' is left alone elsewhere
    assert "f***iled" not in proc.stderr


def _wrong_password(url: str) -> str:
    return re.sub(r"^(postgresql://[^:/@]+):[^@]*@", r"\1:definitely-wrong@", url)


@pytest.mark.postgres
@pytest.mark.parametrize("argv", [["worker"], ["executions", "list"], ["run", QUICK, "--distributed", "--detach"]])
def test_a_wrong_postgresql_password_is_exit_2_at_once(env: dict[str, str], postgres_url: str, argv: list[str]) -> None:
    url = _wrong_password(postgres_url)
    assert url != postgres_url
    proc = ctl(env, "--database-url", url, *argv)  # `worker` used to retry it for ever
    assert proc.returncode == 2, proc.stderr
    assert "password authentication failed" in proc.stderr
    assert "definitely-wrong" not in proc.stderr
    assert "Retrying" not in proc.stderr


# -- listings ------------------------------------------------------------------------------------


def test_workflows_list_shows_conflicting_workflows_with_the_conflict(env: dict[str, str], dup_site: Path) -> None:
    proc = ctl({**env, "PYTHONPATH": f"{env['PYTHONPATH']}{os.pathsep}{dup_site}"}, "workflows", "list")
    assert proc.returncode == 0, proc.stderr
    [row] = [line for line in proc.stdout.splitlines() if "public::dup_pkg::same" in line]
    assert "CONFLICT: installed cloacina-dup-one 1.0; installed cloacina-dup-two 1.0" in row
    assert f"public::{QUICK}" in proc.stdout


def test_versions_are_listed_in_version_order(env: dict[str, str], reg_archives: dict[str, Path]) -> None:
    for archive in ("swap-2", "swap-1"):  # registered newest first
        assert ctl(env, "register", str(reg_archives[archive])).returncode == 0
    listed = json.loads(ctl(env, "packages", "list", "--json").stdout)["packages"]
    assert listed[0]["versions"] == ["1.0.0", "2.0.0"]
    assert listed[0]["active_version"] == "2.0.0"
    assert "1.0.0, 2.0.0*" in ctl(env, "packages", "list").stdout
    shown = ctl(env, "packages", "show", "reg-swap").stdout
    assert shown.index("version 1.0.0") < shown.index("version 2.0.0 (active)")


def _on_a_terminal(env: dict[str, str], columns: int, *args: str) -> list[str]:
    """``cloacina-ctl ARGS`` on a pseudo-terminal ``columns`` wide: its lines, colours removed."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    try:
        proc = subprocess.Popen(
            [ctl_path(), *args],
            stdin=follower,
            stdout=follower,
            stderr=subprocess.PIPE,
            env={k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")},  # the terminal's size decides
        )
    finally:
        os.close(follower)
    chunks = []
    try:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=TIMEOUT_S) == 0
    finally:
        os.close(leader)
        proc.kill()
        if proc.stderr is not None:
            proc.stderr.close()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())
    return [line.rstrip() for line in text.replace("\r\n", "\n").splitlines()]


def test_tables_fit_the_terminal_and_never_split_a_name(env: dict[str, str]) -> None:
    namespace = f"public::{QUICK}"
    assert ctl(env, "run", QUICK).returncode == 0
    for columns in (120, 160):
        for args in (("workflows", "list"), ("executions", "list")):
            lines = _on_a_terminal(env, columns, *args)
            assert max(len(line) for line in lines) <= columns, lines
            assert any(namespace in line for line in lines), lines
    narrow = _on_a_terminal(env, 120, "executions", "list")
    short_id = narrow[1].split()[0]
    assert len(short_id) == 8
    shown = ctl(env, "executions", "show", short_id, "--json")  # the prefix names the execution
    assert json.loads(shown.stdout)["workflow"] == namespace


# -- --json errors, completion -------------------------------------------------------------------


def test_with_json_errors_are_one_json_object_on_stderr(env: dict[str, str]) -> None:
    proc = ctl(env, "run", "zzz", "--json")
    assert proc.returncode == 3
    assert proc.stdout == ""
    error = json.loads(proc.stderr)
    assert error["exit_status"] == 3
    assert error["error"].startswith("No workflow named 'zzz'.")
    usage = ctl(env, "--json", "run", QUICK, "--context", "{")
    assert json.loads(usage.stderr)["exit_status"] == 1


def _complete(env: dict[str, str], *words: str) -> list[str]:
    proc = subprocess.run(
        [ctl_path()],
        capture_output=True,
        text=True,
        env={
            **env,
            "_CLOACINA_CTL_COMPLETE": "bash_complete",
            "COMP_WORDS": " ".join(words),
            "COMP_CWORD": str(len(words) - 1),
        },
        timeout=TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines()]


def test_shell_completion_offers_workflow_package_and_execution_names(
    env: dict[str, str], reg_archives: dict[str, Path]
) -> None:
    assert ctl(env, "register", str(reg_archives["swap-1"])).returncode == 0
    assert _complete(env, "cloacina-ctl", "run", "a_rather") == ["a_rather_long_workflow"]
    assert _complete(env, "cloacina-ctl", "run", "reg") == ["reg_swap::swap_flow"]
    assert _complete(env, "cloacina-ctl", "packages", "show", "r") == ["reg-swap"]
    assert _complete(env, "cloacina-ctl", "packages", "activate", "") == ["reg-swap==1.0.0"]
    execution_id = ctl(env, "run", QUICK, "--detach").stdout.strip()
    assert _complete(env, "cloacina-ctl", "executions", "show", execution_id[:4]) == [execution_id]
    script = subprocess.run(
        [ctl_path()], capture_output=True, text=True, env={**env, "_CLOACINA_CTL_COMPLETE": "bash_source"}, timeout=60
    )
    assert "complete -o nosort -F _cloacina_ctl_completion cloacina-ctl" in script.stdout


# -- serve --watch -------------------------------------------------------------------------------


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
        log = (tmp_path / f"serve-{len(started)}.log").open("w")
        proc = subprocess.Popen(
            [ctl_path(), "serve", "--interval", "0.2", *args], stdout=log, stderr=subprocess.STDOUT, text=True, env=env
        )
        log.close()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_serve_watch_never_activates_an_older_version_unless_told_to(
    env: dict[str, str], tmp_path: Path, reg_archives: dict[str, Path], serve: Callable[..., subprocess.Popen[str]]
) -> None:
    watch = tmp_path / "watch"
    watch.mkdir()
    shutil.copy(reg_archives["swap-2"], watch / "reg-swap-2.cloacina")

    def versions() -> dict[str, bool]:
        listed = json.loads(ctl(env, "packages", "list", "--json").stdout)["packages"]
        return {v: v == p["active_version"] for p in listed for v in p["versions"]}

    first = serve(env, "--watch", str(watch))
    until("2.0.0 to be active", lambda: versions() == {"2.0.0": True}, first)
    shutil.copy(reg_archives["swap-1"], watch / "reg-swap-1.cloacina")  # an older version appears
    until("1.0.0 to be registered", lambda: "1.0.0" in versions(), first)
    assert versions() == {"1.0.0": False, "2.0.0": True}
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=TIMEOUT_S) == 0
    log = (tmp_path / "serve-0.log").read_text()
    assert "registered reg-swap 1.0.0, not activated: it is older than the active 2.0.0" in log

    (watch / "reg-swap-2.cloacina").unlink()  # only the older file is left, and serve is told to use it
    second = serve(env, "--watch", str(watch), "--allow-downgrade")
    until("1.0.0 to be active", lambda: versions() == {"1.0.0": True, "2.0.0": False}, second)
