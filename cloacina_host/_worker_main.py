"""The worker process: loads one installed package version and runs its tasks on request.

Started by ``_workers.WorkerPool`` as ``python path/to/_worker_main.py PACKAGE_DIR REPLY_FD`` (a
script, not ``-m``, so that nothing of the host is imported before the package's directory is in
place). Requests arrive as JSON lines on stdin; replies leave as JSON lines on the pipe REPLY_FD, so
that the tasks' own prints (stdout and stderr, inherited from the host) reach the host's output.

Import path: the standard library, then PACKAGE_DIR, then the host environment, so the package's
own (bundled) dependencies take precedence over the host's inside this process only.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloacina_workflow import Workflow


def _put_package_first(package_dir: str) -> None:
    """Insert ``package_dir`` after the standard library entries of ``sys.path``."""
    import sysconfig

    stdlib = {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}
    position = 0
    for i, entry in enumerate(sys.path):
        if entry in stdlib or entry.endswith(".zip") or entry.endswith("lib-dynload"):
            position = i + 1
    if package_dir in sys.path:
        sys.path.remove(package_dir)
    sys.path.insert(position, package_dir)


def main(argv: list[str]) -> int:
    package_dir = argv[0]
    # the script's own directory (cloacina_host/) must not shadow anything; the package dir goes
    # right after the standard library
    del sys.path[0]
    _put_package_first(package_dir)

    import asyncio
    import functools
    import json
    import os
    import threading
    import traceback
    from importlib import metadata

    reply_lock = threading.Lock()
    replies = os.fdopen(int(argv[1]), "w", buffering=1, encoding="utf-8")

    def reply(message: dict[str, object]) -> None:
        line = json.dumps(message, separators=(",", ":"))
        with reply_lock:
            replies.write(line + "\n")
            replies.flush()

    from cloacina_workflow import Context, TaskError

    workflows: dict[str, Workflow] = {}
    entry_points: dict[str, str] = {}
    problems: list[str] = []
    for dist in metadata.distributions(path=[package_dir]):
        dist_name = dist.metadata["Name"]
        default_package = dist_name.replace("-", "_").replace(".", "_").lower()
        for ep in dist.entry_points:
            if ep.group != "cloacina.workflows":
                continue
            try:
                plugin = ep.load()
                found = _collect(plugin)
            except Exception as exc:  # noqa: BLE001  # reported to the host, which decides
                problems.append(f"{dist_name}:{ep.name}: {type(exc).__name__}: {exc}")
                continue
            for wf in found:
                key = f"{wf.package or default_package}::{wf.name}"
                if key in workflows:
                    problems.append(f"{dist_name}:{ep.name}: workflow {key} is offered twice")
                workflows[key] = wf
                entry_points[key] = ep.name

    reply(
        {
            "op": "ready",
            "pid": os.getpid(),
            "problems": problems,
            "workflows": {
                key: {"fingerprint": wf.fingerprint(), "entry_point": entry_points[key], **wf.describe()}
                for key, wf in workflows.items()
            },
        }
    )

    async def run_one(request: dict[str, object]) -> None:
        rid = request["id"]
        key = str(request["workflow"])
        task_id = str(request["task"])
        try:
            wf = workflows[key]
            task = wf.tasks[task_id]
            context = Context(request["context"])  # type: ignore[arg-type]
            await task.run(context)
            reply({"id": rid, "ok": True, "context": context.to_dict()})
        except asyncio.CancelledError:
            reply({"id": rid, "ok": False, "cancelled": True, "error_type": "Cancelled", "message": "cancelled"})
        except BaseException as exc:  # noqa: BLE001  # every task failure goes back to the host
            transient = (
                type(exc).transient if isinstance(exc, TaskError) else isinstance(exc, (TimeoutError, ConnectionError))
            )
            reply(
                {
                    "id": rid,
                    "ok": False,
                    "error_type": type(exc).__qualname__,
                    "message": str(exc),
                    "traceback": "".join(traceback.format_exception(exc)),
                    "transient": transient,
                    "validation": isinstance(exc, TaskError.ValidationFailed),
                }
            )

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        running: dict[object, asyncio.Task[None]] = {}
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            request = json.loads(line)
            if request.get("op") == "cancel":
                pending = running.get(request["id"])
                if pending is not None:
                    pending.cancel()
                continue
            job = asyncio.ensure_future(run_one(request))
            running[request["id"]] = job
            job.add_done_callback(functools.partial(_forget, running, request["id"]))
        for job in list(running.values()):
            job.cancel()

    asyncio.run(serve())
    return 0


def _forget(running: dict[object, Any], rid: object, _job: object) -> None:
    running.pop(rid, None)


def _collect(plugin: object) -> list[Workflow]:
    """Workflows offered by an entry point's object: itself, or what its hook returns."""
    from cloacina_workflow import Workflow

    if isinstance(plugin, Workflow):
        return [plugin]
    hook = getattr(plugin, "cloacina_workflows", None)
    if hook is None:
        return []
    result = hook()
    items = list(result) if isinstance(result, (list, tuple)) else [result]
    return [item for item in items if isinstance(item, Workflow)]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
