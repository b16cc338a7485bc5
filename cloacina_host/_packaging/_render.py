"""Showing a manifest: the ``inspect`` text (rich), and the DAG as Mermaid or Graphviz dot."""

from __future__ import annotations

import json
from collections.abc import Iterator

from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from cloacina_workflow import RetryPolicy

from ._manifest import Manifest, ManifestTask, ManifestWorkflow


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


def chains(wf: ManifestWorkflow) -> list[list[str]]:
    """Every path from a root task to a leaf task, in order: ``collect_data → process_data → ...``."""
    dependents: dict[str, list[str]] = {t.id: [] for t in wf.tasks}
    for t in wf.tasks:
        for dep in t.dependencies:
            dependents[dep].append(t.id)
    roots = [t.id for t in wf.tasks if not t.dependencies]

    def walk(tid: str) -> Iterator[list[str]]:
        if not dependents[tid]:
            yield [tid]
            return
        for nxt in dependents[tid]:
            for rest in walk(nxt):
                yield [tid, *rest]

    paths: list[list[str]] = []
    for root in roots:
        for path in walk(root):
            paths.append(path)
            if len(paths) >= 20:
                return paths
    return paths


def task_tree(wf: ManifestWorkflow) -> Tree:
    """Tasks as a tree from the roots; a task reached again (it has several dependencies) is marked."""
    by_id = {t.id: t for t in wf.tasks}
    dependents: dict[str, list[str]] = {t.id: [] for t in wf.tasks}
    for t in wf.tasks:
        for dep in t.dependencies:
            dependents[dep].append(t.id)
    tree = Tree(Text(f"{wf.key}", style="bold"))
    shown: set[str] = set()

    def label(task: ManifestTask) -> Text:
        text = Text(task.id, style="cyan")
        text.append(f"  ({retry_text(task.retry, task.timeout_s)})", style="dim")
        if task.docstring:
            text.append(f"  {task.docstring.splitlines()[0]}", style="italic")
        return text

    def add(node: Tree, tid: str) -> None:
        if tid in shown:
            node.add(Text(f"{tid} (also after {', '.join(by_id[tid].dependencies)}; shown above)", style="dim"))
            return
        shown.add(tid)
        child = node.add(label(by_id[tid]))
        for nxt in dependents[tid]:
            add(child, nxt)

    for t in wf.tasks:
        if not t.dependencies:
            add(tree, t.id)
    return tree


def _platform_text(manifest: Manifest) -> str:
    wheel = manifest.wheel
    tags = ", ".join(str(t) for t in wheel.tags)
    if wheel.pure:
        return f"{tags} (pure Python: any platform, any architecture)"
    platforms = sorted({t.platform for t in wheel.tags})
    pythons = sorted({t.python for t in wheel.tags})
    return f"{tags} (compiled: platform {', '.join(platforms)}; python {', '.join(pythons)})"


class _Rows:
    """Label/value lines with aligned values and no trailing padding."""

    def __init__(self, indent: str = "") -> None:
        self.indent = indent
        self.rows: list[tuple[str, str]] = []

    def add_row(self, label: str, value: str) -> None:
        self.rows.append((label.strip(), value))

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
            head.append(f" - {wf.description}", style="")
        parts.append(head)
        info = _Rows("  ")
        info.add_row("  Author", wf.author or "-")
        info.add_row("  Entry point", str(wf.entry_point))
        info.add_row("  Fingerprint", wf.fingerprint)
        info.add_row("  Tasks", str(len(wf.tasks)))
        for path in chains(wf):
            info.add_row("  Flow", " → ".join(path))
        parts.append(info.text())
        parts.append(task_tree(wf))
    return Group(*parts)


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;")


def mermaid(manifest: Manifest) -> str:
    lines = ["flowchart LR"]
    for w, wf in enumerate(manifest.workflows):
        lines.append(f'  subgraph w{w}["{_mermaid_label(wf.key)}"]')
        index = {t.id: f"w{w}t{i}" for i, t in enumerate(wf.tasks)}
        for t in wf.tasks:
            lines.append(f'    {index[t.id]}["{_mermaid_label(t.id)}"]')
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
        lines.append(f"    label={_dot_id(wf.key)};")
        for t in wf.tasks:
            lines.append(f"    {_dot_id(wf.key + '::' + t.id)} [label={_dot_id(t.id)}];")
        for t in wf.tasks:
            for dep in t.dependencies:
                lines.append(f"    {_dot_id(wf.key + '::' + dep)} -> {_dot_id(wf.key + '::' + t.id)};")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
