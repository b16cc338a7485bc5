"""Many clients at once on a real server: every submit, status, log and list request answered 2xx, and every
execution submitted completes (SQLite's one writer and PostgreSQL's pools under 50 concurrent clients).

The speed of it is measured by ``benchmarks/bench_api.py``; this test asserts only the answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

CLIENTS = 50


async def _client(url: str, key: str, n: int, submitted: list[str], failures: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120.0) as client:

        async def call(method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
            response = await client.request(method, path, **kwargs)
            if not 200 <= response.status_code < 300:
                failures.append(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
                return None
            body: dict[str, Any] = response.json()
            return body

        for round_ in range(2):
            body = await call("POST", "/api/v1/executions", json={"workflow": "cli_demo", "context": {"name": f"{n}"}})
            if body is None:
                continue
            execution_id = body["execution_id"]
            submitted.append(execution_id)
            await call("GET", f"/api/v1/executions/{execution_id}")
            await call("GET", f"/api/v1/executions/{submitted[(n * 7 + round_) % len(submitted)]}/logs")
            await call("GET", "/api/v1/executions", params={"limit": 20})


async def _load(url: str, key: str) -> tuple[list[str], list[str]]:
    submitted: list[str] = []
    failures: list[str] = []
    await asyncio.gather(*(_client(url, key, n, submitted, failures) for n in range(CLIENTS)))
    return submitted, failures


def test_fifty_clients_at_once_get_only_2xx_and_every_execution_completes(deployment: Any) -> None:
    key = deployment.key("write", name="load")
    server = deployment.start()
    submitted, failures = asyncio.run(_load(server.url, key))
    assert failures == []
    assert len(submitted) == 2 * CLIENTS
    api = server.client(key)

    def finished() -> list[dict[str, Any]] | None:
        listed = api.get("/api/v1/executions", params={"limit": 1000}).json()["executions"]
        ours = [e for e in listed if e["id"] in set(submitted)]
        done = len(ours) == len(submitted) and all(e["status"] not in {"queued", "running"} for e in ours)
        return ours if done else None

    ours = deployment.until("every submitted execution to finish", finished)
    assert {e["status"] for e in ours} == {"completed"}
    assert server.stop() == 0
