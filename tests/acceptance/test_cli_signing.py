"""Signed packages end to end, as a user types it: keys, signing, trust per tenant, the policy at
register, ``serve --watch`` and every later load, revocation, and what each version records."""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import json
import os
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloacina_host.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SERVING = importlib.import_module("tests.conftest").load_helper(  # tests/ is not a package
    "cloacina_tests_serving", "serving.py"
)

Ctl = Callable[..., tuple[int, str, str]]


def ok(ctl: Ctl, *args: str) -> Any:
    status, out, err = ctl(*args, "--json")
    assert status == 0, err
    return json.loads(out)


def refused(ctl: Ctl, *args: str) -> str:
    """Run a command that must be refused: exit 1, one line of error, no traceback; the error line."""
    status, _out, err = ctl(*args)
    assert status == 1, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def keys(ctl: Ctl) -> dict[str, dict[str, Any]]:
    """Key pairs alice, bob and mallory under the home's signing-keys/."""
    return {name: ok(ctl, "signing-keys", "generate", name) for name in ("alice", "bob", "mallory")}


def signed(source: Path, target: Path, ctl: Ctl, *key_names: str) -> Path:
    shutil.copy(source, target)
    args = [a for k in key_names for a in ("--key", k)]
    ok(ctl, "sign", str(target), *args)
    return target


def members(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def rezip(path: Path, items: list[tuple[str, bytes]]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in items:
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    path.write_bytes(buffer.getvalue())
    return path


def tampered_manifest(src: Path, out: Path) -> Path:
    items = members(src)
    manifest = json.loads(items[0][1])
    manifest["workflows"][0]["description"] = "now does something else"
    return rezip(out, [("manifest.json", json.dumps(manifest).encode()), *items[1:]])


def swapped_wheel(src: Path, other: Path, out: Path) -> Path:
    """The wheel of ``other`` (another build of the package) under this archive's wheel name."""
    theirs = next(data for name, data in members(other) if name.startswith("wheels/"))
    return rezip(out, [(n, theirs if n.startswith("wheels/") else d) for n, d in members(src)])


def truncated_signature(src: Path, out: Path) -> Path:
    return rezip(out, [(n, d[: len(d) // 3] if n.startswith("signatures/") else d) for n, d in members(src)])


def signature_first(src: Path, out: Path) -> Path:
    items = members(src)
    return rezip(out, sorted(items, key=lambda m: not m[0].startswith("signatures/")))


def one_bad_signature(src: Path, out: Path) -> Path:
    items, spoiled = [], False
    for name, data in members(src):
        if name.startswith("signatures/") and not spoiled:
            doc = json.loads(data)
            raw = bytearray(base64.b64decode(doc["signature"]))
            raw[10] ^= 0x40
            doc["signature"] = base64.b64encode(bytes(raw)).decode()
            data, spoiled = json.dumps(doc, indent=2).encode(), True
        items.append((name, data))
    return rezip(out, items)


def test_a_tenant_that_requires_signatures(
    ctl: Ctl, keys: dict[str, dict[str, Any]], reg_archives: dict[str, Path], tmp_path: Path
) -> None:
    home_keys = tmp_path / "home" / "signing-keys"
    assert ok(ctl, "trust", "add", "alice", str(home_keys / "alice.pub"))["status"] == "added"
    assert ok(ctl, "trust", "add", "bob", keys["bob"]["public_key_text"])["status"] == "added"  # the pasted form
    assert ok(ctl, "trust", "add", "bob", str(home_keys / "bob.pub"))["status"] == "unchanged"
    assert "already, as 'alice'" in refused(ctl, "trust", "add", "carol", str(home_keys / "alice.pub"))
    listed = ok(ctl, "trust", "list")
    assert [(k["name"], k["fingerprint"]) for k in listed["keys"]] == [
        ("alice", keys["alice"]["fingerprint"]),
        ("bob", keys["bob"]["fingerprint"]),
    ]
    assert listed["require_signatures"] is False
    assert ok(ctl, "tenants", "policy", "public", "--require-signatures")["require_signatures"] is True

    def registry() -> Any:
        return ok(ctl, "packages", "list")["packages"]

    assert "the archive is not signed" in refused(ctl, "register", str(reg_archives["swap-1"]))
    by_mallory = signed(reg_archives["swap-1"], tmp_path / "mallory.cloacina", ctl, "mallory")
    assert "signed only by keys it does not trust: 'mallory'" in refused(ctl, "register", str(by_mallory))
    assert registry() == []

    both = signed(reg_archives["swap-1"], tmp_path / "both.cloacina", ctl, "alice", "bob")
    result = ok(ctl, "register", str(both))
    assert (result["status"], result["active"]) == ("registered", True)
    assert {s["name"] for s in result["signed_by"]} == {"alice", "bob"}
    status, out, err = ctl("inspect", str(both))  # with a database configured: which trusted key each matches
    assert status == 0, err
    assert "verifies  trusted in tenant 'public' as 'alice'" in out

    by_alice = signed(reg_archives["swap-2"], tmp_path / "two.cloacina", ctl, "alice")
    two_signed = signed(reg_archives["swap-2"], tmp_path / "two-both.cloacina", ctl, "alice", "bob")
    bad = {
        "tampered manifest": (tampered_manifest(by_alice, tmp_path / "t1.cloacina"), "manifest.json was changed"),
        "swapped wheel": (
            swapped_wheel(by_alice, reg_archives["swap-1"], tmp_path / "t2.cloacina"),
            "the wheel was altered after packaging",
        ),
        "truncated signature": (truncated_signature(by_alice, tmp_path / "t3.cloacina"), "is damaged"),
        "signature before the manifest": (
            signature_first(by_alice, tmp_path / "t4.cloacina"),
            "a signature comes after the manifest",
        ),
        "one of two bad": (one_bad_signature(two_signed, tmp_path / "t5.cloacina"), "does not match manifest.json"),
    }
    before = registry()
    for case, (path, message) in bad.items():
        assert message in refused(ctl, "register", str(path)), case
        assert message in refused(ctl, "validate", str(path)), case
        assert registry() == before, case

    revoked = ok(ctl, "trust", "remove", "bob")
    assert revoked["revoked"] is True
    assert revoked["signed_versions"] == [{"name": "reg-swap", "version": "1.0.0", "active": True}]
    status, out, _err = ctl("trust", "remove", "bob")
    assert "Already revoked" in out
    assert "reg-swap 1.0.0 (active)" in out
    assert "which tenant 'public' revoked" in refused(ctl, "register", str(two_signed))
    assert registry() == before

    ok(ctl, "trust", "remove", keys["alice"]["fingerprint"][:12])  # by fingerprint prefix: no trusted key left
    assert ctl("trust", "remove", "nobody")[0] == 3
    run = ok(ctl, "run", "swap_flow")  # signed by keys trusted then, revoked since: it keeps running
    assert run["status"] == "completed", run
    shown = ok(ctl, "executions", "show", run["execution_id"])
    assert shown["package_version"] == "1.0.0"
    versions = ok(ctl, "packages", "show", "reg-swap")["versions"]
    assert [(s["name"], s["trusted_at_registration"], s["trust"]) for s in versions[0]["signed_by"]] == [
        ("alice", True, "revoked"),
        ("bob", True, "revoked"),
    ]
    status, out, err = ctl("packages", "show", "reg-swap")
    assert "signed by   alice (" in out
    assert "revoked" in out

    assert "which tenant 'public' revoked" in refused(ctl, "packages", "activate", "reg-swap==1.0.0")  # a new decision
    assert ok(ctl, "tenants", "policy", "public", "--no-require-signatures")["require_signatures"] is False
    assert ok(ctl, "register", str(reg_archives["swap-2"]))["status"] == "registered"  # unsigned, policy off


def test_the_policy_is_refused_while_it_would_stop_an_active_version(
    ctl: Ctl, keys: dict[str, dict[str, Any]], reg_archives: dict[str, Path], tmp_path: Path
) -> None:
    assert "trusts no key" in refused(ctl, "tenants", "policy", "public", "--require-signatures")
    ok(ctl, "register", str(reg_archives["swap-1"]))
    ok(ctl, "trust", "add", "alice", keys["alice"]["public_key"])
    message = refused(ctl, "tenants", "policy", "public", "--require-signatures")
    assert "active version(s) reg-swap 1.0.0 are not signed by a key it trusts" in message
    assert ok(ctl, "tenants", "policy", "public")["require_signatures"] is False
    ok(ctl, "register", str(signed(reg_archives["swap-2"], tmp_path / "s2.cloacina", ctl, "alice")))
    assert ok(ctl, "tenants", "policy", "public", "--require-signatures")["require_signatures"] is True


def test_every_later_load_verifies_the_stored_archive_again(
    ctl: Ctl, keys: dict[str, dict[str, Any]], reg_archives: dict[str, Path], tmp_path: Path, database_url: str
) -> None:
    from sqlalchemy import update

    from cloacina_host._storage import open_database
    from cloacina_host._storage._schema import packages

    ok(ctl, "trust", "add", "alice", keys["alice"]["public_key"])
    ok(ctl, "register", str(signed(reg_archives["swap-1"], tmp_path / "s1.cloacina", ctl, "alice")))
    ok(ctl, "tenants", "policy", "public", "--require-signatures")
    assert ok(ctl, "run", "swap_flow")["status"] == "completed"

    # someone with write access to the database puts an unsigned archive in the signed one's place
    unsigned = reg_archives["swap-1"].read_bytes()
    db = open_database(database_url, home=str(tmp_path / "home"))
    try:
        with db.write("tampering") as conn:
            conn.execute(update(packages).values(archive=unsigned, archive_sha256=hashlib.sha256(unsigned).hexdigest()))
    finally:
        db.dispose()
    message = refused(ctl, "run", "swap_flow")
    assert "Registered package reg-swap 1.0.0 cannot be loaded" in message
    assert "the archive is not signed" in message


def test_serve_watch_registers_only_what_the_tenant_trusts(
    ctl: Ctl, keys: dict[str, dict[str, Any]], reg_archives: dict[str, Path], tmp_path: Path
) -> None:
    ok(ctl, "trust", "add", "alice", keys["alice"]["public_key"])
    ok(ctl, "tenants", "policy", "public", "--require-signatures")
    watch = tmp_path / "watch"
    watch.mkdir()
    shutil.copy(reg_archives["swap-1"], watch / "unsigned.cloacina")
    good = signed(reg_archives["swap-2"], tmp_path / "good.cloacina", ctl, "alice")
    log = tmp_path / "serve.log"
    proc = SERVING.start_serve(log, "--watch", str(watch))
    try:
        SERVING.until(
            "the unsigned archive refused", lambda: "unsigned.cloacina was not registered" in log.read_text(), proc
        )
        assert ok(ctl, "packages", "list")["packages"] == []
        staging = watch / "good.part"
        shutil.copy(good, staging)
        os.replace(staging, watch / "good.cloacina")
        SERVING.until(
            "the signed archive registered", lambda: "good.cloacina: registered reg-swap 2.0.0" in log.read_text(), proc
        )
    finally:
        SERVING.stop_serve(proc)
    output = log.read_text()
    assert "the archive is not signed" in output
    assert [p["active_version"] for p in ok(ctl, "packages", "list")["packages"]] == ["2.0.0"]


def test_packaging_with_signatures_is_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "home"))
    project = Path(shutil.copytree(ROOT / "tests" / "packages" / "reg-swap", tmp_path / "reg-swap"))
    for name in ("alice", "bob"):
        assert main(["signing-keys", "generate", name]) == 0
    outputs = []
    for name in ("one", "two"):
        out = tmp_path / f"{name}.cloacina"
        argv = ["package", str(project), "-o", str(out), "--no-isolation", "--sign", "alice", "--sign", "bob"]
        assert main(argv) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    plain = tmp_path / "plain.cloacina"
    assert main(["package", str(project), "-o", str(plain), "--no-isolation"]) == 0
    assert main(["sign", str(plain), "--key", "bob", "--key", "alice"]) == 0  # signing afterwards: the same bytes
    assert plain.read_bytes() == outputs[0]


def test_trust_and_policy_are_per_tenant(
    ctl: Ctl, keys: dict[str, dict[str, Any]], reg_archives: dict[str, Path], tmp_path: Path, database_url: str
) -> None:
    tenant = f"t_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    ok(ctl, "tenants", "create", tenant)
    try:
        ok(ctl, "trust", "add", "alice", keys["alice"]["public_key"], "--tenant", tenant)
        assert ok(ctl, "tenants", "policy", tenant, "--require-signatures")["tenant"] == tenant
        assert ok(ctl, "trust", "list")["keys"] == []  # public trusts nothing
        assert ok(ctl, "tenants", "policy", "public")["require_signatures"] is False
        assert ok(ctl, "register", str(reg_archives["swap-1"]))["status"] == "registered"  # public: no policy
        assert "not signed" in refused(ctl, "register", str(reg_archives["swap-1"]), "--tenant", tenant)
        by_alice = signed(reg_archives["swap-1"], tmp_path / "a.cloacina", ctl, "alice")
        assert ok(ctl, "register", str(by_alice), "--tenant", tenant)["signed_by"][0]["trust"] == "trusted"
        assert "does not exist" in refused(ctl, "tenants", "policy", "nowhere", "--require-signatures")
    finally:
        if database_url.startswith("postgresql"):
            import psycopg

            with psycopg.connect(database_url.split("?")[0], autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{tenant}" CASCADE')
