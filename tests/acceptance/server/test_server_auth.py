"""Who may call what, on a real server: every route of the OpenAPI document walked with no key, a wrong,
malformed and revoked key, and a key of each role; and a key of one tenant never reaching another's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
ADMIN_ONLY = {
    ("DELETE", "/api/v1/packages/{name}/versions/{version}"),
    ("GET", "/api/v1/api-keys"),
    ("POST", "/api/v1/api-keys"),
    ("DELETE", "/api/v1/api-keys/{key_id}"),
    ("PUT", "/api/v1/tenants/{tenant}/policy"),
    ("POST", "/api/v1/trust"),
    ("DELETE", "/api/v1/trust/{key}"),
}
RANK = {"read": 0, "write": 1, "admin": 2}


def _needed(method: str, path: str) -> str | None:
    """The least role each route must need (None: public): reads need read, changes write, a few admin."""
    if (method, path) in PUBLIC:
        return None
    if (method, path) in ADMIN_ONLY:
        return "admin"
    return "read" if method == "GET" else "write"


def _status(client: Any, method: str, path: str) -> int:
    """The status of ``method path`` (path parameters filled with a name nothing has); the body is not read."""
    concrete = path.replace("{", "").replace("}", "")  # e.g. /api/v1/executions/execution_id
    with client.stream(method, concrete) as response:
        return int(response.status_code)


def test_every_route_is_refused_unless_its_rule_allows_the_key(deployment: Any) -> None:
    keys = {role: deployment.key(role) for role in RANK}
    revoked = deployment.key("admin", name="to revoke")
    revoked_id = revoked.split("_")[1]
    deployment.ctl("api-keys", "revoke", revoked_id)
    server = deployment.start()
    document = server.client().get("/openapi.json").json()
    routes = [(m.upper(), p) for p, ops in document["paths"].items() for m in ops]
    assert len(routes) >= 30
    assert set(routes) >= PUBLIC | ADMIN_ONLY
    anonymous = server.client()
    bad = {
        "wrong secret": server.client(keys["admin"][:-4] + "AAAA"),
        "unknown id": server.client("cloacina_000000000000_" + "A" * 43),
        "malformed": server.client("not-a-key"),
        "revoked": server.client(revoked),
    }
    by_role = {role: server.client(key) for role, key in keys.items()}
    for method, path in routes:
        needed = _needed(method, path)
        where = f"{method} {path}"
        if needed is None:
            assert _status(anonymous, method, path) == 200, where
            continue
        assert _status(anonymous, method, path) == 401, where
        for what, client in bad.items():
            assert _status(client, method, path) == 401, f"{where} with a {what} key"
        for role, client in by_role.items():
            status = _status(client, method, path)
            if RANK[role] < RANK[needed]:
                assert status == 403, f"{where} with a {role} key: {status}"
            else:
                assert status not in (401, 403), f"{where} with a {role} key: {status}"
    refused = anonymous.get("/api/v1/packages")
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["error"].startswith("No API key.")
    denied = by_role["read"].post("/api/v1/executions", json={"workflow": "cli_demo"})
    assert denied.json()["error"] == (
        f"API key {keys['read'].split('_')[1]} has role read; POST /api/v1/executions needs write or above."
    )
    assert by_role["read"].get("/api/v1/executions").json() == {"executions": []}  # nothing ran


def test_a_key_of_one_tenant_finds_nothing_of_another(deployment: Any, reg_archives: dict[str, Path]) -> None:
    acme_tenant = deployment.tenant("acme")
    public_key = deployment.key("admin")
    acme_key = deployment.key("admin", tenant=acme_tenant)
    server = deployment.start()
    public, acme = server.client(public_key), server.client(acme_key)
    assert acme.get("/api/v1/whoami").json()["tenant"] == acme_tenant

    archive = reg_archives["swap-1"]
    stored = public.post("/api/v1/packages", content=archive.read_bytes())
    assert stored.status_code == 201, stored.text
    eid = public.post("/api/v1/executions", json={"workflow": "cli_demo"}).json()["execution_id"]
    assert deployment.wait_status(public, eid, {"completed"})["tenant"] == "public"

    for method, path in [
        ("GET", f"/api/v1/executions/{eid}"),
        ("GET", f"/api/v1/executions/{eid[:8]}"),
        ("GET", f"/api/v1/executions/{eid}/logs"),
        ("GET", f"/api/v1/executions/{eid}/events"),
        ("POST", f"/api/v1/executions/{eid}/cancel"),
        ("POST", f"/api/v1/executions/{eid}/retry"),
        ("POST", f"/api/v1/executions/{eid}/rerun"),
        ("GET", "/api/v1/packages/reg-swap"),
        ("POST", "/api/v1/packages/reg-swap/versions/1.0.0/activate"),
        ("POST", "/api/v1/packages/reg-swap/deactivate"),
        ("DELETE", "/api/v1/packages/reg-swap/versions/1.0.0"),
        ("DELETE", f"/api/v1/api-keys/{public_key.split('_')[1]}"),
    ]:
        response = acme.request(method, path)
        assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text}"
    shown = acme.get(f"/api/v1/executions/{eid}").json()["error"]
    assert shown.startswith(f"No execution {eid!r} in tenant {acme_tenant!r}")
    submitted = acme.post("/api/v1/executions", json={"workflow": "public::reg_swap::swap_flow"})
    assert submitted.status_code == 404, submitted.text
    assert acme.get("/api/v1/executions").json() == {"executions": []}
    assert acme.get("/api/v1/packages").json()["packages"] == []
    assert [k["tenant"] for k in acme.get("/api/v1/api-keys").json()["api_keys"]] == [acme_tenant]
    own = acme.post("/api/v1/executions", json={"workflow": "cli_demo"}).json()["execution_id"]
    assert deployment.wait_status(acme, own, {"completed"})["tenant"] == acme_tenant
    assert public.get(f"/api/v1/executions/{own}").status_code == 404
    assert public.get("/api/v1/packages/reg-swap").json()["active_version"] == "1.0.0"  # untouched

    # a tenant created while the server runs is served from its first request
    late_tenant = deployment.tenant("late")
    late = server.client(deployment.key("write", tenant=late_tenant))
    later = late.post("/api/v1/executions", json={"workflow": "cli_demo"})
    assert later.status_code == 201, later.text
    assert deployment.wait_status(late, later.json()["execution_id"], {"completed"})["tenant"] == late_tenant
