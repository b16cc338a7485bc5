"""``@trigger``: a poll trigger, a function the host calls every ``poll_interval_s`` seconds.

The function takes one argument, a ``PollInfo`` (its name and when it last fired), and returns
``Fire({...})`` ("start each subscribed workflow with this context") or ``None`` / ``Skip()`` ("not
now"). It may be ``async`` or plain (a plain one runs in a thread). A poll that raises, returns
something else or outlasts ``timeout_s`` is reported by the host and tried again at the next poll.

Workflows subscribe with ``@workflow(..., triggers=[new_files])`` (the ``Trigger`` object) or
``triggers=["new_files"]`` (the name of a trigger defined before the workflow). What the manifest
records is ``TriggerSpec`` (name, interval, timeout): data, not code.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._context import Context
from ._errors import ContextError, WorkflowDefinitionError

__all__ = ["Fire", "PollInfo", "Skip", "Trigger", "TriggerResult", "TriggerSpec", "resolve_triggers", "trigger"]

#: Shortest and longest poll interval (seconds).
MIN_POLL_INTERVAL_S = 0.1
MAX_POLL_INTERVAL_S = 86_400.0
_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-.]*$"


@dataclass(frozen=True)
class Fire:
    """What a poll returns to start each subscribed workflow once, with ``context`` as its input."""

    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skip:
    """What a poll returns for "not now" (as ``None`` does); ``reason`` is for the reader only."""

    reason: str | None = None


TriggerResult = Union[Fire, Skip, None]


@dataclass(frozen=True)
class PollInfo:
    """What a poll is told: the trigger's name and when it last fired (seconds since the epoch, or None)."""

    trigger: str
    last_fire_at: float | None = None


class TriggerSpec(BaseModel):
    """A trigger as the manifest records it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=_NAME_PATTERN, description="Unique within the package.")
    poll_interval_s: float = Field(ge=MIN_POLL_INTERVAL_S, le=MAX_POLL_INTERVAL_S, description="Seconds between polls.")
    timeout_s: float = Field(gt=0, le=MAX_POLL_INTERVAL_S, description="A longer poll is abandoned, reported.")


def _spec(name: str, poll_interval_s: float, timeout_s: float | None) -> TriggerSpec:
    interval = poll_interval_s if isinstance(poll_interval_s, (int, float)) else 1.0
    timeout = timeout_s if timeout_s is not None else max(1.0, min(float(interval), 60.0))
    try:
        return TriggerSpec(name=name, poll_interval_s=poll_interval_s, timeout_s=timeout)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))
        raise WorkflowDefinitionError(
            f"Trigger {name!r}: {problems}. Give a name of letters, digits, '_', '-', '.', a poll_interval_s "
            f"between {MIN_POLL_INTERVAL_S:g} and {MAX_POLL_INTERVAL_S:g} seconds and a timeout_s above 0."
        ) from None


class Trigger:
    """A poll function with its ``TriggerSpec``. ``await trigger.poll(info)`` is ``Fire`` or ``None``."""

    def __init__(self, spec: TriggerSpec, function: Callable[[PollInfo], Any]) -> None:
        self.spec = spec
        self.function = function
        self._thread: threading.Thread | None = None  # a plain poll still running (one that timed out)

    @property
    def name(self) -> str:
        return self.spec.name

    def describe(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json")

    async def poll(self, info: PollInfo) -> Fire | None:
        """Call the function once (a plain one in a thread) and check what it returned."""
        if inspect.iscoroutinefunction(self.function):
            result = await self.function(info)
        else:
            result = await self._in_thread(info)
            if inspect.isawaitable(result):
                result = await result
        return check_result(self.name, result)

    async def _in_thread(self, info: PollInfo) -> object:
        """Run a plain poll in a thread of its own: one that hangs holds no shared pool's thread.

        While a poll that timed out still runs, the next poll raises instead of starting another
        thread, so a hanging trigger holds one thread, not one per interval.
        """
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"trigger {self.name!r}: its previous poll is still running (it hangs?)")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        call = contextvars.copy_context().run

        def settle(outcome: tuple[bool, object]) -> None:
            if not future.done():
                if outcome[0]:
                    future.set_result(outcome[1])
                else:
                    future.set_exception(outcome[1])  # type: ignore[arg-type]

        def run() -> None:
            try:
                outcome: tuple[bool, object] = (True, call(self.function, info))
            except BaseException as exc:  # noqa: BLE001  # handed to the awaiting poll
                outcome = (False, exc)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(settle, outcome)

        thread = self._thread = threading.Thread(target=run, name=f"cloacina-trigger-{self.name}", daemon=True)
        thread.start()
        try:
            return await future
        finally:
            # it answered (a result or an error): its thread is ending, whether or not is_alive() says
            # so yet; only a poll that never answered (cancelled by its timeout) holds the next one back
            if future.done() and not future.cancelled() and self._thread is thread:
                self._thread = None

    def __repr__(self) -> str:
        return f"Trigger({self.name!r}, poll_interval_s={self.spec.poll_interval_s:g})"


def check_result(name: str, result: object) -> Fire | None:
    """``Fire`` (its context checked as every context is) or None; anything else is a ``TypeError``."""
    if result is None or isinstance(result, Skip):
        return None
    if isinstance(result, Fire):
        try:
            return Fire(Context(dict(result.context)).to_dict())
        except (ContextError, TypeError, ValueError) as exc:
            raise TypeError(f"trigger {name!r} fired with a context that is not JSON: {exc}") from None
    raise TypeError(f"trigger {name!r} returned {result!r}; return Fire({{...}}) to fire, or None / Skip() for not now")


#: Triggers defined in this process, by name: what ``triggers=["name"]`` finds.
_DEFINED: dict[str, list[Trigger]] = {}


def trigger(
    *,
    name: str | None = None,
    poll_interval_s: float,
    timeout_s: float | None = None,
) -> Callable[[Callable[[PollInfo], TriggerResult | Awaitable[TriggerResult]]], Trigger]:
    """Turn ``def poll(info) -> Fire | None`` (async or plain) into a ``Trigger``; check it now.

    ``name`` defaults to the function's name; ``timeout_s`` to the interval (at least 1 s, at most 60 s).
    """

    def decorate(function: Callable[[PollInfo], Any]) -> Trigger:
        if not callable(function):
            raise WorkflowDefinitionError(f"@trigger decorates a function, not {function!r}.")
        made = Trigger(_spec(name or function.__name__, poll_interval_s, timeout_s), function)
        try:
            inspect.signature(function).bind(PollInfo(made.name))
        except (TypeError, ValueError):
            raise WorkflowDefinitionError(
                f"Trigger {made.name!r}: its function must take one argument (a PollInfo), as in `def poll(info): ...`."
            ) from None
        _DEFINED.setdefault(made.name, []).append(made)
        return made

    return decorate


def resolve_triggers(given: Iterable[Trigger | str], workflow: str) -> tuple[Trigger, ...]:
    """``triggers=[...]`` as ``Trigger`` objects: names are looked up among the triggers defined so far."""
    found: list[Trigger] = []
    for item in given:
        if isinstance(item, Trigger):
            found.append(item)
            continue
        if not isinstance(item, str):
            raise WorkflowDefinitionError(
                f"Workflow {workflow!r}: triggers=[...] holds {item!r}; give @trigger functions or their names.",
                workflow=workflow,
            )
        defined = _DEFINED.get(item, [])
        if not defined:
            known = ", ".join(sorted(_DEFINED)) or "none"
            raise WorkflowDefinitionError(
                f"Workflow {workflow!r} subscribes to trigger {item!r}, which is not defined "
                f"(defined so far: {known}); define it with @trigger(...) before the workflow "
                "(import its module first), or pass the function.",
                workflow=workflow,
            )
        if len(defined) > 1:
            raise WorkflowDefinitionError(
                f"Workflow {workflow!r}: {len(defined)} triggers are named {item!r}; pass the trigger function itself.",
                workflow=workflow,
            )
        found.append(defined[0])
    names = [t.name for t in found]
    for n in names:
        if names.count(n) > 1:
            raise WorkflowDefinitionError(
                f"Workflow {workflow!r} subscribes to trigger {n!r} twice; name it once.", workflow=workflow
            )
    return tuple(found)
