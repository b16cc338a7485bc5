"""The group-commit writer stores what it is given, however a batch is made up.

On PostgreSQL a kind with several rows in one batch goes as one statement over arrays (``_storage/_bulk``),
unless two of its rows change the same row: then they go one by one, in order, the later one winning,
as on SQLite. These tests put whole batches in one ``submit`` (one commit) and read back every row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from cloacina_host._storage import Database, GroupCommitWriter, Op, open_database
from cloacina_host._storage import _ops as ops_
from cloacina_host._storage import _queries as q

TASKS = ["a", "b", "c"]


@pytest.fixture
def stored(database_url: str) -> Iterator[tuple[Database, GroupCommitWriter]]:
    """The test's database and a started writer of it (closed, then the database disposed, afterwards)."""
    db = open_database(database_url)
    writer = GroupCommitWriter(db)
    writer.start()
    try:
        yield db, writer
    finally:
        writer.close()
        db.dispose()


def _execution(eid: str, created_at: float) -> Op:
    return ops_.insert_execution(
        ops_.execution_row(
            eid,
            tenant="public",
            namespace="public::bulk::flow",
            package="bulk",
            workflow="flow",
            package_version=None,
            workflow_fingerprint=None,
            context_in=json.dumps({"n": created_at}),
            created_at=created_at,
        )
    )


async def test_many_rows_of_each_kind_in_one_commit_are_each_stored(
    stored: tuple[Database, GroupCommitWriter],
) -> None:
    db, writer = stored
    eids = [str(uuid.uuid4()) for _ in range(40)]
    inserts: list[Op] = []
    for i, eid in enumerate(eids):
        inserts += [_execution(eid, 1000.0 + i), *ops_.insert_tasks(eid, TASKS)]
    await writer.submit(inserts)
    ends: list[Op] = []
    for i, eid in enumerate(eids):
        for j, tid in enumerate(TASKS):
            started = ops_.insert_attempt(eid, tid, 1, started_at=2000.0 + i, worker="w")
            began = ops_.task_started(eid, tid, 1, started_at=2000.0 + i)
            ended = [
                ops_.finish_attempt(eid, tid, 1, status="completed", finished_at=3000.0 + j, output=f"{tid} said {i}"),
                ops_.task_state(
                    eid,
                    tid,
                    status="completed",
                    finished_at=3000.0 + j,
                    duration_s=float(j),
                    context_out=json.dumps({tid: i}),
                ),
            ]
            ends += ops_.ran([started, began], ended)  # start and end folded, as the engine stores them
        ends.append(
            ops_.finish_execution(eid, status="completed", finished_at=4000.0 + i, context_out="{}", error=None)
        )
    await writer.submit(ends)
    with db.read("checking") as conn:
        for i, eid in enumerate(eids):
            record = q.get_execution(conn, eid)
            assert record is not None
            assert (record.status, record.finished_at, record.context_in) == (
                "completed",
                4000.0 + i,
                {"n": 1000.0 + i},
            )
            assert [t.task_id for t in record.tasks] == TASKS
            for j, t in enumerate(record.tasks):
                assert (t.status, t.attempt, t.started_at, t.finished_at) == (
                    "completed",
                    1,
                    2000.0 + i,
                    3000.0 + j,
                )
                assert (t.duration_s, t.context_out) == (float(j), {t.task_id: i})
                assert [(a.attempt, a.status, a.worker) for a in t.attempts] == [(1, "completed", "w")]
                assert [line.text for line in t.attempts[0].output] == [f"{t.task_id} said {i}"]


async def test_two_changes_of_one_row_in_one_commit_keep_the_later(stored: tuple[Database, GroupCommitWriter]) -> None:
    db, writer = stored
    eids = [str(uuid.uuid4()) for _ in range(3)]
    await writer.submit([op for eid in eids for op in (_execution(eid, 1.0), *ops_.insert_tasks(eid, TASKS))])
    batch = [
        ops_.task_state(eids[0], "a", status="retry_wait", ready_at=50.0, error="first"),
        ops_.task_state(eids[1], "a", status="failed", finished_at=60.0, error="only"),
        ops_.task_state(eids[0], "a", status="completed", finished_at=70.0, context_out="{}"),
        ops_.task_state(eids[2], "b", status="skipped", finished_at=80.0, error="why"),
    ]
    await writer.submit(batch)
    with db.read("checking") as conn:
        got = {
            (eid, t.task_id): (t.status, t.ready_at, t.finished_at, t.error)
            for eid in eids
            for t in q.get_execution(conn, eid).tasks  # type: ignore[union-attr]
        }
    assert got[(eids[0], "a")] == ("completed", None, 70.0, None)
    assert got[(eids[1], "a")] == ("failed", None, 60.0, "only")
    assert got[(eids[2], "b")] == ("skipped", None, 80.0, "why")
    assert got[(eids[2], "a")] == ("pending", None, None, None)


async def test_a_batch_mixing_whole_and_fractional_numbers_in_a_column_is_stored(
    stored: tuple[Database, GroupCommitWriter],
) -> None:
    db, writer = stored
    eid = str(uuid.uuid4())
    await writer.submit([_execution(eid, 1.0), *ops_.insert_tasks(eid, TASKS)])
    # a deferral's time may come from a task as a whole number: 5 beside 6.5 in one commit's ready_at
    await writer.submit(
        [
            ops_.task_state(eid, "a", status="deferred", ready_at=5, error="later"),
            ops_.task_state(eid, "b", status="deferred", ready_at=6.5, error="later"),
            ops_.task_state(eid, "c", status="failed", finished_at=7, duration_s=True, error="x"),
        ]
    )
    with db.read("checking") as conn:
        record = q.get_execution(conn, eid)
    assert record is not None
    assert [(t.status, t.ready_at, t.finished_at) for t in record.tasks] == [
        ("deferred", 5.0, None),
        ("deferred", 6.5, None),
        ("failed", None, 7.0),
    ]


@pytest.mark.postgres
def test_every_write_with_rows_of_its_table_has_a_many_rows_form(postgres_schema_url: str) -> None:
    """The writes the engine makes per task and per execution go as one statement each on PostgreSQL."""
    from cloacina_host._storage._bulk import bulk_write

    db = open_database(postgres_schema_url)
    try:
        with db.write_engine.connect() as conn:
            dialect = conn.dialect
        formed = {kind for kind in q.Write if bulk_write(q.WRITES[kind], dialect, None) is not None}
    finally:
        db.dispose()
    assert formed == set(q.Write) - {q.Write.RENEW_LEASES}  # picks rows by owner: no column of that name
    # UPDATE ... FROM changes a row once, whichever of its batch's rows it joins first: a batch that
    # changes one row twice must go row by row (the test above reads what that stores)
    state = bulk_write(q.WRITES[q.Write.TASK_STATE], dialect, None)
    assert state is not None
    rows = [ops_.task_state("e1", "a", status="failed")[1], ops_.task_state("e1", "b", status="failed")[1]]
    assert state.unique_keys(rows)
    assert not state.unique_keys([*rows, ops_.task_state("e1", "a", status="completed")[1]])
    inserted = bulk_write(q.WRITES[q.Write.INSERT_TASK], dialect, None)
    assert inserted is not None
    assert inserted.unique_keys([*ops_.task_rows("e1", ["a"]), *ops_.task_rows("e1", ["a"])])  # a key error either way
