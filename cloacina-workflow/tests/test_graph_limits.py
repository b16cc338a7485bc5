"""Workflow graphs at and over MAX_TASKS_PER_WORKFLOW: ordered iteratively, the same order as ever."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloacina_workflow import Context, LimitExceeded, Task, TaskSpec, Workflow, WorkflowDefinitionError
from cloacina_workflow.limits import (
    MAX_TASKS_PER_WORKFLOW,
    MAX_WORKFLOWS_PER_PACKAGE,
    WorkflowLimitExceeded,
    check_task_count,
    check_workflow_count,
)


def _noop(context: Context) -> None: ...


def manifest_like(n: int, deps: Callable[[int], tuple[str, ...]]) -> list[Task]:
    """Tasks as the host's manifest reader builds them: specs with a placeholder function.

    ``model_construct``: the specs' own validation is not what these tests measure.
    """
    return [Task(TaskSpec.model_construct(id=f"t{i}", dependencies=deps(i)), _noop) for i in range(n)]


def chain(n: int) -> list[Task]:
    return manifest_like(n, lambda i: (f"t{i - 1}",) if i else ())


def cycle(n: int) -> list[Task]:
    return manifest_like(n, lambda i: (f"t{(i - 1) % n}",))


# -- the algorithms the kit used before: the reference the new ones must agree with ---------------


def reference_order(tasks: Mapping[str, Task]) -> tuple[str, ...]:
    position = {tid: i for i, tid in enumerate(tasks)}
    remaining = {tid: len(t.dependencies) for tid, t in tasks.items()}
    ready = [tid for tid, n in remaining.items() if n == 0]
    order: list[str] = []
    while ready:
        ready.sort(key=position.__getitem__)
        tid = ready.pop(0)
        order.append(tid)
        for other, t in tasks.items():
            if tid in t.dependencies:
                remaining[other] -= 1
                if remaining[other] == 0:
                    ready.append(other)
    return tuple(order)


def reference_cycle(tasks: Mapping[str, Task]) -> list[str] | None:
    colour = dict.fromkeys(tasks, 0)
    stack: list[str] = []

    def visit(tid: str) -> list[str] | None:
        colour[tid] = 1
        stack.append(tid)
        for dep in tasks[tid].dependencies:
            if colour[dep] == 1:
                return list(reversed([*stack[stack.index(dep) :], dep]))
            if colour[dep] == 0:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        colour[tid] = 2
        return None

    for tid in tasks:
        if colour[tid] == 0:
            found = visit(tid)
            if found:
                return found
    return None


@st.composite
def graphs(draw: st.DrawFn, acyclic: bool) -> list[Task]:
    n = draw(st.integers(1, 12))
    names = draw(st.permutations([f"n{i}" for i in range(n)]))  # declaration order unrelated to the graph
    tasks = []
    for i, name in enumerate(names):
        candidates = names[:i] if acyclic else names
        deps = draw(st.lists(st.sampled_from(candidates), unique=True, max_size=3)) if candidates else []
        tasks.append((name, tuple(deps)))
    order = draw(st.permutations(tasks))
    return [Task(TaskSpec(id=name, dependencies=deps), _noop) for name, deps in order]


@settings(max_examples=150, deadline=None)
@given(graphs(acyclic=True))
def test_order_is_the_same_as_before_on_random_dags(tasks: list[Task]) -> None:
    wf = Workflow("dag", tasks)
    assert wf.order == reference_order(wf.tasks)


@settings(max_examples=150, deadline=None)
@given(graphs(acyclic=False))
def test_cycle_reported_is_the_same_as_before_on_random_graphs(tasks: list[Task]) -> None:
    index = {t.id: t for t in tasks}
    expected = reference_cycle(index)
    if expected is None:
        assert Workflow("g", tasks).order == reference_order(index)
        return
    with pytest.raises(WorkflowDefinitionError) as info:
        Workflow("g", tasks)
    assert f"dependency cycle: {' -> '.join(expected)}. " in str(info.value)
    assert info.value.task == expected[0]


# -- at the limit: iterative, whatever the shape ---------------------------------------------------


def test_a_chain_at_the_limit_is_ordered() -> None:
    wf = Workflow("long", chain(MAX_TASKS_PER_WORKFLOW))
    assert wf.order == tuple(f"t{i}" for i in range(MAX_TASKS_PER_WORKFLOW))
    assert wf.roots() == ["t0"]
    assert wf.dependents["t0"] == ("t1",)


def test_a_chain_declared_backwards_is_ordered() -> None:
    n = MAX_TASKS_PER_WORKFLOW
    wf = Workflow("backwards", manifest_like(n, lambda i: (f"t{i + 1}",) if i < n - 1 else ()))
    assert wf.order == tuple(f"t{i}" for i in reversed(range(n)))


def test_a_fan_out_and_a_fan_in_at_the_limit_are_ordered() -> None:
    n = MAX_TASKS_PER_WORKFLOW
    out = Workflow("fan_out", manifest_like(n, lambda i: ("t0",) if i else ()))
    assert out.order == tuple(f"t{i}" for i in range(n))
    assert len(out.dependents["t0"]) == n - 1
    into = Workflow("fan_in", manifest_like(n, lambda i: tuple(f"t{j}" for j in range(1, n)) if i == 0 else ()))
    assert into.order == (*(f"t{i}" for i in range(1, n)), "t0")
    assert len(into.describe()["tasks"]) == n


def test_a_long_cycle_is_found_and_its_path_bounded() -> None:
    n = MAX_TASKS_PER_WORKFLOW
    with pytest.raises(WorkflowDefinitionError) as info:
        Workflow("loop", cycle(n))
    message = str(info.value)
    assert "dependency cycle: t0 -> t9999 -> t9998 -> " not in message  # execution order, not reversed
    assert message.startswith("Workflow 'loop' has a dependency cycle: t0 -> t1 -> t2 -> ")
    assert "t9998 -> t9999 -> t0 (a cycle of 10,000 tasks, 9,981 not shown)." in message
    assert "Remove one of these dependencies so that task 't0' does not depend on itself." in message
    assert len(message) < 1000


def test_a_long_cycle_behind_a_long_chain_is_found() -> None:
    n = MAX_TASKS_PER_WORKFLOW // 2
    tasks = manifest_like(n, lambda i: (f"t{i + 1}",) if i < n - 1 else ())  # t0 -> ... -> t4999
    tasks += [Task(TaskSpec(id=f"c{i}", dependencies=(f"c{(i + 1) % n}",)), _noop) for i in range(n)]
    tasks[-1 - n] = Task(TaskSpec(id=f"t{n - 1}", dependencies=("c0",)), _noop)
    with pytest.raises(WorkflowDefinitionError, match=r"a cycle of 5,000 tasks"):
        Workflow("hidden", tasks)


def test_unknown_dependency_in_a_big_workflow_lists_a_bounded_sample() -> None:
    tasks = [*chain(MAX_TASKS_PER_WORKFLOW - 1), Task(TaskSpec(id="last", dependencies=("ghost",)), _noop)]
    with pytest.raises(WorkflowDefinitionError) as info:
        Workflow("big", tasks)
    message = str(info.value)
    assert "depends on 'ghost', which is not a task of this workflow (tasks: last, t0, t1, " in message
    assert "... (10,000 in all)). Fix the id" in message
    assert len(message) < 1000


# -- over the limit: refused before any graph work ------------------------------------------------


@pytest.mark.parametrize("shape", [chain, cycle])
def test_over_the_task_limit_is_refused_first(shape: Callable[[int], list[Task]]) -> None:
    with pytest.raises(LimitExceeded) as info:
        Workflow("huge", shape(2 * MAX_TASKS_PER_WORKFLOW))
    assert str(info.value) == (
        "Workflow 'huge' declares 20,000 tasks, more than the limit of 10,000 (MAX_TASKS_PER_WORKFLOW). "
        "Split it into smaller workflows."
    )
    assert (info.value.limit, info.value.value, info.value.maximum) == ("MAX_TASKS_PER_WORKFLOW", 20_000, 10_000)
    assert isinstance(info.value, WorkflowDefinitionError)  # the manifest reader's `except` catches it too


def test_one_over_the_limit_is_refused_and_the_limit_itself_is_not() -> None:
    check_task_count(MAX_TASKS_PER_WORKFLOW, "Workflow 'w'")
    with pytest.raises(WorkflowLimitExceeded, match=r"declares 10,001 tasks"):
        check_task_count(MAX_TASKS_PER_WORKFLOW + 1, "Workflow 'w'")


def test_workflow_count_limit() -> None:
    check_workflow_count(MAX_WORKFLOWS_PER_PACKAGE, "manifest.json")
    with pytest.raises(LimitExceeded) as info:
        check_workflow_count(MAX_WORKFLOWS_PER_PACKAGE + 1, "manifest.json")
    assert str(info.value) == (
        "manifest.json declares 1,001 workflows, more than the limit of 1,000 (MAX_WORKFLOWS_PER_PACKAGE). "
        "Split it into several packages."
    )
    assert info.value.limit == "MAX_WORKFLOWS_PER_PACKAGE"


def test_limit_errors_survive_pickling() -> None:  # they cross the worker pipe
    with pytest.raises(WorkflowLimitExceeded) as info:
        check_task_count(MAX_TASKS_PER_WORKFLOW + 1, "Workflow 'w'")
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is WorkflowLimitExceeded
    assert (str(copy), copy.limit, copy.value, copy.maximum) == (
        str(info.value),
        "MAX_TASKS_PER_WORKFLOW",
        10_001,
        10_000,
    )
