"""``cloacina-ctl api-keys create|list|revoke`` and what the key store keeps: a hash, never the secret."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from cloacina_host._registry._api_keys import open_key_store
from cloacina_host._storage import parse_database_url


def test_create_list_revoke_and_only_a_hash_is_stored(ctl: Any, database_url: str, tmp_path: Path) -> None:
    status, out, err = ctl("api-keys", "create", "--role", "write", "--name", "deploy bot")
    assert status == 0, err
    token = out.strip()
    assert token.startswith("cloacina_")
    key_id, secret = token[len("cloacina_") :].split("_", 1)
    assert f"Created API key {key_id} (write) of tenant 'public'; it is shown once" in err
    status, out, _ = ctl("api-keys", "list", "--json")
    (listed,) = json.loads(out)["api_keys"]
    assert listed["id"] == key_id
    assert (listed["tenant"], listed["role"], listed["name"], listed["revoked_at"]) == (
        "public",
        "write",
        "deploy bot",
        None,
    )
    assert "key" not in listed

    engine = create_engine(parse_database_url(database_url))  # psycopg 3, as the host connects
    try:
        with engine.connect() as conn:
            rows = [tuple(map(str, r)) for r in conn.execute(text("SELECT * FROM api_keys"))]
    finally:
        engine.dispose()
    assert not any(secret in cell or token in cell for row in rows for cell in row)  # never the secret
    assert any(hashlib.sha256(secret.encode()).hexdigest() in row for row in rows)

    store = open_key_store(database_url, home=str(tmp_path / "home"))
    try:
        found = store.authenticate(token)
        assert found is not None
        assert (found.id, found.role.value) == (key_id, "write")
        assert store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert ctl("api-keys", "revoke", key_id)[0] == 0
        assert store.authenticate(token) is None  # revoked: refused from the next request on
    finally:
        store.database.dispose()
    status, out, _ = ctl("api-keys", "list", "--json")
    assert json.loads(out)["api_keys"][0]["revoked_at"] is not None


def test_refusals_name_the_fix(ctl: Any) -> None:
    status, _out, err = ctl("api-keys", "create", "--tenant", "ghost", "--role", "read")
    assert status == 1
    assert "Tenant 'ghost' does not exist. Create it with `cloacina-ctl tenants create ghost`" in err
    status, _out, err = ctl("api-keys", "create", "--role", "root")
    assert status == 1
    assert "'root' is not one of 'admin', 'write', 'read'" in err
    status, _out, err = ctl("api-keys", "revoke", "0123456789ab")
    assert status == 3
    assert err.strip() == "error: No API key '0123456789ab'. List them with `cloacina-ctl api-keys list`."
    assert ctl("api-keys", "list")[1].startswith("No API keys.")


def test_server_without_the_extra_says_how_to_install_it(ctl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # what Python does for a module that is not installed
    status, out, err = ctl("server", "--port", "0")
    assert status == 1
    assert out == ""
    assert err.strip() == (
        "error: `cloacina-ctl server` needs the server extra, which is not installed (missing: fastapi). "
        "Install it with: pip install 'cloacina-host[server]'"
    )
