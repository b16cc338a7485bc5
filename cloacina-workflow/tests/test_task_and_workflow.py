from __future__ import annotations

import asyncio
import random

import pytest

from cloacina_workflow import (
    CloacinaError,
    Context,
    RetryPolicy,
    Task,
    TaskError,
    Workflow,
    WorkflowDefinitionError,
    task,
    workflow,
)


@workflow(name="etl", package="demo", description="Extract, transform, load", author="Team")
class etl:
    """Docstring is not the description when one is given."""

    @task(id="extract", retry_attempts=2, timeout_s=5)
    async def extract(context: Context) -> None:
        """Pull the numbers."""
        context.insert("numbers", [1, 2, 3])

    @task(id="transform", dependencies=["extract"])
    def transform(context: Context) -> None:
        context.insert("doubled", [n * 2 for n in context.get("numbers")])

    @task(id="load", dependencies=["transform"], retry_backoff="fixed", retry_condition="transient")
    async def load(context: Context) -> None:
        context.insert("loaded", len(context.get("doubled")))


def test_workflow_metadata_and_order() -> None:
    assert isinstance(etl, Workflow)
    assert etl.name == "etl"
    assert etl.package == "demo"
    assert etl.description == "Extract, transform, load"
    assert etl.author == "Team"
    assert etl.order == ("extract", "transform", "load")
    assert etl.namespace() == "public::demo::etl"
    assert etl.namespace("acme") == "acme::demo::etl"
    assert etl.dependents["extract"] == ("transform",)


def test_task_settings_are_recorded() -> None:
    extract = etl.tasks["extract"]
    assert extract.retry == RetryPolicy(attempts=2)
    assert extract.timeout_s == 5
    assert extract.spec.docstring == "Pull the numbers."
    assert etl.tasks["load"].retry.backoff == "fixed"
    assert etl.tasks["load"].retry.condition == "transient"
    assert not etl.tasks["transform"].is_async


def test_tasks_stay_directly_callable() -> None:
    ctx = Context()
    asyncio.run(etl.extract(ctx))
    etl.transform(ctx)  # plain function: called synchronously
    asyncio.run(etl.load(ctx))
    assert ctx.to_dict() == {"numbers": [1, 2, 3], "doubled": [2, 4, 6], "loaded": 3}
    assert isinstance(etl.extract, Task)


def test_name_and_description_default_from_the_class() -> None:
    @workflow()
    class nightly:
        """Runs every night.

        More details here."""

        @task
        def only(context: Context) -> None:
            pass

    assert nightly.name == "nightly"
    assert nightly.description == "Runs every night."
    assert nightly.namespace() == "public::embedded::nightly"
    assert nightly.tasks["only"].dependencies == ()


def test_unknown_dependency_names_the_task_and_the_fix() -> None:
    with pytest.raises(WorkflowDefinitionError) as info:

        @workflow(name="wf")
        class wf:
            @task(id="a")
            def a(context: Context) -> None: ...

            @task(id="b", dependencies=["aa"])
            def b(context: Context) -> None: ...

    assert info.value.task == "b"
    assert info.value.workflow == "wf"
    assert "depends on 'aa', which is not a task of this workflow (tasks: a, b)" in str(info.value)


def test_duplicate_id_names_both_functions() -> None:
    with pytest.raises(WorkflowDefinitionError, match="two tasks with id 'x' \\(functions 'one' and 'two'\\)"):

        @workflow(name="wf")
        class wf:
            @task(id="x")
            def one(context: Context) -> None: ...

            @task(id="x")
            def two(context: Context) -> None: ...


def test_cycle_reports_its_path() -> None:
    with pytest.raises(WorkflowDefinitionError) as info:

        @workflow(name="loop")
        class loop:
            @task(id="start")
            def start(context: Context) -> None: ...

            @task(id="a", dependencies=["start", "c"])
            def a(context: Context) -> None: ...

            @task(id="b", dependencies=["a"])
            def b(context: Context) -> None: ...

            @task(id="c", dependencies=["b"])
            def c(context: Context) -> None: ...

    message = str(info.value)
    assert "dependency cycle" in message
    path = message.split("cycle: ")[1].split(".")[0].split(" -> ")
    assert path[0] == path[-1]
    assert set(path) == {"a", "b", "c"}
    assert "start" not in path


def test_self_dependency_is_a_cycle() -> None:
    with pytest.raises(WorkflowDefinitionError, match="cycle: me -> me"):

        @workflow(name="selfish")
        class selfish:
            @task(id="me", dependencies=["me"])
            def me(context: Context) -> None: ...


def test_empty_workflow_and_bad_names_are_refused() -> None:
    with pytest.raises(WorkflowDefinitionError, match="has no tasks"):

        @workflow(name="empty")
        class empty:
            pass

    with pytest.raises(WorkflowDefinitionError, match="not a valid name"):

        @workflow(name="has::colons")
        class bad:
            @task
            def t(context: Context) -> None: ...

    for name in ("trailing\n", "nul\x00", "spa ce"):  # checked whole: `$` would let a trailing newline through
        with pytest.raises(WorkflowDefinitionError, match="not a valid name"):
            workflow(name=name)(type("flows", (), {"t": task(id="t")(lambda context: None)}))


def test_dependencies_given_as_a_string_is_explained() -> None:
    with pytest.raises(WorkflowDefinitionError, match=r"write dependencies=\['a'\]"):
        task(id="b", dependencies="a")(lambda context: None)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"retry_backoff": "sometimes"}, "retry_backoff"),
        ({"retry_attempts": -1}, "retry_attempts"),
        ({"retry_condition": "maybe"}, "retry_condition"),
        ({"retry_delay_ms": 10, "retry_max_delay_ms": 1}, "retry_max_delay_ms (1) is below retry_delay_ms (10)"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_invalid_task_settings_name_the_argument(kwargs: dict[str, object], fragment: str) -> None:
    def body(context: Context) -> None: ...

    with pytest.raises(WorkflowDefinitionError, match="Task 'body' has invalid settings") as info:
        task(**kwargs)(body)  # type: ignore[call-overload]
    assert fragment in str(info.value)
    assert issubclass(WorkflowDefinitionError, CloacinaError)


def test_retry_policy_counts_retries_after_the_first_failure() -> None:
    policy = RetryPolicy(attempts=2)
    error = RuntimeError("boom")
    assert policy.should_retry(error, 1)
    assert policy.should_retry(error, 2)
    assert not policy.should_retry(error, 3)
    assert not RetryPolicy(attempts=0).should_retry(error, 1)


def test_retry_conditions() -> None:
    transient = RetryPolicy(attempts=5, condition="transient")
    assert transient.should_retry(TaskError.ExecutionFailed("flaky"), 1)
    assert transient.should_retry(TaskError.Timeout("slow"), 1)
    assert transient.should_retry(ConnectionResetError(), 1)
    assert not transient.should_retry(TaskError.ValidationFailed("bad input"), 1)
    assert not transient.should_retry(ValueError("bug"), 1)
    assert not RetryPolicy(attempts=5, condition="never").should_retry(TaskError.ExecutionFailed(), 1)
    assert RetryPolicy(attempts=5, condition="all").should_retry(ValueError("bug"), 1)


def test_backoff_shapes_and_cap() -> None:
    fixed = RetryPolicy(backoff="fixed", delay_ms=100, jitter=False)
    linear = RetryPolicy(backoff="linear", delay_ms=100, jitter=False)
    exponential = RetryPolicy(backoff="exponential", delay_ms=100, max_delay_ms=500, jitter=False)
    assert [fixed.delay_s(n) for n in (1, 2, 3)] == [0.1, 0.1, 0.1]
    assert [linear.delay_s(n) for n in (1, 2, 3)] == [0.1, 0.2, 0.3]
    assert [exponential.delay_s(n) for n in (1, 2, 3, 4, 30)] == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_jitter_stays_between_half_and_full_delay() -> None:
    policy = RetryPolicy(backoff="fixed", delay_ms=1000, jitter=True)
    rng = random.Random(7)
    delays = [policy.delay_s(1, rng) for _ in range(200)]
    assert all(0.5 <= d <= 1.0 for d in delays)
    assert len(set(delays)) > 100


def test_task_errors_keep_their_variant_and_message() -> None:
    err = TaskError.ValidationFailed(message="Missing raw_data")
    assert isinstance(err, TaskError)
    assert err.message == "Missing raw_data"
    assert str(err) == "Missing raw_data"
    import pickle

    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is TaskError.ValidationFailed
    assert copy.message == "Missing raw_data"


def test_input_context_later_dependency_wins_and_conflict_is_reported() -> None:
    @workflow(name="diamond")
    class diamond:
        @task(id="root")
        def root(context: Context) -> None: ...

        @task(id="left", dependencies=["root"])
        def left(context: Context) -> None: ...

        @task(id="right", dependencies=["root"])
        def right(context: Context) -> None: ...

        @task(id="join", dependencies=["left", "right"])
        def join(context: Context) -> None: ...

    conflicts = []
    ctx = diamond.input_context(
        "join",
        {"seed": 1},
        {"left": {"seed": 1, "x": "from left", "l": 1}, "right": {"seed": 1, "x": "from right", "r": 2}},
        conflicts.append,
    )
    assert ctx.to_dict() == {"seed": 1, "x": "from right", "l": 1, "r": 2}
    assert [(c.key, c.loser, c.winner) for c in conflicts] == [("x", "left", "right")]


def _two_step(body: str) -> Workflow:
    namespace: dict[str, object] = {}
    exec(
        compile(
            "from cloacina_workflow import task, workflow\n"
            "@workflow(name='fp', package='p')\n"
            "class fp:\n"
            "    @task(id='a')\n"
            "    def a(context):\n"
            f"        {body}\n"
            "    @task(id='b', dependencies=['a'])\n"
            "    def b(context):\n"
            "        pass\n",
            "<fingerprint-test>",
            "exec",
        ),
        namespace,
    )
    wf = namespace["fp"]
    assert isinstance(wf, Workflow)
    return wf


def test_describe_gives_the_structure_as_json() -> None:
    described = etl.describe()
    assert described["name"] == "etl"
    assert [t["id"] for t in described["tasks"]] == ["extract", "transform", "load"]
    assert described["tasks"][1]["dependencies"] == ["extract"]
    assert described["tasks"][0]["retry"]["attempts"] == 2
    assert described["tasks"][0]["docstring"] == "Pull the numbers."


def test_fingerprint_is_stable_and_follows_code_and_structure() -> None:
    assert etl.fingerprint() == etl.fingerprint()
    assert etl.fingerprint().startswith("sha256:")
    # exec'd code has no source file: the bytecode stands in for it
    same_a, same_b = _two_step("context.set('x', 1)"), _two_step("context.set('x', 1)")
    changed = _two_step("context.set('x', 2)")
    assert same_a.fingerprint() == same_b.fingerprint()
    assert changed.fingerprint() != same_a.fingerprint()
    assert etl.fingerprint() != same_a.fingerprint()
