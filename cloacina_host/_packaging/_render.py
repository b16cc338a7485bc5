"""Showing a manifest: the ``inspect`` text (rich), and the DAG as Mermaid or Graphviz dot."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from cloacina_workflow import RetryPolicy, Schedule
from cloacina_workflow._conditions import rule_text

from ._graph import Graph, check_graph
from ._manifest import Manifest, ManifestTask, ManifestWorkflow, WheelTag
from ._platform import archive_needs, misfit, wheel_tags
from ._text import safe_text

if TYPE_CHECKING:
    from packaging.tags import Tag

__all__ = ["chains", "dot", "inspect_renderable", "mermaid", "retry_text", "safe_text", "task_tree"]


def retry_text(policy: RetryPolicy, timeout_s: float | None = None) -> str:
    if policy.attempts == 0:
        text = "no retries"
    else:
        text = (
            f"{policy.attempts} {'retry' if policy.attempts == 1 else 'retries'}, {policy.backoff} backoff "
            f"{policy.delay_ms}..{policy.max_delay_ms} ms{', jitter' if policy.jitter else ''}, "
            f"on {policy.condition} errors"
        )
    if timeout_s is not None:
        text += f", timeout {timeout_s:g} s"
    return text


#: Most root-to-leaf paths shown as "Flow" lines, and most tasks named in one of them.
MAX_FLOWS = 20
FLOW_ENDS = 6
#: Deepest workflow drawn as a tree; deeper ones are listed flat, each task with its dependencies.
MAX_TREE_DEPTH = 24


def _flow_text(path: list[str]) -> str:
    if len(path) <= 2 * FLOW_ENDS:
        return " → ".join(path)
    hidden = len(path) - 2 * FLOW_ENDS
    return " → ".join([*path[:FLOW_ENDS], f"… ({hidden:,} more)", *path[-FLOW_ENDS:]])


def chains(wf: ManifestWorkflow) -> list[list[str]]:
    """The first root-to-leaf paths, in order: ``collect_data → process_data → ...`` (iterative)."""
    return check_graph(wf.tasks).paths(MAX_FLOWS)


def condition_text(task: ManifestTask) -> str | None:
    """When ``task`` runs, if it says: ``runs when a dependency failed; if context 'mode' equals "full"``."""
    parts = [rule_text(task.trigger_rule)] if task.trigger_rule != "all_succeeded" else []
    if task.when:
        parts.append("if " + " and ".join(c.describe() for c in task.when))
    return "; ".join(parts) or None


def _label(task: ManifestTask) -> Text:
    text = Text(task.id, style="cyan")
    text.append(f"  ({retry_text(task.retry, task.timeout_s)})", style="dim")
    when = condition_text(task)
    if when:
        text.append(f"  [{safe_text(when)}]", style="yellow")
    if task.docstring and task.docstring.strip():
        text.append(f"  {safe_text(task.docstring.strip().splitlines()[0])}", style="italic")
    return text


def task_tree(wf: ManifestWorkflow, graph: Graph | None = None) -> Tree:
    """Tasks as a tree from the roots; a task reached again (it has several dependencies) is marked.

    Built without recursion; a workflow deeper than ``MAX_TREE_DEPTH`` is listed flat instead, each
    task under the root with the tasks it runs after, so the output stays linear in the tasks.
    """
    graph = graph or check_graph(wf.tasks)
    by_id = {t.id: t for t in wf.tasks}
    tree = Tree(Text(wf.key, style="bold"))
    if graph.depth() > MAX_TREE_DEPTH:
        for tid in graph.order:
            label = _label(by_id[tid])
            deps = graph.dependencies[tid]
            if deps:
                label.append(f"  after {', '.join(deps)}", style="dim")
            tree.add(label)
        return tree
    shown: set[str] = set()
    stack: list[tuple[Tree, str]] = [(tree, tid) for tid in reversed(graph.roots)]
    while stack:
        node, tid = stack.pop()
        if tid in shown:
            node.add(Text(f"{tid} (also after {', '.join(graph.dependencies[tid])}; shown above)", style="dim"))
            continue
        shown.add(tid)
        child = node.add(_label(by_id[tid]))
        stack.extend((child, nxt) for nxt in reversed(graph.dependents[tid]))
    return tree


def _platform_text(manifest: Manifest) -> str:
    tags = {manifest.wheel.filename: [_tag(t) for t in manifest.wheel.tags]}
    for bundled in manifest.bundled_wheels:
        try:
            tags[bundled.filename] = list(wheel_tags(bundled.filename))
        except ValueError:
            continue  # not a wheel name: the reader refuses such archives
    text = archive_needs(tags).text()
    problems = [m for name, t in tags.items() if (m := misfit(name, t))]
    if problems:
        text += f"; this host cannot load it: {problems[0]}"
    return text


def _tag(tag: WheelTag) -> Tag:
    from packaging.tags import Tag

    return Tag(tag.python, tag.abi, tag.platform)


class _Rows:
    """Label/value lines with aligned values and no trailing padding."""

    def __init__(self, indent: str = "") -> None:
        self.indent = indent
        self.rows: list[tuple[str, str]] = []

    def add_row(self, label: str, value: str) -> None:
        self.rows.append((label.strip(), safe_text(value)))

    def text(self) -> Text:
        width = max(len(label) for label, _ in self.rows) + 2
        out = Text()
        for i, (label, value) in enumerate(self.rows):
            if i:
                out.append("\n")
            out.append(self.indent + label.ljust(width), style="bold")
            out.append(value)
        return out


def inspect_renderable(manifest: Manifest, *, archive_size: int | None = None) -> RenderableType:
    pkg = manifest.package
    meta = _Rows()
    meta.add_row("Package", f"{pkg.name} {pkg.version}")
    meta.add_row("Description", pkg.summary or "-")
    meta.add_row("Author", pkg.author or "-")
    meta.add_row("License", pkg.license or "-")
    meta.add_row("Requires", f"python {pkg.requires_python or 'any'}; " + (", ".join(pkg.requirements) or "nothing"))
    wheel = manifest.wheel
    meta.add_row("Wheel", f"{wheel.filename} ({wheel.size:,} bytes, sha256 {wheel.sha256[:16]}...)")
    meta.add_row("Platform", _platform_text(manifest))
    if manifest.bundled_wheels:
        meta.add_row("Bundled", ", ".join(b.filename for b in manifest.bundled_wheels))
    meta.add_row(
        "Built with",
        f"{manifest.builder.name} {manifest.builder.version}, cloacina-workflow {manifest.cloacina_workflow_version}, "
        f"at {manifest.created_at.isoformat().replace('+00:00', 'Z')}",
    )
    meta.add_row(
        "Format",
        f"manifest format_version {manifest.format_version}"
        + (f", archive {archive_size:,} bytes" if archive_size else ""),
    )
    parts: list[RenderableType] = [meta.text()]
    for wf in manifest.workflows:
        parts.append(Text(""))
        head = Text(f"Workflow {wf.key}", style="bold")
        if wf.description:
            head.append(f" - {safe_text(wf.description)}", style="")
        parts.append(head)
        info = _Rows("  ")
        info.add_row("  Author", wf.author or "-")
        info.add_row("  Entry point", str(wf.entry_point))
        info.add_row("  Fingerprint", wf.fingerprint)
        info.add_row("  Tasks", str(len(wf.tasks)))
        graph = check_graph(wf.tasks)
        for path in graph.paths(MAX_FLOWS):
            info.add_row("  Flow", _flow_text(path))
        for schedule in wf.schedules:
            info.add_row("  Schedule", schedule_text(schedule))
        for t in wf.triggers:
            info.add_row("  Trigger", f"{t.name}: polled every {t.poll_interval_s:g} s (timeout {t.timeout_s:g} s)")
        if wf.input_schema is not None:
            info.add_row("  Input", input_text(wf.input_schema))
        parts.append(info.text())
        parts.append(task_tree(wf, graph))
    return Group(*parts)


def input_text(schema: Mapping[str, Any]) -> str:
    """The input model in one line: its title and each field with its JSON type, required ones marked."""
    required = set(schema.get("required", ()))
    fields = []
    for name, prop in dict(schema.get("properties", {})).items():
        kind = prop.get("format") or prop.get("type") or ("one of" if "anyOf" in prop else "any")
        fields.append(f"{name}: {kind}" + ("" if name in required else " (optional)"))
    return f"{schema.get('title', 'input')} {{{', '.join(fields)}}}; JSON Schema: {json.dumps(schema, sort_keys=True)}"


def schedule_text(schedule: Schedule) -> str:
    """``NAME: 'CRON' in TZ (in words), catchup skip, context {...}``: one line of ``inspect``."""
    from cronsim import CronSim

    try:
        words = CronSim(schedule.cron, datetime(2000, 1, 1, tzinfo=timezone.utc)).explain()
    except Exception:  # noqa: BLE001  # explain() is a nicety; the expression itself was checked
        words = ""
    catchup = "skip" if schedule.catchup == "skip" else f"all (at most {schedule.max_catchup})"
    text = f"{schedule.name}: {schedule.cron!r} in {schedule.timezone}" + (f" ({words})" if words else "")
    text += f", catchup {catchup}"
    if schedule.context:
        text += f", context {json.dumps(schedule.context, sort_keys=True)}"
    return text


def _graph_title(wf: ManifestWorkflow) -> str:
    """The workflow's key, and its schedules when it has any (``--graph`` shows them in the title)."""
    parts = []
    if wf.schedules:
        parts.append("schedules " + "; ".join(f"{s.name}: {s.cron} {s.timezone}" for s in wf.schedules))
    if wf.triggers:
        parts.append("triggers " + ", ".join(t.name for t in wf.triggers))
    return f"{wf.key} ({'; '.join(parts)})" if parts else wf.key


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;")


def _node_label(task: ManifestTask) -> str:
    """A task's id, with when it runs if it says (a trigger rule, conditions)."""
    when = condition_text(task)
    return task.id if when is None else f"{task.id} ({when})"


def mermaid(manifest: Manifest) -> str:
    lines = ["flowchart LR"]
    for w, wf in enumerate(manifest.workflows):
        lines.append(f'  subgraph w{w}["{_mermaid_label(_graph_title(wf))}"]')
        index = {t.id: f"w{w}t{i}" for i, t in enumerate(wf.tasks)}
        for t in wf.tasks:
            lines.append(f'    {index[t.id]}["{_mermaid_label(_node_label(t))}"]')
        for t in wf.tasks:
            for dep in t.dependencies:
                lines.append(f"    {index[dep]} --> {index[t.id]}")
        lines.append("  end")
    return "\n".join(lines) + "\n"


def _dot_id(text: str) -> str:
    return json.dumps(text)  # a double-quoted string with \\ and \" escaped: valid dot ID


def dot(manifest: Manifest) -> str:
    lines = [f"digraph {_dot_id(manifest.package.name)} {{", "  rankdir=LR;", "  node [shape=box];"]
    for w, wf in enumerate(manifest.workflows):
        lines.append(f"  subgraph cluster_{w} {{")
        lines.append(f"    label={_dot_id(_graph_title(wf))};")
        for t in wf.tasks:
            lines.append(f"    {_dot_id(wf.key + '::' + t.id)} [label={_dot_id(_node_label(t))}];")
        for t in wf.tasks:
            for dep in t.dependencies:
                lines.append(f"    {_dot_id(wf.key + '::' + dep)} -> {_dot_id(wf.key + '::' + t.id)};")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
