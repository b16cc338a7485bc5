"""``@task``: a function plus its id, dependencies, retry policy and timeout."""

from __future__ import annotations

import functools
import inspect
import random
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Literal, Union, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._conditions import DEFAULT_TRIGGER_RULE, Condition, TriggerRule, check_conditions
from ._context import Context
from ._errors import TaskError, WorkflowDefinitionError

RetryBackoff = Literal["fixed", "linear", "exponential"]
RetryCondition = Literal["never", "transient", "all"]

TaskFunction = Callable[[Context], Union[Awaitable[None], None]]

# The retry policy's defaults, defined once for ``RetryPolicy`` and ``@task``.
DEFAULT_RETRY_ATTEMPTS = 0
DEFAULT_RETRY_BACKOFF: RetryBackoff = "exponential"
DEFAULT_RETRY_DELAY_MS = 1000
DEFAULT_RETRY_MAX_DELAY_MS = 30_000
DEFAULT_RETRY_JITTER = True
DEFAULT_RETRY_CONDITION: RetryCondition = "all"

#: Exceptions outside ``TaskError`` that ``retry_condition="transient"`` retries.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, ConnectionError)
if sys.version_info < (3, 11):  # asyncio.TimeoutError became the builtin TimeoutError in 3.11
    import asyncio

    TRANSIENT_ERRORS += (asyncio.TimeoutError,)


# pydantic field name -> the @task argument a user wrote, for error messages
_ARGUMENT = {
    "attempts": "retry_attempts",
    "backoff": "retry_backoff",
    "delay_ms": "retry_delay_ms",
    "max_delay_ms": "retry_max_delay_ms",
    "jitter": "retry_jitter",
    "condition": "retry_condition",
}


class RetryPolicy(BaseModel):
    """When and how often a failed task runs again.

    ``attempts`` is the number of retries after the first failure (``attempts + 1`` runs at most).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(default=DEFAULT_RETRY_ATTEMPTS, ge=0, le=1000)
    backoff: RetryBackoff = DEFAULT_RETRY_BACKOFF
    delay_ms: int = Field(default=DEFAULT_RETRY_DELAY_MS, ge=0)
    max_delay_ms: int = Field(default=DEFAULT_RETRY_MAX_DELAY_MS, ge=0)
    jitter: bool = DEFAULT_RETRY_JITTER
    condition: RetryCondition = DEFAULT_RETRY_CONDITION

    @model_validator(mode="after")
    def _max_not_below_delay(self) -> RetryPolicy:
        if self.max_delay_ms < self.delay_ms:
            raise ValueError(f"retry_max_delay_ms ({self.max_delay_ms}) is below retry_delay_ms ({self.delay_ms})")
        return self

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (1-based) that raised ``error`` gets another run."""
        if attempt > self.attempts or self.condition == "never":
            return False
        if self.condition == "all":
            return True
        if isinstance(error, TaskError):
            return error.is_transient()
        return isinstance(error, TRANSIENT_ERRORS)

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the retry that follows failed attempt ``attempt`` (1-based)."""
        if self.backoff == "fixed":
            ms = float(self.delay_ms)
        elif self.backoff == "linear":
            ms = float(self.delay_ms * attempt)
        else:
            ms = float(self.delay_ms) * (2.0 ** min(attempt - 1, 62))
        ms = min(ms, float(self.max_delay_ms))
        if self.jitter and ms > 0:
            # "equal jitter": keep half the delay, randomise the rest, so retries never bunch up
            ms = ms / 2 + (rng or random).uniform(0, ms / 2)
        return ms / 1000.0


class TaskSpec(BaseModel):
    """Everything about a task except its code: what packaging and the engine record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_\-.]*$")
    dependencies: tuple[str, ...] = ()
    retry: RetryPolicy = RetryPolicy()
    timeout_s: float | None = Field(default=None, gt=0)
    docstring: str | None = None
    trigger_rule: TriggerRule = Field(
        default=DEFAULT_TRIGGER_RULE, description="On its dependencies' outcomes: all_succeeded, any_failed, all_done."
    )
    when: tuple[Condition, ...] = Field(default=(), description="Conditions on its input context; all must hold.")

    #: the fields a spec describes only when they differ from their defaults (so older manifests read the same)
    OPTIONAL: ClassVar[tuple[str, ...]] = ("trigger_rule", "when")

    def described(self) -> dict[str, Any]:
        """The spec as JSON data, the fields of ``OPTIONAL`` only when set (fingerprints of plain tasks unchanged)."""
        data = self.model_dump(mode="json", exclude=set(self.OPTIONAL))
        if self.trigger_rule != DEFAULT_TRIGGER_RULE:
            data["trigger_rule"] = self.trigger_rule
        if self.when:
            data["when"] = [{"key": c.key, "op": c.op, "value": _json(c.value)} for c in self.when]
        return data


def _json(value: Any) -> Any:
    return [_json(v) for v in value] if isinstance(value, tuple) else value


class Task:
    """A task function with its spec. Calling it calls the function (``await t(ctx)`` if async)."""

    __slots__ = ("__dict__", "function", "is_async", "spec")

    def __init__(self, spec: TaskSpec, function: TaskFunction) -> None:
        self.spec = spec
        self.function = function
        self.is_async = inspect.iscoroutinefunction(function)
        functools.update_wrapper(self, function)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def dependencies(self) -> tuple[str, ...]:
        return self.spec.dependencies

    @property
    def retry(self) -> RetryPolicy:
        return self.spec.retry

    @property
    def timeout_s(self) -> float | None:
        return self.spec.timeout_s

    def __call__(self, context: Context) -> Any:
        return self.function(context)

    async def run(self, context: Context) -> None:
        """Run once: await an async task, run a plain one in a thread, off the event loop."""
        import asyncio  # here, not at import time: reading manifests should not pay for asyncio

        if self.is_async:
            await self.function(context)  # type: ignore[misc]
        else:
            await asyncio.to_thread(self.function, context)

    def __repr__(self) -> str:
        return f"<Task {self.id!r} deps={list(self.dependencies)}>"


@overload
def task(function: TaskFunction, /) -> Task: ...
@overload
def task(
    function: None = None,
    /,
    *,
    id: str | None = None,
    dependencies: Sequence[str] = (),
    retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    retry_backoff: RetryBackoff = DEFAULT_RETRY_BACKOFF,
    retry_delay_ms: int = DEFAULT_RETRY_DELAY_MS,
    retry_max_delay_ms: int = DEFAULT_RETRY_MAX_DELAY_MS,
    retry_jitter: bool = DEFAULT_RETRY_JITTER,
    retry_condition: RetryCondition = DEFAULT_RETRY_CONDITION,
    timeout_s: float | None = None,
    trigger_rule: TriggerRule = DEFAULT_TRIGGER_RULE,
    when: Sequence[Condition] = (),
) -> Callable[[TaskFunction], Task]: ...


def task(
    function: TaskFunction | None = None,
    /,
    *,
    id: str | None = None,  # noqa: A002  # the name Cloacina users know
    dependencies: Sequence[str] = (),
    retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    retry_backoff: RetryBackoff = DEFAULT_RETRY_BACKOFF,
    retry_delay_ms: int = DEFAULT_RETRY_DELAY_MS,
    retry_max_delay_ms: int = DEFAULT_RETRY_MAX_DELAY_MS,
    retry_jitter: bool = DEFAULT_RETRY_JITTER,
    retry_condition: RetryCondition = DEFAULT_RETRY_CONDITION,
    timeout_s: float | None = None,
    trigger_rule: TriggerRule = DEFAULT_TRIGGER_RULE,
    when: Sequence[Condition] = (),
) -> Task | Callable[[TaskFunction], Task]:
    """Declare a task. Use inside a ``@workflow`` class, bare (``@task``) or with options.

    ``id`` defaults to the function name. ``retry_attempts=N`` allows N retries after the first
    failure. ``timeout_s`` fails an attempt that runs longer (``TaskError.Timeout``).
    ``trigger_rule`` (``all_succeeded``, ``any_failed``, ``all_done``) and ``when=[Ctx(key).equals(v), ...]``
    say when it runs; otherwise it is skipped with the reason (``cloacina_workflow._conditions``).
    """

    def decorate(fn: TaskFunction) -> Task:
        if not callable(fn):
            raise WorkflowDefinitionError(f"@task must decorate a function, not {fn!r}")
        task_id = id if id is not None else getattr(fn, "__name__", "")
        if isinstance(dependencies, str):
            raise WorkflowDefinitionError(
                f"Task {task_id!r}: dependencies must be a list of task ids, not the string "
                f"{dependencies!r}; write dependencies=[{dependencies!r}].",
                task=task_id,
            )
        check_conditions(task_id, trigger_rule, when, tuple(dependencies))
        try:
            spec = TaskSpec(
                id=task_id,
                dependencies=tuple(dependencies),
                retry=RetryPolicy(
                    attempts=retry_attempts,
                    backoff=retry_backoff,
                    delay_ms=retry_delay_ms,
                    max_delay_ms=retry_max_delay_ms,
                    jitter=retry_jitter,
                    condition=retry_condition,
                ),
                timeout_s=timeout_s,
                docstring=inspect.getdoc(fn),
                trigger_rule=trigger_rule,
                when=tuple(when),
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{_ARGUMENT.get(str(err['loc'][-1]), err['loc'][-1]) if err['loc'] else 'retry'}: {err['msg']}"
                for err in exc.errors()
            )
            raise WorkflowDefinitionError(
                f"Task {task_id!r} has invalid settings: {problems}. Fix the @task(...) arguments.",
                task=task_id,
            ) from exc
        return Task(spec, fn)

    if function is not None:
        return decorate(function)
    return decorate
