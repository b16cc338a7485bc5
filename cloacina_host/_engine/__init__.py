"""The durable engine: ``DefaultRunner`` and what it returns."""

from __future__ import annotations

from ._results import ExecutionResult, ExecutionStatus, TaskOutcome, TaskStatus
from ._runner import DefaultRunner

__all__ = ["DefaultRunner", "ExecutionResult", "ExecutionStatus", "TaskOutcome", "TaskStatus"]
