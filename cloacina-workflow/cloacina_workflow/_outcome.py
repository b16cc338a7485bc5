"""How a task's failure is told: one line per error, the same in the in-memory runner and the engine.

``describe_exception`` gives ``ClassName: message``, the kit's error variants by their public names
(``TaskError.Timeout: ...``). ``as_task_failure`` turns what a task must not raise (a ``BaseException``
that is not an ``Exception``: ``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``, a custom
subclass, a ``CancelledError`` the task raised itself) into a ``TaskError.ExecutionFailed`` that
fails the attempt like any other error, instead of ending the process or the event loop.
"""

from __future__ import annotations

from ._errors import ContextError, TaskError, TaskExecutionFailed

_VARIANTS = ("ValidationFailed", "ExecutionFailed", "Timeout", "KeyExists", "KeyNotFound", "NotSerializable")


def describe_exception(exc: BaseException) -> str:
    """``TaskError.Timeout: message``: the kit's variants by their public names, others by class."""
    cls = type(exc)
    for root in (TaskError, ContextError):
        for attr in _VARIANTS:
            if getattr(root, attr, None) is cls:
                return f"{root.__name__}.{attr}: {exc}"
    return f"{cls.__qualname__}: {exc}"


def as_task_failure(task_id: str, exc: BaseException) -> TaskExecutionFailed:
    """The error that fails an attempt whose task raised ``exc``, a ``BaseException`` outside ``Exception``."""
    return TaskExecutionFailed(
        f"task {task_id!r} raised {type(exc).__qualname__}({', '.join(map(repr, exc.args))}); tasks must "
        "raise Exception subclasses (such as TaskError.ExecutionFailed), never BaseException ones "
        "(SystemExit, KeyboardInterrupt...), which would stop the host instead of failing the task",
        task=task_id,
    )


__all__ = ["as_task_failure", "describe_exception"]
