"""Task output through the Python API, on both backends: typed records on each attempt, concurrent tasks
apart, a running attempt's output stored before it ends, and tasks that write nothing store nothing."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_host._output import OutputLine
from cloacina_workflow import Context, task, workflow


async def test_each_attempt_carries_its_own_typed_output(database_url: str) -> None:
    both_running = threading.Barrier(2, timeout=30)  # the two plain tasks write while the other runs

    def plain(name: str) -> None:
        print(f"{name} first")
        both_running.wait()
        print(f"{name} second")
        logging.getLogger("api").error("%s logs", name)

    @workflow(name="api_output")
    class api_output:
        @task
        def left(ctx: Context) -> None:
            plain("left")

        @task
        def right(ctx: Context) -> None:
            plain("right")

        @task
        async def loop_a(ctx: Context) -> None:
            for i in range(5):
                sys.stderr.write(f"loop_a {i}\n")
                await asyncio.sleep(0)

        @task
        async def loop_b(ctx: Context) -> None:
            for i in range(5):
                print(f"loop_b {i}")
                await asyncio.sleep(0)

        @task(dependencies=["left", "right", "loop_a", "loop_b"])
        def silent(ctx: Context) -> None:
            ctx.set("done", True)

    async with DefaultRunner(database_url, catalog=WorkflowCatalog(), recover=False) as runner:
        runner.add_workflow(api_output)
        result = await runner.execute(api_output)
        assert result.ok
        record = await runner.get_execution(result.execution_id)
    attempts = {t.task_id: t.attempts for t in record.tasks}
    for name in ("left", "right"):
        output = attempts[name][0].output
        assert all(isinstance(line, OutputLine) for line in output)
        assert [(line.stream, line.level, line.text) for line in output] == [
            ("stdout", None, f"{name} first"),
            ("stdout", None, f"{name} second"),
            ("log", "ERROR", f"api: {name} logs"),
        ]
    assert [(line.stream, line.text) for line in attempts["loop_a"][0].output] == [
        ("stderr", f"loop_a {i}") for i in range(5)
    ]
    assert [line.text for line in attempts["loop_b"][0].output] == [f"loop_b {i}" for i in range(5)]
    assert attempts["silent"][0].output == ()
    assert attempts["silent"][0].stored_output is None  # nothing written, nothing stored
    assert attempts["left"][0].output_cut == 0


async def test_a_running_attempts_output_is_stored_before_it_ends(database_url: str) -> None:
    gate = asyncio.Event()

    @workflow(name="api_running")
    class api_running:
        @task
        async def waits(ctx: Context) -> None:
            print("waiting at the gate")
            await gate.wait()
            print("through the gate")

    async with DefaultRunner(database_url, catalog=WorkflowCatalog(), recover=False) as runner:
        runner.add_workflow(api_running)
        execution_id = await runner.submit(api_running)
        deadline = time.monotonic() + 30
        while True:
            record = await runner.get_execution(execution_id)
            attempts = record.tasks[0].attempts
            if attempts and attempts[0].output:
                break
            assert time.monotonic() < deadline, "the running attempt's output never reached storage"
            await asyncio.sleep(0.05)
        assert record.status == "running"
        assert attempts[0].status == "running"
        assert [line.text for line in attempts[0].output] == ["waiting at the gate"]
        gate.set()
        result = await runner.wait(execution_id)
        assert result.ok
        final = await runner.get_execution(execution_id)
    assert [line.text for line in final.tasks[0].attempts[0].output] == ["waiting at the gate", "through the gate"]
