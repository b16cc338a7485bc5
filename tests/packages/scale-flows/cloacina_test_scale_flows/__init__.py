"""Workflows for the scale-out tests. Every task appends ``KEY TASK PID`` to ``runs-PID.log`` in the
context's ``out_dir`` as it starts (so a run is visible from outside the engine even if its worker
dies before the task ends), then sleeps ``sleep_s`` seconds (``nap_s`` for ``slow::nap``).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from cloacina_workflow import Context, task, workflow


def record(ctx: Context, name: str) -> None:
    out = ctx.get("out_dir")
    if out is None:
        return
    with open(Path(out) / f"runs-{os.getpid()}.log", "a", encoding="utf-8") as f:
        f.write(f"{ctx.get('key')} {name} {os.getpid()}\n")
        f.flush()


async def nap(ctx: Context, name: str) -> None:
    record(ctx, name)
    await asyncio.sleep(float(ctx.get("sleep_s", 0.0)))


def doze(ctx: Context, name: str) -> None:
    record(ctx, name)
    time.sleep(float(ctx.get("sleep_s", 0.0)))


@workflow(name="simple", package="scale")
class simple:
    @task
    async def only(ctx: Context) -> None:
        await nap(ctx, "only")
        ctx.set("only", True)


@workflow(name="pipeline", package="scale")
class pipeline:
    @task
    def extract(ctx: Context) -> None:
        doze(ctx, "extract")
        ctx.set("numbers", [1, 2, 3])

    @task(dependencies=["extract"])
    async def transform(ctx: Context) -> None:
        await nap(ctx, "transform")
        ctx.set("squares", [n * n for n in ctx.get("numbers")])

    @task(dependencies=["transform"])
    def load(ctx: Context) -> None:
        doze(ctx, "load")
        ctx.set("total", sum(ctx.get("squares")))


@workflow(name="parallel", package="scale")
class parallel:
    @task
    async def setup(ctx: Context) -> None:
        await nap(ctx, "setup")
        ctx.set("items", list(range(30)))

    @task(dependencies=["setup"])
    async def batch_1(ctx: Context) -> None:
        await nap(ctx, "batch_1")
        ctx.set("sum_1", sum(ctx.get("items")[0:10]))

    @task(dependencies=["setup"])
    def batch_2(ctx: Context) -> None:
        doze(ctx, "batch_2")
        ctx.set("sum_2", sum(ctx.get("items")[10:20]))

    @task(dependencies=["setup"])
    async def batch_3(ctx: Context) -> None:
        await nap(ctx, "batch_3")
        ctx.set("sum_3", sum(ctx.get("items")[20:30]))

    @task(dependencies=["batch_1", "batch_2", "batch_3"])
    async def merge(ctx: Context) -> None:
        await nap(ctx, "merge")
        ctx.set("total", ctx.get("sum_1") + ctx.get("sum_2") + ctx.get("sum_3"))


@workflow(name="slow", package="scale")
class slow:
    @task
    async def nap(ctx: Context) -> None:
        """Sleeps ``nap_s`` seconds; with ``nap_once``, only on the first run (a marker file in ``out_dir``)."""
        record(ctx, "nap")
        marker = Path(ctx.get("out_dir", ".")) / f"napped-{ctx.get('key')}"
        if not (ctx.get("nap_once") and marker.exists()):
            marker.touch()
            await asyncio.sleep(float(ctx.get("nap_s", 0.0)))
        ctx.set("napped_in", os.getpid())

    @task(dependencies=["nap"])
    def after(ctx: Context) -> None:
        record(ctx, "after")
        ctx.set("after", True)
