"""``Schedule``: a cron schedule declared on a workflow, checked when it is declared.

A schedule is data (the manifest records it, the host runs it): a five-field cron expression
(``minute hour day-of-month month day-of-week``, as cron and ``cronsim`` read it), an IANA time zone
read with ``zoneinfo``, the context each execution it starts gets, and what to do with fire times
missed while no host ran (``catchup``): ``"skip"`` starts one execution for the latest missed time,
``"all"`` starts one for each, at most ``max_catchup`` (the latest ones), oldest first.

Daylight saving time follows Debian cron (cronsim's rules), in the schedule's time zone:

- a local time that does not exist (02:30 on a spring-forward day in Europe/Berlin) fires once, at
  the first moment after the gap (03:00) when the expression names a fixed hour; an expression whose
  hour is a wildcard (``*/30 * * * *``) just has no fire times inside the gap;
- a local time that happens twice (02:30 on a fall-back day) fires once, at its first occurrence,
  when the hour is fixed; a wildcard hour fires in both occurrences (every real half hour).

``cronsim`` is imported only when a schedule is checked or its fire times computed, so
``import cloacina_workflow`` stays light.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._context import Context
from ._errors import ContextError, WorkflowDefinitionError

__all__ = ["Schedule", "fire_times_after", "fire_times_before", "schedule_problem"]

#: The name a workflow's only schedule gets when it has none.
DEFAULT_SCHEDULE_NAME = "default"
_CRON_HELP = (
    "use five fields, minute hour day-of-month month day-of-week, e.g. '*/5 * * * *' (every five minutes) "
    "or '30 2 * * 1-5' (02:30 on weekdays)"
)


def _cron_problem(cron: str) -> str | None:
    """Why ``cron`` is not a usable cron expression, or None."""
    from cronsim import CronSim, CronSimError

    if not isinstance(cron, str) or not cron.strip():
        return f"cron expression {cron!r} is empty; {_CRON_HELP}"
    try:
        CronSim(cron, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except CronSimError as exc:
        reason = str(exc).rstrip(".")
        if "day-of-month" in reason:
            reason += " (a day outside 1-31, or one the months named never have, such as 30 February)"
        return f"cron expression {cron!r} is not valid: {reason}; {_CRON_HELP}"
    return None


def _timezone_problem(name: str) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return (
            f"time zone {name!r} is not known to zoneinfo; use an IANA name such as 'UTC', 'Europe/Berlin' or "
            "'America/New_York' (install the tzdata package where the system has no time zone database)"
        )
    return None


class Schedule(BaseModel):
    """``Schedule(cron, timezone="UTC", context={}, catchup="skip", max_catchup=100, name=None)``.

    Give it to ``@workflow(..., schedules=[...])``. A bad cron expression or time zone raises
    ``WorkflowDefinitionError`` with the expression and the fix, at once.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cron: str = Field(min_length=1, max_length=200, description="Five-field cron expression (minute first).")
    timezone: str = Field(default="UTC", min_length=1, max_length=100, description="IANA time zone (zoneinfo).")
    context: dict[str, Any] = Field(default_factory=dict, description="Initial context of each execution (JSON).")
    catchup: Literal["skip", "all"] = Field(
        default="skip", description="Missed fire times: 'skip' runs the latest once, 'all' runs each (max_catchup)."
    )
    max_catchup: int = Field(default=100, ge=1, le=10_000, description="Most missed fire times 'all' runs.")
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z_][A-Za-z0-9_\-.]*$",
        description="Unique within the workflow; 'default' when the workflow has only this one.",
    )

    def __init__(self, cron: str | None = None, /, **data: Any) -> None:
        if cron is not None:
            data["cron"] = cron
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'schedule'}: "
                + e["msg"].removeprefix("Value error, ").rstrip(".")
                for e in exc.errors()
            )
            raise WorkflowDefinitionError(f"Schedule {data.get('cron')!r}: {problems}.") from None

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        problem = _cron_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        problem = _timezone_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("context")
    @classmethod
    def _check_context(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            return Context(value).to_dict()  # JSON values only, as every context
        except ContextError as exc:
            raise ValueError(str(exc)) from None

    def next_fire_times(self, after: float, count: int = 1) -> list[float]:
        """The next ``count`` fire times strictly after ``after`` (seconds since the epoch)."""
        return fire_times_after(self.cron, self.timezone, after, count)


def schedule_problem(cron: str, tz: str) -> str | None:
    """Why a stored schedule's cron expression or time zone cannot run, or None (for manifests read from disk)."""
    return _cron_problem(cron) or _timezone_problem(tz)


def _iterate(cron: str, tz: str, at: float, *, reverse: bool) -> Iterator[float]:
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    start = datetime.fromtimestamp(at, tz=ZoneInfo(tz))
    for moment in CronSim(cron, start, reverse=reverse):
        yield moment.timestamp()


def fire_times_after(cron: str, tz: str, after: float, count: int) -> list[float]:
    """The first ``count`` fire times strictly after ``after``, oldest first."""
    found: list[float] = []
    for at in _iterate(cron, tz, after, reverse=False):
        if at <= after:
            continue
        found.append(at)
        if len(found) >= count:
            break
    return found


def fire_times_before(cron: str, tz: str, *, after: float, until: float, count: int) -> list[float]:
    """The latest ``count`` fire times in ``(after, until]``, oldest first (walked back from ``until``).

    Walking back costs only the times returned, however long the host was down.
    """
    found: list[float] = []
    # cronsim walks back from strictly before its start: start just past ``until`` to include it
    for at in _iterate(cron, tz, float(int(until)) + 1.0, reverse=True):
        if at > until:
            continue
        if at <= after or len(found) >= count:
            break
        found.append(at)
    found.reverse()
    return found


def resolve_names(schedules: tuple[Schedule, ...], workflow: str) -> tuple[Schedule, ...]:
    """Name the only unnamed schedule ``default``; several schedules each need a unique name."""
    for s in schedules:
        if not isinstance(s, Schedule):
            raise WorkflowDefinitionError(
                f"Workflow {workflow!r}: schedules=[...] holds {s!r}; give Schedule(...) objects.",
                workflow=workflow,
            )
    if len(schedules) == 1 and schedules[0].name is None:
        return (schedules[0].model_copy(update={"name": DEFAULT_SCHEDULE_NAME}),)
    seen: set[str] = set()
    for s in schedules:
        if s.name is None:
            raise WorkflowDefinitionError(
                f"Workflow {workflow!r} has {len(schedules)} schedules and the one with cron {s.cron!r} has no name; "
                "give each schedule a unique name=...",
                workflow=workflow,
            )
        if s.name in seen:
            raise WorkflowDefinitionError(
                f"Workflow {workflow!r} has two schedules named {s.name!r}; give each a unique name.",
                workflow=workflow,
            )
        seen.add(s.name)
    return schedules
