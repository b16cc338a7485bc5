"""``cloacina-ctl run``: run a workflow and show its result."""

from __future__ import annotations

import click
from cloacina_workflow.testing import run_workflow

from ._common import Settings, global_options, parse_context, pass_settings, print_json


@click.command("run")
@click.argument("workflow")
@click.option("--context", "context_arg", metavar="JSON|@FILE", help="Initial context: a JSON object, or @path to a JSON file.")
@global_options
@pass_settings
def run_command(settings: Settings, workflow: str, context_arg: str | None) -> None:
    """Run WORKFLOW (name, PACKAGE::NAME or TENANT::PACKAGE::NAME) and print its final context."""
    context = parse_context(context_arg)
    entry = settings.catalog().resolve(workflow)
    result = run_workflow(entry.workflow, context)
    if settings.json:
        print_json({
            "workflow": entry.namespace(settings.tenant),
            "status": result.status,
            "context": result.context.to_dict(),
            "tasks": {tid: {"status": o.status, "attempts": o.attempts, "duration_s": o.duration_s, "error": o.error}
                      for tid, o in result.tasks.items()},
        })
    else:
        for tid, o in result.tasks.items():
            settings.out.print(f"{tid}: {o.status} ({o.attempts} attempt(s), {o.duration_s * 1000:.0f} ms)"
                               + (f" — {o.error}" if o.error else ""))
        print_json(result.context.to_dict())
    if result.status != "completed":
        raise click.exceptions.Exit(1)
