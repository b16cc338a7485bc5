"""When a task runs: a trigger rule on its dependencies' outcomes and conditions on its input context.

Both are data (the manifest records them, ``inspect`` shows them), never code, and the state machine
(``_machine.settle``) is the one place that applies them:

- ``trigger_rule``: ``"all_succeeded"`` (the default: every dependency completed), ``"any_failed"`` (every
  dependency ended and at least one failed: a cleanup or alert task), ``"all_done"`` (every dependency
  ended, however);
- ``when=[Ctx("mode").equals("full"), ...]``: every condition must hold on the context the task would
  start with (the initial context overlaid by its completed dependencies' outputs).

A task whose rule or condition does not hold ends ``skipped`` with the reason; its dependents are then
decided by the same rules. Plain frozen dataclasses: importing this module loads no pydantic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._errors import WorkflowDefinitionError

__all__ = ["TRIGGER_RULES", "Condition", "ConditionOp", "Ctx", "TriggerRule", "check_conditions", "rule_text"]

TriggerRule = Literal["all_succeeded", "any_failed", "all_done"]
ConditionOp = Literal["exists", "missing", "equals", "not_equals", "in", "not_in"]

TRIGGER_RULES: tuple[str, ...] = ("all_succeeded", "any_failed", "all_done")
DEFAULT_TRIGGER_RULE: TriggerRule = "all_succeeded"
_OPS: tuple[str, ...] = ("exists", "missing", "equals", "not_equals", "in", "not_in")
_HELP = (
    "write conditions as data, e.g. when=[Ctx('mode').equals('full'), Ctx('region').is_in(['eu', 'us']), "
    "Ctx('dry_run').missing()]"
)
#: longest value shown in a skip reason
_SHOWN = 80


def _shown(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _freeze(value: Any) -> Any:
    """Lists become tuples (so a condition compares and hashes the same however it was built)."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class Condition:
    """One test on a context key: ``op`` is exists, missing, equals, not_equals, in or not_in; ``value`` the
    operand (a JSON value; a list of them for ``in``/``not_in``). Build it with ``Ctx(key)``."""

    key: str
    op: ConditionOp
    value: Any = None

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem is not None:
            raise WorkflowDefinitionError(f"condition {self.describe()}: {problem}; {_HELP}.")
        object.__setattr__(self, "value", _freeze(self.value))

    def holds(self, context: Mapping[str, Any]) -> bool:
        """Whether this condition holds on ``context``; a missing key fails every test but ``missing``."""
        present = self.key in context
        if self.op == "exists":
            return present
        if self.op == "missing":
            return not present
        if not present:
            return False
        value = _freeze(context[self.key])
        if self.op == "equals":
            return bool(value == self.value)
        if self.op == "not_equals":
            return bool(value != self.value)
        if self.op == "in":
            return value in self.value
        return value not in self.value

    def describe(self) -> str:
        """``context 'mode' equals "full"``: what ``inspect`` and skip reasons show."""
        key = f"context {self.key!r}"
        if self.op in ("exists", "missing"):
            return f"{key} {'exists' if self.op == 'exists' else 'is missing'}"
        words = {"equals": "equals", "not_equals": "does not equal", "in": "is one of", "not_in": "is none of"}
        try:
            operand = _shown(list(self.value) if isinstance(self.value, tuple) else self.value)
        except (TypeError, ValueError):
            operand = repr(self.value)
        return f"{key} {words.get(self.op, self.op)} {operand}"

    def failed_text(self, context: Mapping[str, Any]) -> str:
        """Why it does not hold on ``context``: the condition and the value found."""
        found = f"it is {_shown(context[self.key])}" if self.key in context else "the key is absent"
        return f"{self.describe()} ({found})"


def _problem(c: Condition) -> str | None:
    if not isinstance(c.key, str) or not c.key:
        return f"the key must be a non-empty string, not {c.key!r}"
    if c.op not in _OPS:
        return f"unknown test {c.op!r} (known: {', '.join(_OPS)})"
    if c.op in ("exists", "missing"):
        return None if c.value is None else f"{c.op} takes no value"
    if c.op in ("in", "not_in") and (isinstance(c.value, (str, bytes, Mapping)) or not isinstance(c.value, Iterable)):
        return f"{c.op} takes a list of values, not {c.value!r}"
    try:
        json.dumps(list(c.value) if c.op in ("in", "not_in") else c.value, allow_nan=False)
    except (TypeError, ValueError):
        return f"the value {c.value!r} is not JSON (strings, numbers, booleans, null, lists, objects)"
    return None


class Ctx:
    """``Ctx("mode")``: the conditions on one context key, e.g. ``Ctx("mode").equals("full")``."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        if not isinstance(key, str) or not key:
            raise WorkflowDefinitionError(f"Ctx(key): the key must be a non-empty string, not {key!r}; {_HELP}.")
        self.key = key

    def exists(self) -> Condition:
        return Condition(self.key, "exists")

    def missing(self) -> Condition:
        return Condition(self.key, "missing")

    def equals(self, value: Any) -> Condition:
        return Condition(self.key, "equals", value)

    def not_equals(self, value: Any) -> Condition:
        return Condition(self.key, "not_equals", value)

    def is_in(self, values: Sequence[Any]) -> Condition:
        return Condition(self.key, "in", values)

    def not_in(self, values: Sequence[Any]) -> Condition:
        return Condition(self.key, "not_in", values)

    def __repr__(self) -> str:
        return f"Ctx({self.key!r})"


def check_conditions(task_id: str, trigger_rule: object, when: object, dependencies: Sequence[str]) -> None:
    """Refuse, at decoration, a trigger rule or conditions that cannot mean anything, with the fix."""
    if trigger_rule not in TRIGGER_RULES:
        raise WorkflowDefinitionError(
            f"Task {task_id!r}: trigger_rule {trigger_rule!r} is not one of {', '.join(TRIGGER_RULES)}; "
            "all_succeeded (the default) runs it when every dependency completed, any_failed when one failed, "
            "all_done when every dependency ended.",
            task=task_id,
        )
    if trigger_rule == "any_failed" and not dependencies:
        raise WorkflowDefinitionError(
            f"Task {task_id!r}: trigger_rule 'any_failed' needs dependencies (it runs when one of them failed); "
            "list the tasks it watches in dependencies=[...].",
            task=task_id,
        )
    if isinstance(when, (str, bytes, Mapping, Condition)) or callable(when) or not isinstance(when, Iterable):
        raise WorkflowDefinitionError(
            f"Task {task_id!r}: when= takes a list of conditions, not {when!r}; {_HELP}.", task=task_id
        )
    for c in when:
        if not isinstance(c, Condition):
            what = "a function" if callable(c) else repr(c)
            raise WorkflowDefinitionError(
                f"Task {task_id!r}: when=[...] holds {what}; conditions are data the manifest records, not code: "
                f"{_HELP}.",
                task=task_id,
            )


def rule_text(trigger_rule: str) -> str:
    """What a trigger rule means, for ``inspect``."""
    return {
        "all_succeeded": "runs when every dependency completed",
        "any_failed": "runs when a dependency failed",
        "all_done": "runs when every dependency ended, however",
    }.get(trigger_rule, trigger_rule)
