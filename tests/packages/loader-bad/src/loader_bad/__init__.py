"""One-loader tests: a plugin module offering two workflows through its ``cloacina_workflows`` hook,
which goes bad at load time as ``$LOADER_BAD`` says (unset when it is packaged, so its manifest is
the good one; set when it is validated, registered or activated):

- ``misspelt-hook``: the module also carries ``@hookimpl cloacina_task_startd`` (a misspelt
  ``cloacina_task_started``), which only ``pm.check_pending()`` catches;
- ``import-error``: importing the module raises ``RuntimeError``;
- ``missing-workflow``: the hook returns ``first`` only;
- ``fingerprint``: ``second``'s task does something else (same graph, other code);
- ``not-a-workflow``: the hook also returns a string.
"""

from __future__ import annotations

import os

from cloacina_workflow import Context, hookimpl, task, workflow

_MODE = os.environ.get("LOADER_BAD", "")

if _MODE == "import-error":
    raise RuntimeError("loader_bad refuses to import")


@workflow(name="first", package="loader_bad")
class first:
    @task(id="one")
    def one(context: Context) -> None:
        context.set("one", 1)


if _MODE == "fingerprint":

    @workflow(name="second", package="loader_bad")
    class second:
        @task(id="two")
        def two(context: Context) -> None:
            context.set("two", "changed")

else:

    @workflow(name="second", package="loader_bad")
    class second:
        @task(id="two")
        def two(context: Context) -> None:
            context.set("two", 2)


@hookimpl
def cloacina_workflows() -> list[object]:
    if _MODE == "missing-workflow":
        return [first]
    if _MODE == "not-a-workflow":
        return [first, second, "second_draft"]
    return [first, second]


if _MODE == "misspelt-hook":

    @hookimpl
    def cloacina_task_startd(execution_id: str, workflow: str, task_id: str, attempt: int) -> None:
        """Misspelt: the hook is ``cloacina_task_started``."""
