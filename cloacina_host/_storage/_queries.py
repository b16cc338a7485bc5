"""Every query the host runs, in one place: the engine's writes (by phase) and the reads.

Writes go through the group-commit writer (``_writer``), which runs a batch of them in one
transaction, grouped by ``Write`` and in ``Write`` order. That order is the order of a task's life,
so two writes to one row in a batch land right; the engine never puts a row's later write (a retry's
start) in a batch before its earlier one (the failure) has been committed.
"""

from __future__ import annotations

import enum
import json
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Dialect, Executable, Row, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from cloacina_workflow import TaskStatus
from cloacina_workflow.limits import json_depth_exceeded

from ._records import AttemptRecord, EventRecord, ExecutionRecord, PackageRecord, TaskRecord
from ._schema import (
    active_packages,
    execution_events,
    executions,
    package_workflows,
    packages,
    task_attempts,
    task_executions,
    tenants,
)

TERMINAL_TASK = tuple(
    s.value for s in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED)
)
INTERRUPTED_ERROR = "interrupted: the host process stopped while this attempt ran; it runs again"


class Write(enum.IntEnum):
    """The engine's writes, in the order a batch applies them."""

    INSERT_EXECUTION = 1
    INSERT_TASK = 2
    INSERT_ATTEMPT = 3
    TASK_STARTED = 4
    FINISH_ATTEMPT = 5
    TASK_STATE = 6
    TASK_RAN = 7
    FINISH_EXECUTION = 8
    RENEW_LEASES = 9
    ATTEMPT_OUTPUT = 10  # a running attempt's output so far: after the others, a no-op on an attempt they ended


_te = task_executions
_ta = task_attempts
_ex = executions

WRITES: dict[Write, Executable] = {
    Write.INSERT_EXECUTION: insert(_ex),
    Write.INSERT_TASK: insert(_te),
    Write.INSERT_ATTEMPT: insert(_ta),
    Write.TASK_STARTED: update(_te)
    .where(_te.c.execution_id == bindparam("b_execution_id"), _te.c.task_id == bindparam("b_task_id"))
    .values(
        status="running",
        attempt=bindparam("attempt"),
        ready_at=None,
        started_at=func.coalesce(_te.c.started_at, bindparam("started_at")),
    ),
    Write.FINISH_ATTEMPT: update(_ta)
    .where(
        _ta.c.execution_id == bindparam("b_execution_id"),
        _ta.c.task_id == bindparam("b_task_id"),
        _ta.c.attempt == bindparam("b_attempt"),
    )
    .values(
        status=bindparam("status"),
        finished_at=bindparam("finished_at"),
        error=bindparam("error"),
        traceback=bindparam("traceback"),
        output=bindparam("output"),
        output_cut=bindparam("output_cut"),
    ),
    Write.TASK_STATE: update(_te)
    .where(_te.c.execution_id == bindparam("b_execution_id"), _te.c.task_id == bindparam("b_task_id"))
    .values(
        status=bindparam("status"),
        ready_at=bindparam("ready_at"),
        finished_at=bindparam("finished_at"),
        duration_s=bindparam("duration_s"),
        error=bindparam("error"),
        context_out=bindparam("context_out"),
    ),
    # an attempt's start and end in one write, when the start had not been stored on its own yet
    Write.TASK_RAN: update(_te)
    .where(_te.c.execution_id == bindparam("b_execution_id"), _te.c.task_id == bindparam("b_task_id"))
    .values(
        status=bindparam("status"),
        attempt=bindparam("attempt"),
        ready_at=bindparam("ready_at"),
        started_at=func.coalesce(_te.c.started_at, bindparam("started_at")),
        finished_at=bindparam("finished_at"),
        duration_s=bindparam("duration_s"),
        error=bindparam("error"),
        context_out=bindparam("context_out"),
    ),
    Write.FINISH_EXECUTION: update(_ex)
    .where(_ex.c.id == bindparam("b_id"))
    .values(
        status=bindparam("status"),
        finished_at=bindparam("finished_at"),
        context_out=bindparam("context_out"),
        error=bindparam("error"),
        lease_owner=None,
        lease_expires_at=None,
    ),
    Write.RENEW_LEASES: update(_ex)
    .where(_ex.c.lease_owner == bindparam("b_owner"), _ex.c.status == "running")
    .values(lease_expires_at=bindparam("lease_expires_at")),
    Write.ATTEMPT_OUTPUT: update(_ta)
    .where(
        _ta.c.execution_id == bindparam("b_execution_id"),
        _ta.c.task_id == bindparam("b_task_id"),
        _ta.c.attempt == bindparam("b_attempt"),
        _ta.c.status == "running",
    )
    .values(output=bindparam("output"), output_cut=bindparam("output_cut")),
}


class _Placeholder(str):
    """Stands for a row's value while the parameter layout of a statement is worked out."""


@dataclass(frozen=True)
class PreparedWrite:
    """A statement of ``WRITES`` compiled once for a connection's dialect and schema, run as driver SQL.

    ``conn.execute(statement, rows)`` maps every row through the compiled statement again (bind
    names, constants, type processors), which costs more than the database's own work on the engine's
    small rows. Here the mapping is worked out once, and a row becomes the driver's parameters with
    one ``itemgetter`` call (plus the type processors the dialect names, for the few columns that have one).
    """

    sql: str
    positional: bool
    names: tuple[str, ...]  # the driver's parameter names, in the order of the SQL
    _get: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    _constants: Mapping[str, Any]  # constants of the statement, under keys no row uses
    _processors: tuple[tuple[int, Callable[[Any], Any]], ...]

    def parameters(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[Any]:
        """The driver's parameters for ``rows`` (each a builder's bind-parameter dict from ``_ops``), made
        one row at a time as the driver's ``executemany`` takes them: no list of a whole batch's copies."""
        get, constants, processors, names = self._get, self._constants, self._processors, self.names
        positional = self.positional
        for row in rows:
            value = get({**row, **constants}) if constants else get(row)
            if processors:
                items = list(value)
                for index, process in processors:
                    if items[index] is not None:
                        items[index] = process(items[index])
                value = tuple(items)
            yield value if positional else dict(zip(names, value, strict=True))


def prepare_write(
    statement: Executable, dialect: Dialect, schema_translate_map: Mapping[str | None, str] | None
) -> PreparedWrite:
    """Compile ``statement`` for ``dialect`` (tables renamed by ``schema_translate_map``) into a ``PreparedWrite``."""
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(
        dialect=dialect,
        schema_translate_map=dict(schema_translate_map) if schema_translate_map else None,
        render_schema_translate=bool(schema_translate_map),
    )
    assert isinstance(compiled, SQLCompiler)
    # which row key feeds each of the driver's parameters, and which are constants of the statement
    probe = {bp.key: _Placeholder(bp.key) for bp in compiled.binds.values() if bp.required}
    layout = dict(compiled.construct_params(probe))
    positional = bool(compiled.positional)
    names = tuple(compiled.positiontup or ()) if positional else tuple(layout)
    keys: list[str] = []
    constants: dict[str, Any] = {}
    for name in names:
        value = layout[name]
        if isinstance(value, _Placeholder):
            keys.append(str(value))
        else:
            constants["\x00" + name] = value
            keys.append("\x00" + name)
    item = operator.itemgetter(*keys)
    get: Callable[[Mapping[str, Any]], tuple[Any, ...]] = item if len(keys) > 1 else (lambda row: (item(row),))
    found = getattr(compiled, "_bind_processors", None) or {}
    processors = tuple((i, found[name]) for i, name in enumerate(names) if found.get(name) is not None)
    return PreparedWrite(compiled.string, positional, names, get, constants, processors)


#: one encoder for every stored context (``json.dumps`` with options would build one per call)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(data: Any) -> str:
    return _ENCODER.encode(data)


def _loads(text: str | None) -> Any:
    """A stored context. The engine stores none nested deeper than ``MAX_JSON_DEPTH``; a row written
    otherwise, too deep for the parser, is ``LimitExceeded`` naming the limit, not a ``RecursionError``."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except RecursionError:
        raise json_depth_exceeded("a stored context") from None


# -- reads ----------------------------------------------------------------------------------------


def _execution(row: Row[Any], tasks: tuple[TaskRecord, ...] = ()) -> ExecutionRecord:
    m = row._mapping
    return ExecutionRecord(
        id=m["id"],
        tenant=m["tenant"],
        namespace=m["namespace"],
        package=m["package"],
        workflow=m["workflow"],
        package_version=m["package_version"],
        status=m["status"],
        context_in=_loads(m["context_in"]),
        context_out=_loads(m["context_out"]),
        error=m["error"],
        created_at=m["created_at"],
        finished_at=m["finished_at"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
        tasks=tasks,
        workflow_fingerprint=m["workflow_fingerprint"],
        started_at=m["started_at"],
        cancel_requested_at=m["cancel_requested_at"],
        rerun_of=m["rerun_of"],
        started_by=m.get("started_by"),
    )


def list_executions(
    conn: Connection,
    *,
    tenant: str,
    workflow: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[ExecutionRecord]:
    """The tenant's executions, newest first. ``workflow`` matches a name, ``package::name`` or a namespace."""
    query = select(_ex).where(_ex.c.tenant == tenant)
    if workflow:
        query = query.where(
            or_(_ex.c.workflow == workflow, _ex.c.namespace == workflow, _ex.c.namespace == f"{tenant}::{workflow}")
        )
    if status == "queued":  # stored detached, no host has started it yet
        query = query.where(_ex.c.status == "running", _ex.c.started_at.is_(None))
    elif status == "running":
        query = query.where(_ex.c.status == "running", _ex.c.started_at.is_not(None))
    elif status:
        query = query.where(_ex.c.status == status)
    query = query.order_by(_ex.c.created_at.desc(), _ex.c.id).limit(limit)
    return [_execution(row) for row in conn.execute(query)]


def find_execution_ids(conn: Connection, *, tenant: str, prefix: str, limit: int = 5) -> list[str]:
    """Ids of the tenant's executions starting with ``prefix`` (an id given in full matches itself).

    A full id is looked up by the primary key first: ``LIKE 'prefix%'`` uses no index on either backend
    (SQLite's LIKE ignores case, PostgreSQL's default collation is not ``C``), so it reads every
    execution of the tenant; the API and the UI always send full ids.
    """
    exact = conn.execute(select(_ex.c.id).where(_ex.c.id == prefix, _ex.c.tenant == tenant)).first()
    if exact is not None:
        return [prefix]
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(_ex.c.id)
        .where(_ex.c.tenant == tenant, _ex.c.id.like(f"{escaped}%", escape="\\"))
        .order_by(_ex.c.id)
        .limit(limit)
    )
    return [str(r[0]) for r in conn.execute(query)]


def get_execution(conn: Connection, execution_id: str) -> ExecutionRecord | None:
    """One execution with its tasks (in workflow order) and each task's attempts."""
    row = conn.execute(select(_ex).where(_ex.c.id == execution_id)).first()
    if row is None:
        return None
    attempts: dict[str, list[AttemptRecord]] = {}
    for a in conn.execute(select(_ta).where(_ta.c.execution_id == execution_id).order_by(_ta.c.attempt)):
        m = a._mapping
        attempts.setdefault(m["task_id"], []).append(
            AttemptRecord(
                attempt=m["attempt"],
                status=m["status"],
                started_at=m["started_at"],
                finished_at=m["finished_at"],
                error=m["error"],
                traceback=m["traceback"],
                worker=m["worker"],
                stored_output=m["output"],
                output_cut=m["output_cut"] or 0,
            )
        )
    tasks = []
    for t in conn.execute(select(_te).where(_te.c.execution_id == execution_id).order_by(_te.c.position)):
        m = t._mapping
        tasks.append(
            TaskRecord(
                task_id=m["task_id"],
                position=m["position"],
                status=m["status"],
                attempt=m["attempt"],
                ready_at=m["ready_at"],
                started_at=m["started_at"],
                finished_at=m["finished_at"],
                duration_s=m["duration_s"],
                error=m["error"],
                context_out=_loads(m["context_out"]),
                attempts=tuple(attempts.get(m["task_id"], ())),
            )
        )
    events = tuple(
        EventRecord(seq=e.seq, at=e.at, kind=e.kind, actor=e.actor, detail=json.loads(e.detail))
        for e in conn.execute(
            select(execution_events)
            .where(execution_events.c.execution_id == execution_id)
            .order_by(execution_events.c.seq)
        )
    )
    return replace(_execution(row, tuple(tasks)), events=events)


def unfinished_executions(conn: Connection, *, tenant: str) -> list[tuple[str, str, str | None, float | None]]:
    """``(id, namespace, lease_owner, lease_expires_at)`` of the tenant's running executions, oldest first."""
    query = (
        select(_ex.c.id, _ex.c.namespace, _ex.c.lease_owner, _ex.c.lease_expires_at)
        .where(_ex.c.tenant == tenant, _ex.c.status == "running")
        .order_by(_ex.c.created_at)
    )
    return [(str(r[0]), str(r[1]), r[2], r[3]) for r in conn.execute(query)]


# -- recovery -------------------------------------------------------------------------------------


def claim_execution(
    conn: Connection,
    *,
    execution_id: str,
    previous_owner: str | None,
    owner: str,
    lease_expires_at: float,
    now: float,
) -> bool:
    """Take over a running execution whose owner is ``previous_owner`` (compare-and-swap).

    Attempts left ``running`` by the previous owner become ``interrupted``, and their tasks ``pending``,
    so that they run again. Returns False when another host got there first.
    """
    owner_matches = _ex.c.lease_owner.is_(None) if previous_owner is None else _ex.c.lease_owner == previous_owner
    claimed = conn.execute(
        update(_ex)
        .where(_ex.c.id == execution_id, _ex.c.status == "running", owner_matches)
        .values(lease_owner=owner, lease_expires_at=lease_expires_at, started_at=func.coalesce(_ex.c.started_at, now))
    ).rowcount
    if claimed != 1:
        return False
    conn.execute(
        update(_ta)
        .where(_ta.c.execution_id == execution_id, _ta.c.status == "running")
        .values(status="interrupted", finished_at=now, error=INTERRUPTED_ERROR)
    )
    conn.execute(
        update(_te)
        .where(_te.c.execution_id == execution_id, _te.c.status == "running")
        .values(status="pending", lease_owner=None, lease_expires_at=None)
    )
    return True


def release_leases(conn: Connection, *, owner: str) -> int:
    """Give up the leases ``owner`` holds, so another host can resume those executions at once."""
    return int(
        conn.execute(
            update(_ex)
            .where(_ex.c.lease_owner == owner, _ex.c.status == "running")
            .values(lease_owner=None, lease_expires_at=None)
        ).rowcount
    )


def release_execution(conn: Connection, *, execution_id: str, owner: str) -> bool:
    """Give up ``owner``'s lease on one running execution (it cannot be resumed here)."""
    return bool(
        conn.execute(
            update(_ex)
            .where(_ex.c.id == execution_id, _ex.c.lease_owner == owner, _ex.c.status == "running")
            .values(lease_owner=None, lease_expires_at=None)
        ).rowcount
    )


def count_tasks_by_status(conn: Connection, execution_ids: Sequence[str]) -> dict[str, int]:
    """How many task rows of these executions are in each status (benchmarks and tests)."""
    query = (
        select(_te.c.status, func.count())
        .where(and_(_te.c.execution_id.in_(list(execution_ids))))
        .group_by(_te.c.status)
    )
    return {str(r[0]): int(r[1]) for r in conn.execute(query)}


# -- the registry ---------------------------------------------------------------------------------

_pk = packages
_pw = package_workflows
_ap = active_packages


def _package(row: Row[Any]) -> PackageRecord:
    m = row._mapping
    return PackageRecord(
        name=m["name"],
        version=m["version"],
        display_name=m["display_name"],
        archive_sha256=m["archive_sha256"],
        archive_size=m["archive_size"],
        registered_at=m["registered_at"],
        manifest=m["manifest"],
        active=m["active_version"] == m["version"],
    )


def _package_query() -> Any:
    columns = [c for c in _pk.c if c.name != "archive"]
    return select(*columns, _ap.c.version.label("active_version")).select_from(
        _pk.outerjoin(_ap, _ap.c.name == _pk.c.name)
    )


def list_packages(conn: Connection, *, name: str | None = None) -> list[PackageRecord]:
    """Every registered version (without archive bytes), by name then registration time."""
    query = _package_query()
    if name is not None:
        query = query.where(_pk.c.name == name)
    return [_package(r) for r in conn.execute(query.order_by(_pk.c.name, _pk.c.registered_at, _pk.c.version))]


def get_package(conn: Connection, *, name: str, version: str) -> PackageRecord | None:
    row = conn.execute(_package_query().where(_pk.c.name == name, _pk.c.version == version)).first()
    return None if row is None else _package(row)


def package_archive(conn: Connection, *, name: str, version: str) -> bytes | None:
    """The stored ``.cloacina`` bytes of one version."""
    value = conn.execute(select(_pk.c.archive).where(_pk.c.name == name, _pk.c.version == version)).scalar()
    return None if value is None else bytes(value)


def active_packages_state(conn: Connection) -> list[tuple[str, str, str]]:
    """``(name, active version, archive sha256)`` of every package that has an active version."""
    query = (
        select(_ap.c.name, _ap.c.version, _pk.c.archive_sha256)
        .select_from(_ap.join(_pk, and_(_pk.c.name == _ap.c.name, _pk.c.version == _ap.c.version)))
        .order_by(_ap.c.name)
    )
    return [(str(r[0]), str(r[1]), str(r[2])) for r in conn.execute(query)]


def store_package(
    conn: Connection,
    *,
    record: PackageRecord,
    archive: bytes,
    workflows: Sequence[tuple[str, str, str]],
    replace: bool,
) -> None:
    """Insert a version (``replace``: overwrite its bytes); ``workflows``: ``(package, workflow, fingerprint)``."""
    values = {
        "name": record.name,
        "version": record.version,
        "display_name": record.display_name,
        "archive_sha256": record.archive_sha256,
        "archive_size": record.archive_size,
        "manifest": record.manifest,
        "archive": archive,
        "registered_at": record.registered_at,
    }
    where = (_pk.c.name == record.name, _pk.c.version == record.version)
    if replace:
        conn.execute(update(_pk).where(*where).values(**values))
        conn.execute(delete(_pw).where(_pw.c.name == record.name, _pw.c.version == record.version))
    else:
        conn.execute(insert(_pk).values(**values))
    if workflows:
        conn.execute(
            insert(_pw),
            [
                {"name": record.name, "version": record.version, "workflow_package": p, "workflow": w, "fingerprint": f}
                for p, w, f in workflows
            ],
        )


def active_version(conn: Connection, *, name: str) -> str | None:
    value = conn.execute(select(_ap.c.version).where(_ap.c.name == name)).scalar()
    return None if value is None else str(value)


def set_active_version(conn: Connection, *, name: str, version: str, now: float) -> str | None:
    """Make ``version`` the active one of ``name``; return the version that was active before."""
    previous = conn.execute(select(_ap.c.version).where(_ap.c.name == name)).scalar()
    if previous is None:
        conn.execute(insert(_ap).values(name=name, version=version, activated_at=now))
    else:
        conn.execute(update(_ap).where(_ap.c.name == name).values(version=version, activated_at=now))
    return None if previous is None else str(previous)


def clear_active_version(conn: Connection, *, name: str) -> str | None:
    """Leave ``name`` with no active version; return the version that was active."""
    previous = conn.execute(select(_ap.c.version).where(_ap.c.name == name)).scalar()
    if previous is not None:
        conn.execute(delete(_ap).where(_ap.c.name == name))
    return None if previous is None else str(previous)


def delete_package(conn: Connection, *, name: str, version: str) -> bool:
    return bool(conn.execute(delete(_pk).where(_pk.c.name == name, _pk.c.version == version)).rowcount)


def package_workflow_rows(conn: Connection, *, name: str, version: str) -> list[tuple[str, str, str]]:
    """``(package, workflow, fingerprint)`` of the workflows one version offers."""
    query = select(_pw.c.workflow_package, _pw.c.workflow, _pw.c.fingerprint).where(
        _pw.c.name == name, _pw.c.version == version
    )
    return [
        (str(r[0]), str(r[1]), str(r[2])) for r in conn.execute(query.order_by(_pw.c.workflow_package, _pw.c.workflow))
    ]


def find_registered_workflow(
    conn: Connection, *, workflow_package: str, workflow: str, version: str | None
) -> list[tuple[str, str]]:
    """``(name, version)`` of the packages offering ``workflow_package::workflow`` at ``version`` (None: active)."""
    query = select(_pw.c.name, _pw.c.version).where(
        _pw.c.workflow_package == workflow_package, _pw.c.workflow == workflow
    )
    if version is None:
        query = query.join(_ap, and_(_ap.c.name == _pw.c.name, _ap.c.version == _pw.c.version))
    else:
        query = query.where(_pw.c.version == version)
    return [(str(r[0]), str(r[1])) for r in conn.execute(query.order_by(_pw.c.name))]


def count_running_executions(conn: Connection, *, tenant: str, packages: Sequence[str], version: str) -> int:
    """Unfinished executions of workflows of ``packages`` that run ``version``."""
    if not packages:
        return 0
    query = select(func.count()).where(
        _ex.c.tenant == tenant,
        _ex.c.status == "running",
        _ex.c.package.in_(list(packages)),
        _ex.c.package_version == version,
    )
    return int(conn.execute(query).scalar_one())


# -- tenants (in the public tenant's database) ----------------------------------------------------


def list_tenants(conn: Connection) -> list[tuple[str, float]]:
    return [(str(r[0]), float(r[1])) for r in conn.execute(select(tenants).order_by(tenants.c.name))]


def tenant_exists(conn: Connection, *, name: str) -> bool:
    return conn.execute(select(tenants.c.name).where(tenants.c.name == name)).first() is not None


def insert_tenant(conn: Connection, *, name: str, now: float) -> None:
    conn.execute(insert(tenants).values(name=name, created_at=now))
