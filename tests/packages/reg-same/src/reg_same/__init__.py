"""The workflows of the drivers' scenario table (``tests/drivers/test_same_outcomes.py``).

One definition, run by every driver: imported by the test (in-memory runner, durable engine, distributed
worker) and registered as this package (its tasks then run in the package's worker process).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

from cloacina_workflow import Context, Ctx, TaskError, task, workflow

RUNS: Counter[tuple[str, str]] = Counter()
#: plain tasks that time out wait on this; set once a driver's runs have ended, so their threads return
RELEASE = threading.Event()


def _attempt(ctx: Context, name: str) -> int:
    """Count a run of task ``name`` in this execution (``ctx["run"]`` is unique per execution); its number."""
    RUNS[(str(ctx.get("run")), name)] += 1
    return RUNS[(str(ctx.get("run")), name)]


FAST = {"retry_delay_ms": 1, "retry_max_delay_ms": 4, "retry_jitter": False}


@workflow(name="success", package="same")
class success:
    @task
    async def extract(ctx: Context) -> None:
        ctx.insert("numbers", [1, 2, 3])

    @task(dependencies=["extract"])
    def transform(ctx: Context) -> None:
        ctx.insert("squares", [n * n for n in ctx.get("numbers")])

    @task(dependencies=["transform"])
    async def load(ctx: Context) -> None:
        ctx.insert("total", sum(ctx.get("squares")))


@workflow(name="backoffs", package="same")
class backoffs:
    @task(retry_attempts=3, retry_backoff="fixed", **FAST)  # type: ignore[arg-type]
    def fixed(ctx: Context) -> None:
        if _attempt(ctx, "fixed") < 3:
            raise TaskError.ExecutionFailed(f"try {RUNS[(str(ctx.get('run')), 'fixed')]}")
        ctx.set("fixed", "ok")

    @task(retry_attempts=2, retry_backoff="linear", **FAST)  # type: ignore[arg-type]
    async def linear(ctx: Context) -> None:
        _attempt(ctx, "linear")
        raise ValueError("never works")

    @task(retry_attempts=2, retry_backoff="exponential", retry_delay_ms=1, retry_max_delay_ms=2, retry_jitter=True)
    async def exponential(ctx: Context) -> None:
        if _attempt(ctx, "exponential") < 2:
            raise ConnectionError("refused")
        ctx.set("exponential", "ok")

    @task(dependencies=["fixed", "exponential"])
    def after_both(ctx: Context) -> None:
        ctx.set("after_both", [ctx.get("fixed"), ctx.get("exponential")])

    @task(dependencies=["linear"])
    def after_linear(ctx: Context) -> None:
        ctx.set("after_linear", True)


class Throttled(TaskError.ValidationFailed):
    """A task's own error class: a validation failure, but one it says a retry may cure."""

    def is_transient(self) -> bool:
        return True


@workflow(name="conditions", package="same")
class conditions:
    @task(retry_attempts=3, retry_condition="transient", **FAST)  # type: ignore[arg-type]
    def validation(ctx: Context) -> None:
        _attempt(ctx, "validation")
        raise TaskError.ValidationFailed("bad input")

    @task(retry_attempts=3, retry_condition="transient", **FAST)  # type: ignore[arg-type]
    async def connection(ctx: Context) -> None:
        if _attempt(ctx, "connection") < 2:
            raise ConnectionError("reset")
        ctx.set("connection", "ok")

    @task(retry_attempts=3, retry_condition="transient", **FAST)  # type: ignore[arg-type]
    def missing_key(ctx: Context) -> None:
        _attempt(ctx, "missing_key")
        raise KeyError("missing")

    @task(retry_attempts=3, retry_condition="never", **FAST)  # type: ignore[arg-type]
    async def never(ctx: Context) -> None:
        _attempt(ctx, "never")
        raise TaskError.ExecutionFailed("once only")

    @task(retry_attempts=1, retry_condition="transient", **FAST)  # type: ignore[arg-type]
    async def own_class(ctx: Context) -> None:
        _attempt(ctx, "own_class")
        raise Throttled("slow down")


@workflow(name="timeouts", package="same")
class timeouts:
    @task(timeout_s=0.05, retry_attempts=1, **FAST)  # type: ignore[arg-type]
    async def slow_async(ctx: Context) -> None:
        await asyncio.sleep(30)

    @task(timeout_s=0.05)
    def slow_plain(ctx: Context) -> None:
        RELEASE.wait(30)

    @task(timeout_s=10)
    async def own_timeout_error(ctx: Context) -> None:  # raising TimeoutError is not running out of time
        raise TimeoutError("the remote API timed out")

    @task(timeout_s=10)
    async def quick(ctx: Context) -> None:
        ctx.set("quick", True)


@workflow(name="skips", package="same")
class skips:
    @task
    def a(ctx: Context) -> None:
        ctx.set("a", 1)

    @task(dependencies=["a"])
    def b(ctx: Context) -> None:
        raise TaskError.ValidationFailed("b refuses")

    @task(dependencies=["b"])
    def c(ctx: Context) -> None: ...

    @task(dependencies=["c"])
    def d(ctx: Context) -> None: ...

    @task(dependencies=["a", "c"])
    def f(ctx: Context) -> None: ...

    @task(dependencies=["a"])
    async def e(ctx: Context) -> None:
        ctx.set("e", ctx.get("a") + 1)


@workflow(name="diamond", package="same")
class diamond:
    @task
    def root(ctx: Context) -> None:
        ctx.set("k", "root")

    @task(dependencies=["root"])
    async def left(ctx: Context) -> None:
        ctx.set("k", "left")
        ctx.set("left", True)

    @task(dependencies=["root"])
    def right(ctx: Context) -> None:
        ctx.set("k", "right")
        ctx.set("right", True)

    @task(dependencies=["left", "right"])
    async def join(ctx: Context) -> None:  # right is declared later: it wins
        ctx.set("join_saw", ctx.get("k"))

    @task(dependencies=["right", "left"])
    def join_reversed(ctx: Context) -> None:  # here left is declared later
        ctx.set("join_reversed_saw", ctx.get("k"))


@workflow(name="foreign", package="same")
class foreign:
    @task
    async def value_error(ctx: Context) -> None:
        raise ValueError("not a number: 'x'")

    @task
    def key_error(ctx: Context) -> None:
        ctx.set("lookup", {}["absent"])

    @task
    async def escapes(ctx: Context) -> None:
        raise SystemExit(3)

    @task
    def context_error(ctx: Context) -> None:
        ctx.update("absent", 1)

    @task
    async def cancels_itself(ctx: Context) -> None:
        raise asyncio.CancelledError("by its own hand")

    @task(dependencies=["value_error"])
    def downstream(ctx: Context) -> None: ...


@workflow(name="branches", package="same")
class branches:
    """Trigger rules and conditions: tasks that run after a failure, and tasks skipped by a condition."""

    @task
    def extract(ctx: Context) -> None:
        ctx.set("mode", "quick")

    @task(dependencies=["extract"], when=[Ctx("mode").equals("full")])
    async def full_report(ctx: Context) -> None:
        ctx.set("full_report", True)

    @task(dependencies=["full_report"])
    def publish(ctx: Context) -> None:
        ctx.set("published", True)

    @task(dependencies=["full_report"], trigger_rule="all_done")
    def publish_anyway(ctx: Context) -> None:
        ctx.set("published_anyway", ctx.get("mode"))

    @task(dependencies=["extract"])
    async def fragile(ctx: Context) -> None:
        raise TaskError.ValidationFailed("fragile breaks")

    @task(dependencies=["fragile", "extract"], trigger_rule="any_failed")
    def cleanup(ctx: Context) -> None:
        ctx.set("cleaned", True)

    @task(dependencies=["fragile"])
    def after_fragile(ctx: Context) -> None: ...

    @task(dependencies=["after_fragile", "cleanup"], trigger_rule="all_done")
    async def summary(ctx: Context) -> None:
        ctx.set("summary", ctx.get("cleaned"))

    @task(dependencies=["extract"], trigger_rule="any_failed")
    def no_failure(ctx: Context) -> None: ...

    @task(when=[Ctx("dry_run").exists()])
    def dry_run_only(ctx: Context) -> None: ...

    @task(when=[Ctx("scenario").is_in(["branches", "other"]), Ctx("dry_run").missing()])
    def real_run(ctx: Context) -> None:
        ctx.set("real_run", True)


@workflow(name="deferrals", package="same")
class deferrals:
    """Tasks that defer themselves (``TaskError.Deferred``): no failure, no retry used, at most MAX_DEFERRALS times."""

    @task
    def poll(ctx: Context) -> None:
        n = _attempt(ctx, "poll")
        if n < 3:
            ctx.set("half_done", n)  # dropped: a deferred attempt's output is not kept
            raise TaskError.Deferred(seconds=0.05, reason=f"not there yet (look {n})")
        ctx.set("polled", n)

    @task
    async def until(ctx: Context) -> None:
        if _attempt(ctx, "until") < 2:
            raise TaskError.Deferred(until=datetime.now(timezone.utc) + timedelta(milliseconds=50))
        ctx.set("until", "ok")

    @task(retry_attempts=1, **FAST)  # type: ignore[arg-type]
    def defer_then_retry(ctx: Context) -> None:
        n = _attempt(ctx, "defer_then_retry")
        if n == 1:
            raise TaskError.Deferred(seconds=0)
        if n == 2:
            raise TaskError.ExecutionFailed("flaky")  # its one retry: the deferral used none
        ctx.set("retried", n)

    @task
    def forever(ctx: Context) -> None:
        raise TaskError.Deferred(seconds=0, reason="never ready")

    @task(dependencies=["poll", "until"])
    def after(ctx: Context) -> None:
        ctx.set("after", [ctx.get("polled"), ctx.get("until")])

    @task(dependencies=["forever"])
    def after_forever(ctx: Context) -> None: ...
