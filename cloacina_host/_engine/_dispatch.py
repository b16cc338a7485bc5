"""Distributed executions, the submitting side: store one with its roots ready, and find a claimed task's workflow.

``store_execution`` is what ``DefaultRunner.submit(..., distributed=True)`` and ``run --distributed``
commit; ``catalog_resolver`` is how a ``DistributedWorker`` (``_distributed``) loads the workflow, at
the version the execution was submitted with, of each task it claims.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence

from cloacina_workflow import ExecutionStatus, JSONValue, TaskStatus, Workflow
from cloacina_workflow import _machine as m

from .._discovery import CatalogEntry, WorkflowCatalog
from .._errors import HostError, UsageError, WorkflowNotFoundError
from .._storage import Database
from .._storage import _claims as c
from .._storage import _ends as se
from ._resolver import version_resolvers
from ._rows import execution_row, task_rows

#: how a worker finds the workflow of a claimed task; raising fails the task with that error
WorkflowResolver = Callable[[c.Claim], Awaitable[Workflow]]


class WorkflowLoadError(HostError):
    """The workflow of a claimed task could not be loaded in this worker; the task fails with this error."""

    def __init__(self, message: str, *, namespace: str) -> None:
        super().__init__(message)
        self.namespace = namespace


def catalog_resolver(catalog: WorkflowCatalog) -> WorkflowResolver:
    """Resolve a claimed task's workflow through ``catalog``: embedded, installed and registered workflows.

    A registered package runs the version the execution was submitted with (``Registry.resolve``
    installs it on this machine from the database on first use), even when another version is
    active now or none is. Found workflows are cached by namespace and version; failures are not.
    """
    cache: dict[tuple[str, str | None], Workflow] = {}

    def lookup(claim: c.Claim) -> Workflow:
        registries = version_resolvers(catalog)
        _tenant, package, name = claim.namespace.split("::", 2)
        try:
            entry: CatalogEntry | None = catalog.resolve(claim.namespace)
        except WorkflowNotFoundError:
            if not registries or claim.package_version is None:
                raise
            entry = None  # perhaps a registered version that is no longer active
        pinned = entry is None or (
            entry.source.kind == "registered" and claim.package_version not in (None, entry.source.version)
        )
        if entry is not None and not pinned:
            return entry.workflow
        return registries[0].resolve(package, name, claim.package_version).workflow

    looking: dict[tuple[str, str | None], asyncio.Future[Workflow]] = {}

    async def resolve(claim: c.Claim) -> Workflow:
        key = (claim.namespace, claim.package_version)
        workflow = cache.get(key)
        if workflow is None:
            found = looking.get(key)  # the first batch of claims asks for the same workflow at once: look once
            if found is None:
                found = looking[key] = asyncio.ensure_future(asyncio.to_thread(lookup, claim))
                found.add_done_callback(lambda _f: looking.pop(key, None))
            workflow = cache[key] = await asyncio.shield(found)
        return workflow

    def dependencies(namespace: str, package_version: str | None, task_id: str) -> Sequence[str] | None:
        workflow = cache.get((namespace, package_version))
        task = None if workflow is None else workflow.tasks.get(task_id)
        return None if task is None else task.dependencies

    known: list[tuple[int, list[c.Edge]]] = [(0, [])]

    def edges() -> list[c.Edge]:
        """Every dependency of every task of the workflows found so far (recomputed when one is added)."""
        if known[0][0] != len(cache):
            found = [
                (namespace, version or "", tid, dep)
                for (namespace, version), workflow in cache.items()
                for tid, task in workflow.tasks.items()
                for dep in task.dependencies
            ]
            known[0] = (len(cache), found)
        return known[0][1]

    resolve.dependencies = dependencies  # type: ignore[attr-defined]  # read with the claim, see _claim
    resolve.edges = edges  # type: ignore[attr-defined]
    return resolve


# -- submitting -----------------------------------------------------------------------------------


def store_execution(
    db: Database,
    *,
    tenant: str,
    namespace: str,
    package: str,
    package_version: str | None,
    workflow: Workflow,
    initial: Mapping[str, JSONValue],
    workflow_fingerprint: str | None = None,
    rerun_of: str | None = None,
) -> str:
    """Store a new distributed execution of ``workflow`` with its roots ready; return its id (committed)."""
    if db.backend != "postgresql":
        raise UsageError(
            f"Distributed executions need PostgreSQL, but {db.display_url} is SQLite. "
            "Use postgresql://USER:PASSWORD@HOST:PORT/DB, or submit without distributed=True."
        )
    execution_id = str(uuid.uuid4())
    execution = execution_row(
        execution_id,
        tenant=tenant,
        namespace=namespace,
        package=package,
        workflow=workflow,
        package_version=package_version,
        workflow_fingerprint=workflow_fingerprint,
        initial=initial,
        created_at=time.time(),
        queued=True,  # until a worker claims its first task
        rerun_of=rerun_of,
    )
    # the first tasks: the machine decides, as after any end (a root whose condition fails is skipped)
    settled = m.settle(workflow, workflow.order, status=lambda _t: TaskStatus.PENDING, context=lambda _t: initial)
    tasks = task_rows(execution_id, workflow, ready=set(settled.start))
    skipped = dict(settled.skip)
    now = time.time()
    for row in tasks:
        if row["task_id"] in skipped:
            row.update(status=TaskStatus.SKIPPED.value, error=skipped[row["task_id"]], finished_at=now, duration_s=0.0)
    with db.write("submitting a distributed execution") as conn:
        c.insert_execution(conn, execution=execution, tasks=tasks)
        if len(skipped) == len(tasks):  # nothing to run: it ends now
            se.finish_executions(conn, [se.ExecutionEnd(execution_id, ExecutionStatus.COMPLETED, dict(initial), None)])
    return execution_id
