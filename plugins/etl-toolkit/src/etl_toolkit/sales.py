"""``sales_rollup``: a fan-out/fan-in workflow.

```
                ┌─ totals_by_region ──┐
load_orders ────┤                     ├── build_summary
                └─ totals_by_product ─┘
```

The two totals are plain functions: the runner runs them in threads, off the event loop, and
both start as soon as ``load_orders`` completes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloacina_workflow import Context, TaskError, task, workflow

#: Used when the initial context has no ``orders``.
SAMPLE_ORDERS: list[dict[str, Any]] = [
    {"id": "o-1", "region": "north", "product": "widget", "amount_cents": 1250},
    {"id": "o-2", "region": "south", "product": "gadget", "amount_cents": 4000},
    {"id": "o-3", "region": "north", "product": "gadget", "amount_cents": 4000},
    {"id": "o-4", "region": "east", "product": "widget", "amount_cents": 1250},
    {"id": "o-5", "region": "north", "product": "gizmo", "amount_cents": 999},
]

_FIELDS = {"id": str, "region": str, "product": str, "amount_cents": int}


def _check_order(index: int, order: object) -> dict[str, Any]:
    if not isinstance(order, Mapping):
        raise TaskError.ValidationFailed(message=f"orders[{index}] is a {type(order).__name__}, not an object")
    for field, kind in _FIELDS.items():
        value = order.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise TaskError.ValidationFailed(
                message=f"orders[{index}].{field} must be a {kind.__name__}, got {value!r}"
            )
    if order["amount_cents"] < 0:
        raise TaskError.ValidationFailed(message=f"orders[{index}].amount_cents is negative")
    return {field: order[field] for field in _FIELDS}


def _totals(orders: list[dict[str, Any]], key: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for order in orders:
        totals[order[key]] = totals.get(order[key], 0) + order["amount_cents"]
    return dict(sorted(totals.items()))


def _require_orders(context: Context) -> list[dict[str, Any]]:
    orders = context.get("orders")
    if orders is None:
        raise TaskError.ValidationFailed(message="Missing orders")
    return list(orders)


@workflow(
    name="sales_rollup",
    package="etl_toolkit",
    description="Total orders by region and by product in parallel, then summarise",
    author="Cloacina developers",
)
class sales_rollup:
    @task(id="load_orders", retry_attempts=2, retry_condition="transient")
    async def load_orders(context: Context) -> None:
        """Take ``orders`` from the initial context (or the sample set) and check every order."""
        given = context.get("orders", SAMPLE_ORDERS)
        if not isinstance(given, list):
            raise TaskError.ValidationFailed(message=f"orders must be a list, got {type(given).__name__}")
        context.set("orders", [_check_order(i, order) for i, order in enumerate(given)])

    @task(id="totals_by_region", dependencies=["load_orders"])
    def totals_by_region(context: Context) -> None:
        """Revenue per region, in cents."""
        context.insert("region_totals", _totals(_require_orders(context), "region"))

    @task(id="totals_by_product", dependencies=["load_orders"])
    def totals_by_product(context: Context) -> None:
        """Revenue per product, in cents."""
        context.insert("product_totals", _totals(_require_orders(context), "product"))

    @task(id="build_summary", dependencies=["totals_by_region", "totals_by_product"])
    async def build_summary(context: Context) -> None:
        """Join both totals into ``sales_summary``."""
        regions = context.get("region_totals")
        products = context.get("product_totals")
        if regions is None or products is None:
            raise TaskError.ValidationFailed(message="Missing region_totals or product_totals")
        revenue = sum(regions.values())
        if revenue != sum(products.values()):
            raise TaskError.ExecutionFailed(message="region and product totals disagree")
        context.insert(
            "sales_summary",
            {
                "orders": len(_require_orders(context)),
                "revenue_cents": revenue,
                "top_region": max(regions, key=lambda name: (regions[name], name)) if regions else None,
                "top_product": max(products, key=lambda name: (products[name], name)) if products else None,
            },
        )
