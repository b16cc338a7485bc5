"""``cloacina-ctl new NAME``: a workflow package project that passes its own tests and packages as is."""

from __future__ import annotations

import keyword
import re
import sys
from pathlib import Path

from ._errors import PackagingError

_PROJECT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]*[A-Za-z0-9]|[A-Za-z]")

_PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = "{name}"
version = "0.1.0"
description = "{name}: a Cloacina workflow package"
readme = "README.md"
requires-python = ">=3.10"
authors = [{{ name = "{author}" }}]
# Only the light authoring kit: the host provides the engine, the database and the packager.
dependencies = ["cloacina-workflow>={kit}"]

# How the host finds the workflow: one entry point per Workflow object.
[project.entry-points."cloacina.workflows"]
{module} = "{module}:{module}"

[dependency-groups]
test = ["pytest>=8"]

[tool.hatch.build.targets.wheel]
packages = ["src/{module}"]

[tool.pytest.ini_options]
pythonpath = ["src"]
testpaths = ["tests"]
"""

_MODULE = '''\
"""{name}: a Cloacina workflow package.

Package it with ``cloacina-ctl package . -o {name}.cloacina`` and look inside with
``cloacina-ctl inspect {name}.cloacina``.
"""

from __future__ import annotations

from cloacina_workflow import Context, TaskError, task, workflow

__all__ = ["{module}"]


@workflow(name="{module}", package="{module}", author="{author}")
class {module}:
    """Extract records, transform them, and load a summary.

    Each task reads what the tasks it depends on wrote into the context.
    """

    @task(id="extract", dependencies=[], retry_attempts=2)
    async def extract(context: Context) -> None:
        """Collect the input records."""
        context.insert("records", [{{"id": i, "value": i * 10}} for i in range(1, 6)])

    @task(id="transform", dependencies=["extract"], retry_attempts=1)
    def transform(context: Context) -> None:
        """Keep the records whose value is at least ``min_value`` (from the initial context, default 20)."""
        records = context.get("records")
        if not isinstance(records, list):
            raise TaskError.ValidationFailed(message="Missing records: extract must run first")
        min_value = context.get("min_value", 20)
        context.insert("kept", [r for r in records if isinstance(r, dict) and r["value"] >= min_value])

    @task(id="load", dependencies=["transform"])
    async def load(context: Context) -> None:
        """Write a summary of what was kept."""
        kept = context.get("kept")
        if not isinstance(kept, list):
            raise TaskError.ValidationFailed(message="Missing kept: transform must run first")
        context.insert("summary", {{"count": len(kept), "total": sum(r["value"] for r in kept)}})
'''

_TESTS = '''\
"""Tests of the {module} workflow: each task on its own, then the whole workflow in memory."""

from __future__ import annotations

import asyncio

import pytest
from cloacina_workflow import Context, TaskError
from cloacina_workflow.testing import run_workflow

from {module} import {module}


def test_tasks_one_by_one() -> None:
    context = Context()
    asyncio.run({module}.extract(context))
    {module}.transform(context)
    asyncio.run({module}.load(context))
    assert context.get("summary") == {{"count": 4, "total": 140}}


def test_transform_needs_records() -> None:
    with pytest.raises(TaskError):
        {module}.transform(Context())


def test_whole_workflow_in_memory() -> None:
    result = run_workflow({module}, {{"min_value": 40}})
    assert result.ok, result.tasks
    assert list(result.tasks) == ["extract", "transform", "load"]
    assert result.context.get("summary") == {{"count": 2, "total": 90}}
'''

_README = """\
# {name}

A Cloacina workflow package: the workflow `{module}` (extract → transform → load).

```console
pip install pytest -e .          # or: pip install cloacina-workflow pytest
pytest                           # the package's own tests, in memory
cloacina-ctl package . -o {name}.cloacina
cloacina-ctl inspect {name}.cloacina
cloacina-ctl validate {name}.cloacina
```
"""

_GITIGNORE = "__pycache__/\n*.egg-info/\ndist/\nbuild/\n*.cloacina\n"


def _kit_floor() -> str:
    from cloacina_workflow import __version__

    parts = __version__.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]) else "0.1"


def module_name(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name).replace("-", "_")


def scaffold(name: str, directory: Path | None = None, *, author: str = "Your Name") -> list[Path]:
    """Create the project ``name`` in ``directory`` (default ``./NAME``); return the files written."""
    if not _PROJECT_NAME.fullmatch(name):
        raise PackagingError(
            f"{name!r} is not a valid project name: use letters, digits, '-', '_' and '.', starting with a "
            "letter and ending with a letter or digit (e.g. my-etl)."
        )
    module = module_name(name)
    if keyword.iskeyword(module) or module in sys.stdlib_module_names:
        raise PackagingError(
            f"Project name {name!r} gives the module name {module!r}, which is a Python keyword or a standard "
            "library module; choose another name (e.g. my-{name})."
        )
    if '"' in author or "\\" in author or "\n" in author:
        raise PackagingError(f"Author {author!r} may not contain quotes, backslashes or newlines.")
    target = (directory if directory is not None else Path(name)).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PackagingError(f"{target} already exists and is not empty; choose another name or directory.")
    values = {"name": name, "module": module, "author": author, "kit": _kit_floor()}
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        ".gitignore": _GITIGNORE,
        f"src/{module}/__init__.py": _MODULE,
        f"src/{module}/py.typed": "",
        f"tests/test_{module}.py": _TESTS,
    }
    written = []
    for relative, template in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
        written.append(path)
    return written
