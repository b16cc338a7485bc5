"""The task graph of a manifest workflow, checked and walked without recursion, in linear time.

A manifest is untrusted data: a workflow may hold up to ``MAX_TASKS_PER_WORKFLOW`` tasks in one
long chain or one long cycle. Everything here is iterative and O(tasks + dependencies): the checks
(duplicate ids, unknown dependencies, cycles), the topological order, the longest chain and the
first root-to-leaf paths that ``inspect`` shows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol


class _TaskLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def dependencies(self) -> Sequence[str]: ...


class GraphProblem(ValueError):
    """Why a task graph is not valid; the message names the task(s)."""


#: Most task ids quoted in one message.
_QUOTED = 10


@dataclass(frozen=True)
class Graph:
    """A valid DAG: ``order`` is a topological order (declaration order among ready tasks)."""

    ids: tuple[str, ...]
    dependencies: dict[str, tuple[str, ...]]
    dependents: dict[str, tuple[str, ...]]
    order: tuple[str, ...]

    @property
    def roots(self) -> list[str]:
        return [tid for tid in self.ids if not self.dependencies[tid]]

    def depth(self) -> int:
        """Tasks on the longest chain."""
        level: dict[str, int] = {}
        for tid in self.order:
            level[tid] = 1 + max((level[d] for d in self.dependencies[tid]), default=0)
        return max(level.values(), default=0)

    def paths(self, limit: int) -> list[list[str]]:
        """The first ``limit`` root-to-leaf paths, depth first, in declaration order."""
        found: list[list[str]] = []
        for root in self.roots:
            path = [root]
            branches: list[Iterator[str]] = [iter(self.dependents[root])]
            if not self.dependents[root]:
                found.append([root])
            while branches and len(found) < limit:
                nxt = next(branches[-1], None)
                if nxt is None:
                    branches.pop()
                    path.pop()
                    continue
                path.append(nxt)
                if self.dependents[nxt]:
                    branches.append(iter(self.dependents[nxt]))
                else:
                    found.append(list(path))
                    path.pop()
            if len(found) >= limit:
                break
        return found[:limit]


def _quoted(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:_QUOTED])
    return shown + (f" and {len(ids) - _QUOTED:,} more" if len(ids) > _QUOTED else "")


def _find_cycle(remaining: set[str], dependencies: dict[str, tuple[str, ...]]) -> list[str]:
    """A cycle among ``remaining`` (tasks Kahn's algorithm could not order), in execution order.

    Every remaining task has a remaining dependency, so following them from any task must return to
    a task already seen; the walk is iterative and visits each task at most once.
    """
    start = min(remaining)
    position: dict[str, int] = {}
    walk: list[str] = []
    tid = start
    while tid not in position:
        position[tid] = len(walk)
        walk.append(tid)
        tid = next(d for d in dependencies[tid] if d in remaining)
    cycle = [*walk[position[tid] :], tid]
    return list(reversed(cycle))


def check_graph(tasks: Sequence[_TaskLike]) -> Graph:
    """Check ``tasks`` form a DAG and return it; ``GraphProblem`` names the first problem found."""
    ids = tuple(t.id for t in tasks)
    dependencies: dict[str, tuple[str, ...]] = {}
    for t in tasks:
        if t.id in dependencies:
            raise GraphProblem(f"lists task {t.id!r} twice")
        dependencies[t.id] = tuple(t.dependencies)
    dependents: dict[str, list[str]] = {tid: [] for tid in ids}
    for tid in ids:
        seen: set[str] = set()
        for dep in dependencies[tid]:
            if dep in seen:
                raise GraphProblem(f"task {tid!r} lists dependency {dep!r} twice; list it once")
            seen.add(dep)
            if dep not in dependents:
                raise GraphProblem(
                    f"task {tid!r} depends on {dep!r}, which is not a task of this workflow "
                    f"(tasks: {_quoted(sorted(ids))})"
                )
            dependents[dep].append(tid)
    waiting = {tid: len(deps) for tid, deps in dependencies.items()}
    ready = deque(tid for tid in ids if not waiting[tid])
    order: list[str] = []
    while ready:
        tid = ready.popleft()
        order.append(tid)
        for other in dependents[tid]:
            waiting[other] -= 1
            if not waiting[other]:
                ready.append(other)
    if len(order) != len(ids):
        cycle = _find_cycle(set(ids) - set(order), dependencies)
        shown = " -> ".join(cycle[:_QUOTED]) + (
            f" -> ... ({len(cycle) - _QUOTED:,} more)" if len(cycle) > _QUOTED else ""
        )
        raise GraphProblem(f"has a dependency cycle: {shown}; remove one of these dependencies")
    return Graph(
        ids=ids,
        dependencies=dependencies,
        dependents={k: tuple(v) for k, v in dependents.items()},
        order=tuple(order),
    )
