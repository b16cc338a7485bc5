"""Finding an execution by its id or a prefix of it (``executions show``, every ``/api/v1/executions/{id}`` route).

A full id is looked up by the primary key (the API sends nothing else, under load); a prefix still
finds the one execution it starts, names the several it matches, and matches literally (``%`` and
``_`` are no wildcards); another tenant's execution is never found.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from cloacina_host._engine._history import find_execution
from cloacina_host._errors import NotFoundError, UsageError
from cloacina_host._storage import Database, open_database
from cloacina_host._storage._ops import execution_row
from cloacina_host._storage._schema import executions

IDS = [
    "aaaa1111-0000-4000-8000-000000000001",
    "aaaa1111-0000-4000-8000-000000000002",
    "bbbb2222-0000-4000-8000-000000000003",
]
OTHER_TENANT = "cccc3333-0000-4000-8000-000000000004"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    found = open_database(database_url)
    rows = [(eid, "public") for eid in IDS] + [(OTHER_TENANT, "acme")]
    with found.write("storing executions") as conn:
        for eid, tenant in rows:
            row = execution_row(
                eid,
                tenant=tenant,
                namespace=f"{tenant}::pkg::flow",
                package="pkg",
                workflow="flow",
                package_version=None,
                workflow_fingerprint=None,
                context_in="{}",
                created_at=time.time(),
            )
            conn.execute(executions.insert().values(**row))
    try:
        yield found
    finally:
        found.dispose()


def _find(db: Database, execution_id: str, tenant: str = "public") -> str:
    return find_execution(None, home=None, tenant=tenant, execution_id=execution_id, database=db).id


def test_a_full_id_finds_itself_and_a_unique_prefix_its_execution(db: Database) -> None:
    assert [_find(db, eid) for eid in IDS] == IDS
    assert _find(db, "bbbb") == IDS[2]
    assert _find(db, IDS[0][:-1] + "1") == IDS[0]


def test_an_ambiguous_prefix_names_the_executions_it_matches(db: Database) -> None:
    with pytest.raises(UsageError) as err:
        _find(db, "aaaa1111")
    assert str(err.value) == (
        f"Execution id prefix 'aaaa1111' matches several executions ({IDS[0]}, {IDS[1]}); give more characters."
    )


@pytest.mark.parametrize("given", ["%", "aaaa____-", OTHER_TENANT, OTHER_TENANT[:6], IDS[0] + "0"])
def test_no_wildcards_and_no_other_tenant(db: Database, given: str) -> None:
    with pytest.raises(NotFoundError, match=f"No execution '{given}' in tenant 'public'"):
        _find(db, given)


def test_the_other_tenant_finds_its_own(db: Database) -> None:
    assert _find(db, OTHER_TENANT, tenant="acme") == OTHER_TENANT
    with pytest.raises(NotFoundError):
        _find(db, IDS[0], tenant="acme")
