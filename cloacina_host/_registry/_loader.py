"""Loading an installed package in a fresh worker, with a time limit, and checking it against its manifest.

The registry does this before a version becomes active (on ``register`` and on ``activate``): the
worker is the same program that later runs the package's tasks (``_worker_main.py``), started just
for the check and stopped after it, so what is checked is what will run. Like every worker it runs
in a session of its own, and everything it started ends with it; what the package prints while
loading is captured, its last ``TAIL_BYTES`` kept for the message when loading fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._packaging import Manifest
from .._packaging._manifest import MANIFEST_NAME, ManifestTask
from .._sandbox import quote_output, run_sync
from .._workers import Worker, WorkerLoadError
from ._errors import RegistryError


def load_in_fresh_worker(package_dir: Path, timeout_s: float) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Start a worker on ``package_dir``, wait for its entry points to load, stop it; what it found.

    Runs the worker on an event loop of its own in a helper thread, so it works from plain code and
    from inside a running loop alike. The package's import-time output is captured (its tail kept).
    """

    async def probe() -> tuple[dict[str, dict[str, Any]], list[str]]:
        worker = Worker(package_dir, capture_output=True)
        try:
            await worker.start(timeout_s)
            return worker.workflows, worker.problems
        finally:
            await worker.stop()

    return run_sync(probe())


def check_loads(package_dir: Path, manifest: Manifest, *, source: str, timeout_s: float) -> None:
    """Load the package in a fresh worker; ``RegistryError`` unless it gives exactly the manifest's workflows."""
    name = f"{manifest.package.name} {manifest.package.version}"

    def fail(message: str) -> RegistryError:
        return RegistryError(f"{source}: {name} {message.rstrip('.')}.")

    try:
        loaded, problems = load_in_fresh_worker(package_dir, timeout_s)
    except WorkerLoadError as exc:
        if exc.kind == "timeout":
            raise fail(
                f"did not finish loading its entry points within {timeout_s:g} s (the limit) in a fresh worker; "
                "an import that hangs or does heavy work? Make importing the package cheap "
                "(or raise --load-timeout)"
            ) from exc
        raise fail(f"could not be loaded in a fresh worker: {exc}.{quote_output(exc.output)}") from exc
    if problems:
        raise fail(f"failed to load in a fresh worker: {'; '.join(problems)}")
    declared = {wf.key: wf for wf in manifest.workflows}
    missing = sorted(set(declared) - set(loaded))
    extra = sorted(set(loaded) - set(declared))
    if missing:
        raise fail(f"does not give workflow(s) {', '.join(missing)} when loaded, yet {MANIFEST_NAME} lists them")
    if extra:
        raise fail(f"gives workflow(s) {', '.join(extra)} when loaded, which {MANIFEST_NAME} does not list")
    for key, wf in declared.items():
        got = loaded[key]
        if got.get("entry_point") != wf.entry_point.name:
            raise fail(
                f"workflow {key!r} comes from entry point {got.get('entry_point')!r}, not {wf.entry_point.name!r}"
            )
        tasks = tuple(ManifestTask.model_validate(t) for t in got["tasks"])
        if tasks != wf.tasks:
            raise fail(f"workflow {key!r}: the tasks that load differ from the tasks in {MANIFEST_NAME}")
        if got["fingerprint"] != wf.fingerprint:
            raise fail(
                f"workflow {key!r} has fingerprint {got['fingerprint']} when loaded, but {MANIFEST_NAME} declares "
                f"{wf.fingerprint}: the manifest does not describe this code; repackage it"
            )
