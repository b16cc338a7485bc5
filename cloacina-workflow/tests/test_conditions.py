"""Trigger rules and context conditions as the kit takes them: data, checked when they are declared."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloacina_workflow import Context, Ctx, WorkflowDefinitionError, task, workflow
from cloacina_workflow.testing import run_workflow


def test_a_task_records_its_rule_and_conditions_as_data_in_its_description() -> None:
    @workflow(name="described")
    class described:
        @task
        def a(ctx: Context) -> None: ...

        @task(dependencies=["a"], trigger_rule="all_done", when=[Ctx("mode").is_in(["full", "weekly"])])
        def b(ctx: Context) -> None: ...

    plain, ruled = described.describe()["tasks"]
    assert "trigger_rule" not in plain  # a plain task describes as before
    assert "when" not in plain
    assert ruled["trigger_rule"] == "all_done"
    assert ruled["when"] == [{"key": "mode", "op": "in", "value": ["full", "weekly"]}]
    json.dumps(ruled)  # JSON data, not code


def test_a_condition_changes_the_fingerprint_and_a_plain_task_keeps_it() -> None:
    def build(**options: Any) -> str:
        @workflow(name="fp")
        class fp:
            @task
            def a(ctx: Context) -> None: ...

            @task(dependencies=["a"], **options)
            def b(ctx: Context) -> None: ...

        return fp.fingerprint()

    assert build() == build(trigger_rule="all_succeeded", when=[])
    assert build() != build(when=[Ctx("x").exists()])
    assert build() != build(trigger_rule="all_done")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"trigger_rule": "one_failed"}, "trigger_rule 'one_failed' is not one of all_succeeded, any_failed, all_done"),
        ({"when": [lambda ctx: True]}, "when=[...] holds a function; conditions are data the manifest records"),
        ({"when": Ctx("mode").exists()}, "when= takes a list of conditions"),
        ({"when": ["mode == 'full'"]}, "when=[...] holds \"mode == 'full'\""),
    ],
)
def test_an_ill_formed_rule_or_condition_is_refused_at_decoration(options: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match=r"Ctx\('mode'\)|all_succeeded") as info:

        @task(dependencies=["a"], **options)
        def b(ctx: Context) -> None: ...

    assert message in str(info.value)
    assert info.value.task == "b"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Ctx(""), "the key must be a non-empty string"),
        (lambda: Ctx("k").is_in("eu"), "in takes a list of values, not 'eu'"),
        (lambda: Ctx("k").equals({1, 2}), "is not JSON"),
    ],
)
def test_an_ill_formed_condition_is_refused_when_built(build: Any, message: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match=r"e\.g\. when=") as info:
        build()
    assert message in str(info.value)


def test_any_failed_without_dependencies_is_refused_with_the_fix() -> None:
    with pytest.raises(WorkflowDefinitionError, match=r"needs dependencies .* list the tasks it watches"):

        @task(trigger_rule="any_failed")
        def lonely(ctx: Context) -> None: ...


def test_a_condition_naming_an_unknown_dependency_is_refused_by_the_workflow() -> None:
    with pytest.raises(WorkflowDefinitionError, match="depends on 'extrakt', which is not a task"):

        @workflow(name="typo")
        class typo:
            @task
            def extract(ctx: Context) -> None: ...

            @task(dependencies=["extrakt"], trigger_rule="any_failed")
            def alert(ctx: Context) -> None: ...


def test_the_kit_runner_skips_on_a_false_condition_and_runs_a_cleanup_after_a_failure() -> None:
    @workflow(name="cleanup")
    class cleanup:
        @task
        def work(ctx: Context) -> None:
            raise ValueError("broken")

        @task(dependencies=["work"], trigger_rule="any_failed")
        def alert(ctx: Context) -> None:
            ctx.set("alerted", True)

        @task(when=[Ctx("mode").equals("full")])
        def full(ctx: Context) -> None: ...

    result = run_workflow(cleanup, {"mode": "quick"})
    assert result.status == "failed"  # a handled failure still fails the execution
    assert result.error == "task 'work' failed: ValueError: broken"
    assert result.tasks["alert"].status == "completed"
    assert result.context.get("alerted") is True
    assert result.tasks["full"].error == 'skipped: condition not met: context \'mode\' equals "full" (it is "quick")'
