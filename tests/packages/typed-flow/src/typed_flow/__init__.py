"""A workflow with a typed input (a pydantic model) and a branch that runs only for ``mode == "full"``."""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from cloacina_workflow import Context, Ctx, task, workflow


class NightlyInput(BaseModel):
    """What one night's report needs."""

    model_config = ConfigDict(extra="allow")  # a context may carry more keys

    day: datetime.date
    mode: Literal["quick", "full"] = "quick"

    @field_validator("day")
    @classmethod
    def _not_in_the_future(cls, value: datetime.date) -> datetime.date:  # beyond what JSON Schema says
        if value.year > 2100:
            raise ValueError("the day is too far in the future")
        return value


@workflow(name="nightly_report", package="typed_flow", input=NightlyInput)
class nightly_report:
    @task
    def collect(ctx: Context) -> None:
        ctx.set("rows", 3)

    @task(dependencies=["collect"], when=[Ctx("mode").equals("full")])
    def full_report(ctx: Context) -> None:
        ctx.set("full", True)

    @task(dependencies=["full_report"], trigger_rule="all_done")
    def publish(ctx: Context) -> None:
        ctx.set("published", True)
