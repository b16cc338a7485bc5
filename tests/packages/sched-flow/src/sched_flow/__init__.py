"""Schedule tests: one workflow whose schedules depend on the version.

1.0.0: ``every_minute`` (``* * * * *``, context ``{"from": "every_minute"}``) and ``nightly``
(``0 3 * * *`` in Europe/Berlin). 2.0.0: ``every_minute`` kept with a new context, ``nightly``
dropped, ``hourly`` (``0 * * * *``, catchup ``all``) added. The task records the version it ran and the
context's ``from``.
"""

from __future__ import annotations

from cloacina_workflow import Context, Schedule, task, workflow

VERSION = "1.0.0"

if VERSION == "1.0.0":
    SCHEDULES = [
        Schedule("* * * * *", name="every_minute", context={"from": "every_minute"}),
        Schedule("0 3 * * *", timezone="Europe/Berlin", name="nightly"),
    ]
else:
    SCHEDULES = [
        Schedule("* * * * *", name="every_minute", context={"from": "every_minute v2"}),
        Schedule("0 * * * *", name="hourly", catchup="all", max_catchup=5),
    ]


@workflow(name="sched_flow", package="sched_flow", description="Runs on a schedule", schedules=SCHEDULES)
class sched_flow:
    @task(id="tick")
    def tick(context: Context) -> None:
        context.set("version", VERSION)
        context.set("ran_from", context.get("from"))
