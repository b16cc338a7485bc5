"""Every default of the host, defined once: the runner, the worker, the registry and the CLI read them here.

The kit defines what it needs itself (``cloacina_workflow.DEFAULT_TENANT``, the retry policy's
defaults); this module re-exports the tenant so the host has one place to look.
"""

from __future__ import annotations

from cloacina_workflow import DEFAULT_TENANT

#: Seconds a lease (on an execution, or a claimed task) holds without renewal; renewed every third of it.
DEFAULT_LEASE_S = 30.0
#: Tasks an in-process engine (``DefaultRunner``, ``run``, ``serve``) runs at once.
DEFAULT_MAX_CONCURRENT_TASKS = 32
#: Tasks a distributed worker (``cloacina-ctl worker``, ``serve`` on PostgreSQL) runs at once: as many as an
#: in-process engine. Each round claims up to that many ready tasks, so with fewer a worker mostly waits on
#: round trips (one worker, ``benchmarks/bench_scaleout.py``, 2 cores: 475 tasks/s at 8, 1,117 at 32).
DEFAULT_WORKER_CONCURRENCY = DEFAULT_MAX_CONCURRENT_TASKS
#: Longest sleep of a distributed worker without a notification (in case one is lost).
DEFAULT_POLL_S = 5.0
#: On stop, how long a distributed worker lets running tasks finish before handing them back.
DEFAULT_GRACE_S = 30.0
#: Time limit for loading a package's entry points in a child process.
DEFAULT_LOAD_TIMEOUT_S = 30.0
#: A package's worker process stops after this long without tasks (it restarts on demand).
DEFAULT_IDLE_TIMEOUT_S = 300.0
#: How long a package's worker has to acknowledge a cancelled (timed-out) task before it is killed.
DEFAULT_CANCEL_GRACE_S = 2.0
#: Most task output (stdout, stderr, log records, in their stored form) kept per attempt; the rest is counted.
MAX_TASK_OUTPUT_BYTES = 1024 * 1024
#: How often, at most, a running attempt's new output is stored (so ``executions logs --follow`` sees it).
OUTPUT_FLUSH_S = 1.0

__all__ = [
    "DEFAULT_CANCEL_GRACE_S",
    "DEFAULT_GRACE_S",
    "DEFAULT_IDLE_TIMEOUT_S",
    "DEFAULT_LEASE_S",
    "DEFAULT_LOAD_TIMEOUT_S",
    "DEFAULT_MAX_CONCURRENT_TASKS",
    "DEFAULT_POLL_S",
    "DEFAULT_TENANT",
    "DEFAULT_WORKER_CONCURRENCY",
    "MAX_TASK_OUTPUT_BYTES",
    "OUTPUT_FLUSH_S",
]
