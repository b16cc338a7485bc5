"""pytest plugin (registered through the ``pytest11`` entry point): the ``cloacina_runner`` fixture."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ._context import Context
from ._workflow import Workflow
from .testing import RunResult, arun_workflow, run_workflow


class CloacinaRunner:
    """Runs workflows in memory. ``run`` is synchronous, ``arun`` a coroutine for async tests."""

    def __init__(self, honour_retry_delays: bool) -> None:
        self.honour_retry_delays = honour_retry_delays

    def run(self, wf: Workflow, context: Mapping[str, object] | Context | None = None) -> RunResult:
        return run_workflow(wf, context, honour_retry_delays=self.honour_retry_delays)

    async def arun(self, wf: Workflow, context: Mapping[str, object] | Context | None = None) -> RunResult:
        return await arun_workflow(wf, context, honour_retry_delays=self.honour_retry_delays)


@pytest.fixture
def cloacina_runner() -> CloacinaRunner:
    """Run a workflow in memory: ``result = cloacina_runner.run(my_workflow, {"key": "value"})``.

    Retries happen at once (their delays are skipped) so that tests stay fast.
    """
    return CloacinaRunner(honour_retry_delays=False)
