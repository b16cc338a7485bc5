"""``cloacina-ctl register``, ``packages``, ``tenants`` and registered workflows in ``workflows list``/``run``."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def _packages(ctl: Any, *extra: str) -> Any:
    status, out, err = ctl("packages", "list", "--json", *extra)
    assert status == 0, err
    return json.loads(out)


def test_register_list_show_and_run(ctl: Any, reg_archives: dict[str, Path]) -> None:
    status, out, err = ctl("register", str(reg_archives["swap-1"]))
    assert status == 0, err
    assert out.splitlines()[0] == "Registered reg-swap 1.0.0 in tenant 'public', active"
    assert "reg_swap::swap_flow: work → finish" in out
    steps = err.splitlines()
    assert steps[0].startswith("[1] Read ")
    assert any("fresh worker" in s for s in steps)

    status, out, err = ctl("register", str(reg_archives["swap-1"]), "--json")
    assert status == 0, err
    assert json.loads(out)["status"] == "unchanged"

    listed = _packages(ctl)
    assert listed["packages"] == [
        {
            "name": "reg-swap",
            "tenant": "public",
            "active_version": "1.0.0",
            "versions": ["1.0.0"],
            "workflows": ["reg_swap::swap_flow"],
        }
    ]
    status, out, err = ctl("packages", "show", "reg-swap")
    assert status == 0, err
    assert "  active    1.0.0" in out
    assert "workflow    reg_swap::swap_flow: work → finish" in out

    status, out, err = ctl("workflows", "list", "--json")
    assert status == 0, err
    [flow] = [w for w in json.loads(out)["workflows"] if w["namespace"] == "public::reg_swap::swap_flow"]
    assert flow["source"] == {
        "kind": "registered",
        "distribution": "reg-swap",
        "version": "1.0.0",
        "entry_point": "swap_flow",
    }
    assert flow["fingerprint"].startswith("sha256:")
    status, out, err = ctl("workflows", "list")
    assert "registered reg-swap 1.0.0" in out

    status, out, err = ctl("run", "swap_flow", "--json")
    assert status == 0, err
    assert "reg-swap 1.0.0 working" in err  # the worker's print: on stderr, stdout is only the result
    result = json.loads(out)
    assert result["context"]["version"] == "1.0.0"
    status, out, err = ctl("executions", "show", result["execution_id"], "--json")
    shown = json.loads(out)
    assert (shown["package_version"], shown["workflow_fingerprint"]) == ("1.0.0", flow["fingerprint"])
    status, out, err = ctl("executions", "show", result["execution_id"])
    assert status == 0, err
    assert "  version   1.0.0" in out
    assert f"  fingerprint {flow['fingerprint']}" in out


def test_newer_versions_activate_and_activate_rolls_back(ctl: Any, reg_archives: dict[str, Path]) -> None:
    assert ctl("register", str(reg_archives["swap-1"]))[0] == 0
    status, out, err = ctl("register", str(reg_archives["swap-2"]), "--json")
    assert status == 0, err
    assert (json.loads(out)["active"], json.loads(out)["previous_active"]) == (True, "1.0.0")
    status, out, err = ctl("packages", "activate", "reg-swap==1.0.0")
    assert (status, out.strip()) == (0, "reg-swap 1.0.0 is active in tenant 'public' (was 2.0.0)")
    status, out, err = ctl("run", "reg_swap::swap_flow", "--json")
    assert json.loads(out[out.index("{") :])["context"]["version"] == "1.0.0"
    status, out, err = ctl("packages", "list")
    assert "1.0.0*, 2.0.0" in out
    status, out, err = ctl("packages", "remove", "reg-swap==2.0.0")
    assert status == 0, err
    assert _packages(ctl)["packages"][0]["versions"] == ["1.0.0"]


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda a, t: ["register", str(a["shadow"])], "which shadow the standard library"),
        (lambda a, t: ["register", str(t / "missing.cloacina")], "no such file"),
        (lambda a, t: ["register", str(a["garbage"])], "not a zip file"),
        (lambda a, t: ["register", str(a["altered"])], "with different bytes"),
        (lambda a, t: ["packages", "remove", "reg-swap"], "does not name a version: write NAME==VERSION"),
        (lambda a, t: ["packages", "list", "--tenant", "nobody"], "Tenant 'nobody' does not exist"),
        (lambda a, t: ["register", str(a["swap-2"]), "--tenant", "Bad-Name"], "Tenant name 'Bad-Name' is not allowed"),
    ],
)
def test_bad_input_exits_1_and_changes_nothing(
    ctl: Any, reg_archives: dict[str, Path], tmp_path: Path, make_args: Any, message: str
) -> None:
    assert ctl("register", str(reg_archives["swap-1"]))[0] == 0
    garbage = tmp_path / "garbage.cloacina"
    garbage.write_bytes(b"not a zip at all")
    altered = tmp_path / "altered.cloacina"
    shutil.copy(reg_archives["swap-1"], altered)
    with zipfile.ZipFile(altered, "a") as zf:
        zf.comment = b"other bytes"
    before = _packages(ctl)
    installs = sorted(p.name for p in (tmp_path / "home" / "packages").iterdir())
    status, _out, err = ctl(*make_args({**reg_archives, "garbage": garbage, "altered": altered}, tmp_path))
    assert status == 1
    assert message in err
    assert err.splitlines()[-1].startswith("error: ")  # after any progress steps
    assert "Traceback" not in err
    assert _packages(ctl) == before
    assert sorted(p.name for p in (tmp_path / "home" / "packages").iterdir()) == installs


def test_removing_a_version_in_use_is_refused_with_the_count(ctl: Any, reg_archives: dict[str, Path]) -> None:
    assert ctl("register", str(reg_archives["swap-1"]))[0] == 0
    status, out, err = ctl("run", "swap_flow", "--detach")
    assert status == 0, err
    execution_id = out.strip()
    status, out, err = ctl("packages", "remove", "reg-swap==1.0.0")
    assert status == 1
    assert "reg-swap 1.0.0 is still used by 1 unfinished execution(s)" in err
    status, out, err = ctl("packages", "show", "reg-swap", "--json")
    assert json.loads(out)["versions"][0]["running_executions"] == 1
    status, out, err = ctl("packages", "remove", "reg-swap==1.0.0", "--force")
    assert status == 0, err
    assert "it was active" in out
    status, out, err = ctl("executions", "show", execution_id, "--json")
    assert json.loads(out)["status"] == "queued"  # left for a host; it can no longer resume it


def test_unknown_package_exits_3(ctl: Any) -> None:
    status, _out, err = ctl("packages", "show", "nothing-here")
    assert status == 3
    assert "No package 'nothing-here' is registered in tenant 'public'" in err
    status, _out, err = ctl("packages", "activate", "nothing-here==1.0")
    assert status == 3


def test_tenants_keep_packages_apart(ctl: Any, reg_archives: dict[str, Path], database_url: str) -> None:
    import uuid

    tenant = f"t_{uuid.uuid4().hex[:10]}"
    try:
        status, out, err = ctl("tenants", "create", tenant)
        assert status == 0, err
        assert f"Created tenant '{tenant}'" in out
        status, out, err = ctl("tenants", "list", "--json")
        assert [t["name"] for t in json.loads(out)["tenants"]] == sorted(["public", tenant])
        assert ctl("register", str(reg_archives["swap-2"]), "--tenant", tenant)[0] == 0
        assert ctl("register", str(reg_archives["swap-1"]))[0] == 0
        assert _packages(ctl, "--tenant", tenant)["packages"][0]["active_version"] == "2.0.0"
        assert _packages(ctl)["packages"][0]["active_version"] == "1.0.0"
        status, out, err = ctl("run", "swap_flow", "--json", "--tenant", tenant)
        assert json.loads(out[out.index("{") :])["context"]["version"] == "2.0.0"
        execution_id = json.loads(out[out.index("{") :])["execution_id"]
        assert ctl("executions", "show", execution_id, "--tenant", tenant)[0] == 0
        assert ctl("executions", "show", execution_id)[0] == 3  # not in public
        assert ctl("tenants", "create", tenant)[0] == 1
    finally:
        if database_url.startswith("postgresql"):
            import psycopg

            with psycopg.connect(database_url.split("?")[0], autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{tenant}" CASCADE')
