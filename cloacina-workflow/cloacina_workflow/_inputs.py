"""A workflow's typed input: a pydantic model whose JSON Schema the manifest records.

``@workflow(..., input=Model)`` declares it; every way of starting an execution checks the initial
context against it before anything is stored (``check_input``), and a bad context is refused with
one message naming each field and the rule it breaks. The context itself is kept as given (JSON):
the model checks it, it does not convert it. pydantic is imported here only when a model is used.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import Any

from ._errors import InputError, WorkflowDefinitionError

__all__ = ["check_input", "input_schema", "problems_text"]

#: longest value a message shows
_SHOWN = 60


def input_schema(model: object, workflow: str) -> dict[str, Any]:
    """The JSON Schema of ``model`` (``model_json_schema()``), refusing what is not a pydantic model."""
    if not inspect.isclass(model) or not callable(getattr(model, "model_json_schema", None)):
        raise WorkflowDefinitionError(
            f"Workflow {workflow!r}: input={model!r} is not a pydantic model; give a class that subclasses "
            "pydantic.BaseModel, e.g. class NightlyInput(BaseModel): day: datetime.date",
            workflow=workflow,
        )
    try:
        schema = model.model_json_schema()  # type: ignore[attr-defined]
        json.dumps(schema)
    except Exception as exc:  # pydantic raises several kinds: one message for all
        raise WorkflowDefinitionError(
            f"Workflow {workflow!r}: the input model {model.__name__} has no JSON Schema ({exc}); "
            "use field types pydantic can describe in JSON Schema",
            workflow=workflow,
        ) from exc
    return dict(schema)


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def problems_text(errors: list[Any]) -> tuple[str, ...]:
    """pydantic's ``ValidationError.errors()`` as ``'field': rule (got value)`` texts."""
    found = []
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ())) or "(the context)"
        text = f"{where!r}: {str(e.get('msg', 'invalid')).rstrip('.')}"
        if e.get("type") != "missing" and "input" in e:
            text += f" (got {_shown(e['input'])})"
        found.append(text)
    return tuple(found)


def check_input(model: Any, workflow: str, context: Mapping[str, Any]) -> None:
    """Raise ``InputError`` unless ``context`` validates against ``model`` (a pydantic model class)."""
    from pydantic import ValidationError

    try:
        model.model_validate(dict(context))
    except ValidationError as exc:
        problems = problems_text(exc.errors())
        raise InputError(
            f"input of {workflow}: {'; '.join(problems)}. Give a context that fits its input model "
            f"{model.__name__} (`cloacina-ctl inspect` shows its JSON Schema).",
            workflow=workflow,
            problems=problems,
        ) from None
