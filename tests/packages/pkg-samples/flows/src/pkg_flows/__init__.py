"""Sample workflows: a diamond DAG with retry settings and a timeout."""

from __future__ import annotations

from cloacina_workflow import Context, task, workflow


@workflow(name="diamond", package="pkg_flows", author="Packaging Tests")
class diamond:
    """Fan out from fetch to two branches and join in merge."""

    @task(id="fetch", retry_attempts=2, retry_backoff="fixed", retry_delay_ms=500, retry_max_delay_ms=500)
    def fetch(context: Context) -> None:
        """Fetch the input."""
        context.insert("n", 1)

    @task(id="left", dependencies=["fetch"], timeout_s=5)
    def left(context: Context) -> None:
        context.insert("left", 2)

    @task(id="right", dependencies=["fetch"], retry_condition="transient", retry_jitter=False)
    async def right(context: Context) -> None:
        context.insert("right", 3)

    @task(id="merge", dependencies=["left", "right"])
    def merge(context: Context) -> None:
        """Join both branches."""
        context.insert("total", 6)
