"""The rule table fails closed: every route of the application has a rule, and a route without one is
refused to every key (in-process; the walk over a real server is tests/acceptance/server/test_server_auth.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi.routing import APIRoute

from cloacina_host._registry._api_keys import Role, create_api_key, open_key_store
from cloacina_host._server import Tenants, create_app
from cloacina_host._server._app import ROUTERS, Where
from cloacina_host._server._auth import RULES


async def _never(tenant: str) -> object:
    raise AssertionError(f"no tenant is served here ({tenant})")


async def test_every_route_has_a_rule_and_one_without_is_refused(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    store = open_key_store(None, home=home)
    try:
        app = create_app(tenants=Tenants(_never), api_keys=store, where=Where(None, home))  # type: ignore[arg-type]
        names = {r.name for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)}
        assert names == set(RULES)  # no route without a rule, no rule without a route

        async def unruled() -> dict[str, bool]:
            return {"ok": True}

        app.add_api_route("/api/v1/unruled", unruled, name="unruled")
        token = create_api_key(None, home=home, tenant="public", role=Role.ADMIN).token
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://server") as client:
            refused = await client.get("/api/v1/unruled", headers=auth)
            assert refused.status_code == 403
            assert refused.json()["error"] == "GET /api/v1/unruled has no access rule, so it is refused for every key."
            assert (await client.get("/api/v1/unruled")).status_code == 403
            assert (await client.get("/api/v1/whoami", headers=auth)).json()["role"] == "admin"
    finally:
        store.database.dispose()
