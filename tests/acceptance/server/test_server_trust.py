"""Tenants and trust over the API on a real server: the key's own tenant, the signature policy and the
trusted keys, with the command line's checks and messages; another tenant's are not found."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

SERVING = importlib.import_module("tests.conftest").load_helper(  # tests/ is not a package
    "cloacina_tests_serving", "serving.py"
)


def _upload(client: httpx.Client, archive: Path) -> httpx.Response:
    return client.post("/api/v1/packages", content=archive.read_bytes(), params={"filename": archive.name})


def _refused(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert "Traceback" not in body["error"]
    return str(body["error"])


def _as_cli(deployment: Any, response: httpx.Response, status: int, *args: str) -> str:
    """The API's refusal (HTTP ``status``): the message and exit status ``cloacina-ctl ARGS`` refuses with."""
    error = _refused(response, status)
    proc = subprocess.run(
        [str(SERVING.ctl_path()), *args], env=deployment.env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == response.json()["exit_status"] != 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert lines == [f"error: {error}"], proc.stderr
    return error


def test_trust_and_policy_over_the_api(deployment: Any, reg_archives: dict[str, Path]) -> None:
    acme_tenant = deployment.tenant("acme")
    keys = {name: deployment.ctl("signing-keys", "generate", name) for name in ("alice", "mallory")}
    home_keys = Path(deployment.env["CLOACINA_HOME"]) / "signing-keys"

    def signed(source: Path, name: str, *by: str) -> Path:
        target = deployment.tmp / name
        shutil.copy(source, target)
        deployment.ctl("sign", str(target), *(a for k in by for a in ("--key", k)))
        return target

    by_alice = signed(reg_archives["swap-1"], "alice.cloacina", "alice")
    by_mallory = signed(reg_archives["swap-1"], "mallory.cloacina", "mallory")
    alice_2 = signed(reg_archives["swap-2"], "alice-2.cloacina", "alice")
    admin_key, read_key = deployment.key("admin", tenant=acme_tenant), deployment.key("read", tenant=acme_tenant)
    public_admin_key = deployment.key("admin")
    server = deployment.start()
    admin, reader, public = server.client(admin_key), server.client(read_key), server.client(public_admin_key)
    policy = f"/api/v1/tenants/{acme_tenant}/policy"

    # a key sees its own tenant only
    assert [t["name"] for t in admin.get("/api/v1/tenants").json()["tenants"]] == [acme_tenant]
    assert [t["name"] for t in public.get("/api/v1/tenants").json()["tenants"]] == ["public"]
    assert reader.get(policy).json() == {
        "tenant": acme_tenant,
        "require_signatures": False,
        "previous": False,
        "trusted_keys": 0,
    }

    # requiring signatures while trusting no key: refused with the command line's message
    refusal = _as_cli(
        deployment,
        admin.put(policy, json={"require_signatures": True}),
        409,
        *("tenants", "policy", acme_tenant, "--require-signatures"),
    )
    assert refusal.startswith(f"Tenant {acme_tenant!r} trusts no key")

    # a read key changes nothing
    pem = (home_keys / "alice.pub").read_text()
    for method, path, body in [
        ("POST", "/api/v1/trust", {"name": "alice", "public_key": pem}),
        ("PUT", policy, {"require_signatures": False}),
        ("DELETE", "/api/v1/trust/alice", None),
    ]:
        assert "has role read" in _refused(reader.request(method, path, json=body), 403)

    # the body holds the key's text; a file name is not read, a private key is refused
    not_a_key = _refused(
        admin.post("/api/v1/trust", json={"name": "alice", "public_key": str(home_keys / "alice.pub")}), 400
    )
    assert not_a_key.startswith("the key given is not an Ed25519 public key")
    private = (home_keys / "alice.key").read_text()
    assert "is a private key" in _refused(
        admin.post("/api/v1/trust", json={"name": "alice", "public_key": private}), 400
    )
    assert "public_key" in _refused(admin.post("/api/v1/trust", json={"name": "alice"}), 422)
    assert admin.get("/api/v1/trust").json()["keys"] == []

    added = admin.post("/api/v1/trust", json={"name": "alice", "public_key": pem})
    assert added.status_code == 200, added.text
    assert (added.json()["status"], added.json()["fingerprint"]) == ("added", keys["alice"]["fingerprint"])
    again = admin.post("/api/v1/trust", json={"name": "alice", "public_key": keys["alice"]["public_key_text"]})
    assert again.json()["status"] == "unchanged"
    renamed = _as_cli(
        deployment,
        admin.post("/api/v1/trust", json={"name": "carol", "public_key": pem}),
        409,
        *("trust", "add", "carol", keys["alice"]["public_key_text"], "--tenant", acme_tenant),
    )
    assert "already, as 'alice'" in renamed

    set_policy = admin.put(policy, json={"require_signatures": True})
    assert set_policy.status_code == 200, set_policy.text
    assert set_policy.json() == {
        "tenant": acme_tenant,
        "require_signatures": True,
        "previous": False,
        "trusted_keys": 1,
    }
    listed = reader.get("/api/v1/trust").json()
    assert listed["require_signatures"] is True
    assert [(k["name"], k["trusted"]) for k in listed["keys"]] == [("alice", True)]

    # under the policy: unsigned and untrusted archives are refused; alice's registers
    assert "the archive is not signed" in _refused(_upload(admin, reg_archives["swap-1"]), 409)
    assert "signed only by keys it does not trust: 'mallory'" in _refused(_upload(admin, by_mallory), 409)
    registered = _upload(admin, by_alice)
    assert registered.status_code == 201, registered.text
    assert [(s["name"], s["trust"]) for s in registered.json()["signed_by"]] == [("alice", "trusted")]

    # another tenant's policy and keys are not found; its own are its own
    for method, path, body in [
        ("GET", policy, None),
        ("PUT", policy, {"require_signatures": False}),
        ("DELETE", "/api/v1/trust/alice", None),
    ]:
        _refused(public.request(method, path, json=body), 404)
    assert public.get("/api/v1/trust").json() == {"tenant": "public", "require_signatures": False, "keys": []}
    assert reader.get(policy).json()["require_signatures"] is True  # untouched

    # revoking: the version alice signed is listed (it keeps running); a new upload signed by her is refused
    revoked = admin.delete("/api/v1/trust/alice")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked"] is True
    assert revoked.json()["signed_versions"] == [{"name": "reg-swap", "version": "1.0.0", "active": True}]
    assert admin.delete("/api/v1/trust/alice").json()["revoked"] is False
    refused = _refused(_upload(admin, alice_2), 409)
    assert (
        f"signed by key 'alice' ({keys['alice']['fingerprint'][:16]}), which tenant {acme_tenant!r} revoked" in refused
    )
    assert [v["version"] for v in admin.get("/api/v1/packages/reg-swap").json()["versions"]] == ["1.0.0"]
    assert reader.get("/api/v1/trust").json()["keys"] == []
    assert [k["trusted"] for k in reader.get("/api/v1/trust", params={"all": "true"}).json()["keys"]] == [False]
    _as_cli(deployment, admin.delete("/api/v1/trust/nobody"), 404, "trust", "remove", "nobody", "--tenant", acme_tenant)
