"""``sales_rollup``: fan-out to two plain tasks, fan-in to the summary."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from etl_toolkit import sales_rollup
from etl_toolkit.sales import SAMPLE_ORDERS

from cloacina_workflow import Context, Task, TaskError

ORDERS = [
    {"id": "a", "region": "west", "product": "bolt", "amount_cents": 300},
    {"id": "b", "region": "east", "product": "nut", "amount_cents": 200},
    {"id": "c", "region": "west", "product": "nut", "amount_cents": 100},
]


def test_shape_is_fan_out_fan_in() -> None:
    assert sales_rollup.roots() == ["load_orders"]
    assert sales_rollup.dependents["load_orders"] == ("totals_by_region", "totals_by_product")
    assert sales_rollup.tasks["build_summary"].dependencies == ("totals_by_region", "totals_by_product")
    assert not sales_rollup.totals_by_region.is_async
    assert not sales_rollup.totals_by_product.is_async
    assert sales_rollup.build_summary.is_async


def test_run_with_given_orders(cloacina_runner: Any) -> None:
    result = cloacina_runner.run(sales_rollup, {"orders": ORDERS})
    assert result.ok, result.tasks
    final = result.context.to_dict()
    assert final["region_totals"] == {"east": 200, "west": 400}
    assert final["product_totals"] == {"bolt": 300, "nut": 300}
    assert final["sales_summary"] == {"orders": 3, "revenue_cents": 600, "top_region": "west", "top_product": "nut"}


def test_run_with_the_sample_orders(cloacina_runner: Any) -> None:
    result = cloacina_runner.run(sales_rollup)
    assert result.ok, result.tasks
    summary = result.context.get("sales_summary")
    assert summary["orders"] == len(SAMPLE_ORDERS)
    assert summary["revenue_cents"] == sum(o["amount_cents"] for o in SAMPLE_ORDERS)
    assert summary["top_region"] == "north"


@pytest.mark.asyncio
async def test_plain_tasks_run_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    context = Context({"orders": ORDERS})

    def spy(ctx: Context) -> None:
        seen.append(threading.get_ident())
        sales_rollup.totals_by_region.function(ctx)

    # Task.run is what the runners call: a plain task goes to a worker thread.
    spied = Task(sales_rollup.totals_by_region.spec, spy)
    await spied.run(context)
    assert seen
    assert seen[0] != loop_thread
    assert context.get("region_totals") == {"east": 200, "west": 400}


def test_plain_task_is_callable_directly() -> None:
    context = Context({"orders": ORDERS})
    sales_rollup.totals_by_product(context)
    assert context.get("product_totals") == {"bolt": 300, "nut": 300}


@pytest.mark.parametrize(
    ("orders", "message"),
    [
        ("not a list", "orders must be a list, got str"),
        ([{"id": "x", "region": "n", "product": "p", "amount_cents": "12"}], "orders[0].amount_cents must be a int"),
        ([{"id": "x", "region": "n", "product": "p", "amount_cents": -1}], "orders[0].amount_cents is negative"),
        ([ORDERS[0], 7], "orders[1] is a int, not an object"),
    ],
)
def test_bad_orders_fail_validation_and_skip_the_rest(cloacina_runner: Any, orders: object, message: str) -> None:
    result = cloacina_runner.run(sales_rollup, {"orders": orders})
    assert result.status == "failed"
    load = result.tasks["load_orders"]
    assert load.status == "failed"
    assert load.attempts == 1  # retry_condition="transient": a validation failure is not retried
    assert load.error is not None
    assert message in load.error
    assert {tid: o.status for tid, o in result.tasks.items() if tid != "load_orders"} == dict.fromkeys(
        ("totals_by_region", "totals_by_product", "build_summary"), "skipped"
    )


@pytest.mark.asyncio
async def test_summary_without_its_inputs_fails_validation() -> None:
    with pytest.raises(TaskError.ValidationFailed, match="Missing region_totals or product_totals"):
        await sales_rollup.build_summary(Context({"region_totals": {}}))
