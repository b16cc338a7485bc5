"""``@workflow``: a class used as a namespace of tasks becomes a validated DAG."""

from __future__ import annotations

import hashlib
import heapq
import inspect
import json
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import CodeType, MappingProxyType
from typing import Any

from . import _inputs
from ._context import Context, JSONValue
from ._errors import InputError, WorkflowDefinitionError
from ._machine import final_context
from ._names import DEFAULT_TENANT, EMBEDDED_PACKAGE
from ._schedule import Schedule, resolve_names
from ._task import Task
from ._trigger import Trigger, resolve_triggers
from .hookspecs import hookimpl
from .limits import check_task_count

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-.]*")
_NOTHING: Mapping[str, JSONValue] = MappingProxyType({})


@dataclass(frozen=True)
class ContextConflict:
    """Two dependencies of ``task_id`` wrote different values under ``key``; ``winner`` prevailed."""

    task_id: str
    key: str
    loser: str
    winner: str


class Workflow:
    """A named DAG of tasks. Built by ``@workflow``; tasks are reachable as attributes."""

    def __init__(
        self,
        name: str,
        tasks: Iterable[Task],
        *,
        package: str | None = None,
        description: str | None = None,
        author: str | None = None,
        attributes: Mapping[str, Task] | None = None,
        schedules: Iterable[Schedule] = (),
        triggers: Iterable[Trigger | str] = (),
        input: type[Any] | None = None,  # noqa: A002  # the name the decorator takes
        input_schema: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.package = package
        self.description = description or ""
        self.author = author
        task_list = list(tasks)
        check_task_count(len(task_list), f"Workflow {name!r}")  # before any graph work
        self._check_name(name, "workflow name")
        if package is not None:
            self._check_name(package, "package")
        self.tasks: Mapping[str, Task] = MappingProxyType(self._index(task_list))
        self._attributes = dict(attributes or {t.function.__name__: t for t in task_list})
        self.order: tuple[str, ...] = self._validate()
        #: each task's index in ``order``
        self.position: Mapping[str, int] = MappingProxyType({tid: i for i, tid in enumerate(self.order)})
        dependents: dict[str, list[str]] = {tid: [] for tid in self.tasks}
        for t in task_list:
            for dep in t.dependencies:
                dependents[dep].append(t.id)
        self.dependents: Mapping[str, tuple[str, ...]] = MappingProxyType({k: tuple(v) for k, v in dependents.items()})
        #: cron schedules the host runs while this workflow's package is active (names resolved)
        self.schedules: tuple[Schedule, ...] = resolve_names(tuple(schedules), name)
        #: poll triggers whose firings start this workflow (while its package is active)
        self.triggers: tuple[Trigger, ...] = resolve_triggers(triggers, name)
        #: the pydantic model of the initial context (None: any JSON object); its JSON Schema below
        self.input_model: type[Any] | None = input
        self.input_schema: dict[str, Any] | None = (
            _inputs.input_schema(input, name) if input is not None else (dict(input_schema) if input_schema else None)
        )
        if input is not None:
            for s in self.schedules:  # a schedule's context is data of the package: checked now, once
                try:
                    _inputs.check_input(input, name, s.context)
                except InputError as exc:
                    raise WorkflowDefinitionError(
                        f"Workflow {name!r}: the context of schedule {s.name!r} does not fit its input: "
                        + str(exc).removeprefix(f"input of {name}: "),
                        workflow=name,
                    ) from None

    def check_input(self, context: Mapping[str, Any]) -> None:
        """Raise ``InputError`` (naming each field and rule) unless ``context`` fits the declared input model.

        A workflow without an input model takes any context; one known only by its schema (a registered
        package's, in the host) is checked where its model lives (``cloacina_host`` asks its worker).
        """
        if self.input_model is not None:
            _inputs.check_input(self.input_model, self.name, context)

    # -- definition checks -------------------------------------------------------------------

    def _check_name(self, value: str, what: str) -> None:
        if not isinstance(value, str) or not _NAME.fullmatch(value) or "::" in value:
            raise WorkflowDefinitionError(
                f"Workflow {self.name!r}: {what} {value!r} is not a valid name; use letters, digits, "
                "'_', '-' and '.', starting with a letter or '_'.",
                workflow=self.name,
            )

    def _index(self, tasks: list[Task]) -> dict[str, Task]:
        if not tasks:
            raise WorkflowDefinitionError(
                f"Workflow {self.name!r} has no tasks; decorate at least one function in it with @task.",
                workflow=self.name,
            )
        index: dict[str, Task] = {}
        for t in tasks:
            if t.id in index:
                raise WorkflowDefinitionError(
                    f"Workflow {self.name!r} has two tasks with id {t.id!r} (functions "
                    f"{index[t.id].function.__name__!r} and {t.function.__name__!r}); give each a unique id.",
                    workflow=self.name,
                    task=t.id,
                )
            index[t.id] = t
        return index

    def _validate(self) -> tuple[str, ...]:
        """Check every dependency, then order the tasks; O((V+E) log V), iterative throughout."""
        for t in self.tasks.values():
            seen: set[str] = set()
            for dep in t.dependencies:
                if dep in seen:
                    raise WorkflowDefinitionError(
                        f"Task {t.id!r} in workflow {self.name!r} lists dependency {dep!r} twice; list it once.",
                        workflow=self.name,
                        task=t.id,
                    )
                seen.add(dep)
                if dep not in self.tasks:
                    raise WorkflowDefinitionError(
                        f"Task {t.id!r} in workflow {self.name!r} depends on {dep!r}, which is not a task "
                        f"of this workflow (tasks: {_some(sorted(self.tasks))}). Fix the id in "
                        "dependencies=[...] or add that task.",
                        workflow=self.name,
                        task=t.id,
                    )
        order = _topological_order(self.tasks)
        if len(order) < len(self.tasks):
            cycle = _find_cycle(self.tasks)
            assert cycle is not None  # Kahn's algorithm stops short only on a cycle
            raise WorkflowDefinitionError(
                f"Workflow {self.name!r} has a dependency cycle: {_cycle_text(cycle)}. "
                f"Remove one of these dependencies so that task {cycle[0]!r} does not depend on itself.",
                workflow=self.name,
                task=cycle[0],
            )
        return order

    def _find_cycle(self) -> list[str] | None:
        """A dependency cycle in execution order, its first task repeated at the end; or ``None``."""
        return _find_cycle(self.tasks)

    # -- use ---------------------------------------------------------------------------------

    def namespace(self, tenant: str = DEFAULT_TENANT, package: str | None = None) -> str:
        """``tenant::package::workflow``."""
        return f"{tenant}::{package or self.package or EMBEDDED_PACKAGE}::{self.name}"

    def roots(self) -> list[str]:
        return [tid for tid in self.order if not self.tasks[tid].dependencies]

    def task(self, task_id: str) -> Task:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise KeyError(f"Workflow {self.name!r} has no task {task_id!r}") from None

    def input_context(
        self,
        task_id: str,
        initial: Mapping[str, JSONValue],
        outputs: Mapping[str, Mapping[str, JSONValue]],
        on_conflict: Callable[[ContextConflict], None] | None = None,
    ) -> Context:
        """The context task ``task_id`` starts with: ``initial`` overlaid by each dependency's output.

        Dependencies are applied in their declared order, so where two wrote the same key, the one
        declared later wins (Cloacina's rule). ``on_conflict`` hears of each differing value. A
        dependency with no output (it failed or was skipped: a task whose trigger rule runs it anyway)
        adds nothing.
        """
        merged: dict[str, JSONValue] = dict(initial)
        writer: dict[str, str] = {}
        for dep in self.tasks[task_id].dependencies:
            for key, value in outputs.get(dep, _NOTHING).items():
                if on_conflict is not None and key in writer and merged[key] != value:
                    on_conflict(ContextConflict(task_id, key, writer[key], dep))
                merged[key] = value
                if key not in initial or initial[key] != value:
                    writer[key] = dep
        return Context(merged)

    def final_context(
        self, initial: Mapping[str, JSONValue], outputs: Mapping[str, Mapping[str, JSONValue]]
    ) -> Context:
        """The execution's result: ``initial`` overlaid by every completed task's output, in order."""
        return Context(final_context(initial, self.order, outputs))

    def describe(self) -> dict[str, Any]:
        """The workflow's structure as JSON data: what a manifest records and ``inspect`` shows."""
        described: dict[str, Any] = {
            "name": self.name,
            "package": self.package,
            "description": self.description,
            "author": self.author,
            "tasks": [
                {**self.tasks[tid].spec.described(), "function": self.tasks[tid].function.__qualname__}
                for tid in self.order
            ],
        }
        if self.schedules:  # only when declared: workflows without schedules describe as before
            described["schedules"] = [s.model_dump(mode="json") for s in self.schedules]
        if self.triggers:
            described["triggers"] = [t.describe() for t in self.triggers]
        if self.input_schema is not None:
            described["input_schema"] = self.input_schema
        return described

    def fingerprint(self) -> str:
        """``sha256:<hex>`` over canonical JSON of the structure and each task's code.

        Code is the task function's source text when available, else its bytecode; so the
        fingerprint changes when a task's behaviour or the graph changes, and not otherwise.
        """
        body = self.describe()
        body.pop("triggers", None)
        body.pop("schedules", None)  # when it runs is not what it does: a new schedule keeps the fingerprint
        for entry in body["tasks"]:
            entry["code"] = _code_digest(self.tasks[entry["id"]].function)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @hookimpl
    def cloacina_workflows(self) -> Workflow:
        """A ``Workflow`` named by an entry point is its own plugin."""
        return self

    def __getattr__(self, name: str) -> Task:
        attributes = self.__dict__.get("_attributes")
        if attributes is not None and name in attributes:
            return attributes[name]  # type: ignore[no-any-return]
        raise AttributeError(f"Workflow {self.__dict__.get('name')!r} has no task attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._attributes))

    def __repr__(self) -> str:
        return f"<Workflow {self.namespace()!r} tasks={list(self.order)}>"


#: Most task ids a message lists; the rest are counted.
_SHOWN = 20


def _some(ids: list[str]) -> str:
    if len(ids) <= _SHOWN:
        return ", ".join(ids)
    return f"{', '.join(ids[:_SHOWN])}, ... ({len(ids):,} in all)"


def _cycle_text(cycle: list[str]) -> str:
    """``a -> b -> a``; a long cycle shows its first and last tasks and its length."""
    if len(cycle) <= _SHOWN + 1:
        return " -> ".join(cycle)
    half = _SHOWN // 2
    return (
        f"{' -> '.join(cycle[:half])} -> ... -> {' -> '.join(cycle[-half:])} "
        f"(a cycle of {len(cycle) - 1:,} tasks, {len(cycle) - 1 - 2 * half + 1:,} not shown)"
    )


def _topological_order(tasks: Mapping[str, Task]) -> tuple[str, ...]:
    """Kahn's algorithm, ties broken by declaration order: of the ready tasks, the first declared runs first.

    A heap of declaration positions gives the same order as sorting the ready list at every step
    did, in O((V+E) log V). Returns fewer ids than ``tasks`` when the graph has a cycle.
    """
    ids = list(tasks)
    position = {tid: i for i, tid in enumerate(ids)}
    dependents: list[list[int]] = [[] for _ in ids]
    remaining = [0] * len(ids)
    for i, t in enumerate(tasks.values()):
        remaining[i] = len(t.dependencies)
        for dep in t.dependencies:
            dependents[position[dep]].append(i)
    ready = [i for i, n in enumerate(remaining) if n == 0]  # already a heap: ascending
    order: list[str] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(ids[i])
        for child in dependents[i]:
            remaining[child] -= 1
            if remaining[child] == 0:
                heapq.heappush(ready, child)
    return tuple(order)


def _find_cycle(tasks: Mapping[str, Task]) -> list[str] | None:
    """Depth-first search along dependencies with an explicit stack (no recursion), from each task in
    declaration order; the first back edge closes the cycle, reported in execution order.
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(tasks, white)
    for start in tasks:
        if colour[start] != white:
            continue
        path: list[str] = [start]  # the grey chain: each entry depends on the next
        on_path = {start: 0}
        pending = [iter(tasks[start].dependencies)]
        colour[start] = grey
        while pending:
            for dep in pending[-1]:
                if colour[dep] == grey:
                    return list(reversed([*path[on_path[dep] :], dep]))
                if colour[dep] == white:
                    colour[dep] = grey
                    on_path[dep] = len(path)
                    path.append(dep)
                    pending.append(iter(tasks[dep].dependencies))
                    break
            else:
                pending.pop()
                done = path.pop()
                del on_path[done]
                colour[done] = black
    return None


def _code_bytes(code: CodeType) -> bytes:
    """Bytecode, names and constants, recursively; not file names or line numbers (they vary by install)."""
    parts = [code.co_code, repr(code.co_names).encode(), repr(code.co_varnames).encode()]
    for const in code.co_consts:
        parts.append(_code_bytes(const) if isinstance(const, CodeType) else repr(const).encode())
    return b"\x00".join(parts)


def _code_digest(function: Callable[..., Any]) -> str:
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        code = getattr(function, "__code__", None)
        raw = _code_bytes(code) if code is not None else repr(function).encode()
        return "bytecode:" + hashlib.sha256(raw).hexdigest()
    return "source:" + hashlib.sha256(source.encode("utf-8")).hexdigest()


def workflow(
    name: str | None = None,
    *,
    package: str | None = None,
    description: str | None = None,
    author: str | None = None,
    schedules: Iterable[Schedule] = (),
    triggers: Iterable[Trigger | str] = (),
    input: type[Any] | None = None,  # noqa: A002  # the name users know from upstream Cloacina
) -> Callable[[type[Any]], Workflow]:
    """Turn a class whose body holds ``@task`` functions into a ``Workflow``; validate its DAG now.

    ``name`` defaults to the class name, ``description`` to the first paragraph of its docstring.
    ``schedules``: ``Schedule(...)`` objects; the host starts an execution at each fire time while
    the workflow's package is active (one unnamed schedule is named ``default``).
    ``triggers``: ``@trigger`` functions (or their names); each firing starts this workflow once.
    ``input``: a pydantic model the initial context must fit; the manifest records its JSON Schema and
    every start (``run``, the runner, schedules) checks the context before storing anything.
    """

    def decorate(cls: type[Any]) -> Workflow:
        if not inspect.isclass(cls):
            raise WorkflowDefinitionError(
                f"@workflow decorates a class used as a namespace of tasks, not {cls!r}.",
                workflow=name,
            )
        attributes = {attr: value for attr, value in vars(cls).items() if isinstance(value, Task)}
        doc = inspect.getdoc(cls)
        return Workflow(
            name or cls.__name__,
            attributes.values(),
            package=package,
            description=description if description is not None else (doc.split("\n\n")[0] if doc else None),
            author=author,
            attributes=attributes,
            schedules=schedules,
            triggers=triggers,
            input=input,
        )

    return decorate
