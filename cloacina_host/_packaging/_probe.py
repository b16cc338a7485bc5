"""The one loader: a package directory loaded in a fresh worker, and what it gives checked against a manifest.

``validate``, ``register``, ``activate`` (and ``package``, reading the task graph) all load a
package this way. ``probe`` starts the worker (``_worker_main.py``), the same program that later
runs the package's tasks, so what is checked is what will run: it loads every ``cloacina.workflows``
entry point of the directory through a ``pluggy.PluginManager("cloacina")`` with ``check_pending``,
in a session of its own (``_sandbox``: everything it started ends with it, its output captured with
only its end kept), within a time limit; the worker is stopped once it has said what it loaded.
``compare`` holds that against a ``Manifest``: the same workflows, entry points, tasks and
fingerprints, one message per mismatch.

Every message has the package as its subject (``NAME VERSION ...``); each caller puts its own
prefix and error class around it through ``fail`` (``RegistryError``, ``ArchiveError``,
``PackagingError``), so ``validate`` and ``register`` refuse a package in the same words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloacina_workflow import Schedule, TriggerSpec

from .._sandbox import quote_output, run_sync
from .._workers import Worker, WorkerLoadError
from ._manifest import MANIFEST_NAME, Manifest, ManifestTask

#: Builds the caller's exception from a message whose subject is the package (``NAME VERSION ...``).
Fail = Callable[[str], Exception]


@dataclass(frozen=True)
class Loaded:
    """What a fresh worker loaded from a package directory.

    ``workflows``: by ``package::workflow``, each ``Workflow.describe()`` with ``fingerprint``,
    ``distribution`` and ``entry_point``; ``problems``: one line per entry point that failed (an
    import error, a misspelt hook refused by ``check_pending``, a hook that raised...).
    """

    workflows: dict[str, dict[str, Any]]
    problems: tuple[str, ...]
    #: the ``cloacina-workflow`` version it was loaded with (the host's: a worker never imports a package's)
    kit_version: str


def probe(package_dir: Path, *, subject: str, timeout_s: float, fail: Fail) -> Loaded:
    """Load ``package_dir`` in a fresh worker and stop it; ``fail(...)`` is raised unless it loaded cleanly.

    Refused: loading that takes longer than ``timeout_s``, a worker that exits while loading, and
    any problem an entry point had. Works from plain code and inside a running event loop.
    """

    from cloacina_workflow import __version__ as kit_version  # the worker imports the host's own kit

    async def load() -> Loaded:
        worker = Worker(package_dir, capture_output=True)
        try:
            await worker.start(timeout_s)
            return Loaded(dict(worker.workflows), tuple(worker.problems), kit_version)
        finally:
            await worker.stop()

    try:
        loaded = run_sync(load())
    except WorkerLoadError as exc:
        if exc.kind == "timeout":
            raise fail(
                f"{subject} did not finish loading its entry points within {timeout_s:g} s (the limit) in a fresh "
                "worker; an import that hangs or does heavy work? Make importing the package cheap "
                "(or raise --load-timeout)"
            ) from exc
        raise fail(f"{subject} could not be loaded in a fresh worker: {exc}.{quote_output(exc.output)}") from exc
    if loaded.problems:
        raise fail(f"{subject} failed to load in a fresh worker: {'; '.join(loaded.problems)}")
    return loaded


def compare(loaded: Loaded, manifest: Manifest, *, fail: Fail) -> None:
    """``fail(...)`` is raised unless ``loaded`` gives exactly the manifest's workflows, tasks and fingerprints."""
    subject = f"{manifest.package.name} {manifest.package.version}"
    declared = {wf.key: wf for wf in manifest.workflows}
    missing = sorted(set(declared) - set(loaded.workflows))
    extra = sorted(set(loaded.workflows) - set(declared))
    if missing:
        raise fail(
            f"{subject} does not give workflow(s) {', '.join(missing)} when loaded, yet {MANIFEST_NAME} lists them"
        )
    if extra:
        raise fail(f"{subject} gives workflow(s) {', '.join(extra)} when loaded, which {MANIFEST_NAME} does not list")
    for key, wf in declared.items():
        got = loaded.workflows[key]
        if got.get("entry_point") != wf.entry_point.name:
            raise fail(
                f"{subject} workflow {key!r} comes from entry point {got.get('entry_point')!r}, "
                f"not {wf.entry_point.name!r}"
            )
        tasks = tuple(ManifestTask.model_validate(t) for t in got["tasks"])
        if tasks != wf.tasks:
            raise fail(f"{subject} workflow {key!r}: the tasks that load differ from the tasks in {MANIFEST_NAME}")
        if tuple(Schedule.model_validate(s) for s in got.get("schedules", ())) != wf.schedules:
            raise fail(
                f"{subject} workflow {key!r}: the schedules that load differ from the schedules in {MANIFEST_NAME}; "
                "repackage it"
            )
        if tuple(TriggerSpec.model_validate(t) for t in got.get("triggers", ())) != wf.triggers:
            raise fail(
                f"{subject} workflow {key!r}: the triggers that load differ from the triggers in {MANIFEST_NAME}; "
                "repackage it"
            )
        if got.get("input_schema") != wf.input_schema:
            raise fail(
                f"{subject} workflow {key!r}: the input schema that loads differs from the one in {MANIFEST_NAME}; "
                "repackage it"
            )
        if got["fingerprint"] != wf.fingerprint:
            raise fail(
                f"{subject} workflow {key!r} has fingerprint {got['fingerprint']} when loaded, but {MANIFEST_NAME} "
                f"declares {wf.fingerprint}: the manifest does not describe this code; repackage it"
            )


def check_loads(package_dir: Path, manifest: Manifest, *, timeout_s: float, fail: Fail) -> Loaded:
    """``probe`` then ``compare``: what ``validate``, ``register`` and ``activate`` run on a package."""
    subject = f"{manifest.package.name} {manifest.package.version}"
    loaded = probe(package_dir, subject=subject, timeout_s=timeout_s, fail=fail)
    compare(loaded, manifest, fail=fail)
    return loaded
