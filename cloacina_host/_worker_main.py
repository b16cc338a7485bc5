"""The worker process: loads one installed package version and runs its tasks on request.

Started by ``_workers.Worker`` as ``python path/to/_worker_main.py PACKAGE_DIR REPLY_FD`` (a script,
not ``-m``, so that nothing of the host is imported before the package's directory is in place), in
a session of its own (``_sandbox``). Requests arrive as JSON lines on stdin, read by the event loop
itself (a full thread pool cannot stop them from being read; no thread hop between the pipe and the
loop); replies leave as JSON lines on the pipe REPLY_FD, one write each, so that the tasks' own
prints (stdout and stderr, inherited from the host) reach the host's output.

Loading (``collect``): every ``cloacina.workflows`` entry point of PACKAGE_DIR is registered with a
``pluggy.PluginManager("cloacina")`` and ``check_pending()`` is called, as discovery does; the first
reply (``ready``) lists the workflows found and the problems met. The registry's load check
(``_packaging._probe``) is this same program, started just for it.

Import path: the standard library, then PACKAGE_DIR, then the host environment, so the package's
own (bundled) dependencies take precedence over the host's inside this process only, except the
kit and what it imports (``cloacina_workflow``, ``pydantic``...), which are imported from the host
before PACKAGE_DIR is placed. A package that ships one of ``HOST_MODULES`` is refused.

Bounds: a reply's output context is at most ``MAX_CONTEXT_BYTES`` and ``MAX_JSON_DEPTH`` (else the
task fails with ``LimitExceeded``); error messages and tracebacks are cut to ``MAX_ERROR_CHARS``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from importlib.metadata import EntryPoint

    import pluggy

    from cloacina_workflow import Workflow
    from cloacina_workflow._errors import TaskDeferred

#: Top-level modules a package may not ship: the host's own, and what the worker imports from it.
HOST_MODULES = ("cloacina_host", "cloacina_workflow", "pluggy", "pydantic", "pydantic_core")
#: Longest error message or traceback sent back (characters; the traceback keeps its end).
MAX_ERROR_CHARS = 64 * 1024
#: Room a request or reply needs beside its context (ids, names, an error's message and traceback).
ENVELOPE_BYTES = 1024 * 1024


def put_package_first(package_dir: str) -> None:
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


def host_shadows(directory: str) -> list[str]:
    """The ``HOST_MODULES`` that ``directory`` would provide (a module or regular package of that name)."""
    from importlib.machinery import PathFinder

    found = []
    for name in HOST_MODULES:
        spec = PathFinder.find_spec(name, [directory])
        if spec is not None and spec.loader is not None:  # a namespace portion shadows nothing
            found.append(name)
    return found


def shadow_problem(names: list[str]) -> str:
    listed = ", ".join(names)
    return (
        f"the package ships top-level module(s) {listed}, which would shadow the host's own "
        f"({', '.join(HOST_MODULES)} always come from the host environment): remove {listed} from the "
        "package and its bundled wheels"
    )


def import_problem(distribution: str, entry_point: EntryPoint, exc: BaseException) -> str:
    """One line for an entry point whose import raised ``exc`` (any ``BaseException``)."""
    text = str(exc)[:MAX_ERROR_CHARS]
    kind = type(exc).__name__
    if isinstance(exc, Exception):
        return f"{distribution}:{entry_point.name}: {kind}: {text}"
    detail = f" ({text})" if text else ""
    return (
        f"{distribution} raised {kind}{detail} while importing entry point {entry_point.name!r} "
        f"({entry_point.value}): a package must not exit or interrupt at import time"
    )


class Collected:
    """What loading a package directory's entry points gave: workflows by ``package::workflow``, problems."""

    def __init__(self, problems: list[str] | None = None) -> None:
        self.workflows: dict[str, Workflow] = {}
        self.distributions: dict[str, str] = {}
        self.entry_points: dict[str, str] = {}
        self.problems: list[str] = problems or []

    def add(self, wf: Workflow, distribution: str, entry_point: str) -> None:
        key = f"{wf.package or distribution.replace('-', '_').replace('.', '_').lower()}::{wf.name}"
        if key in self.workflows:
            self.problems.append(f"{distribution}:{entry_point}: workflow {key} is offered twice")
        self.workflows[key] = wf
        self.distributions[key] = distribution
        self.entry_points[key] = entry_point


class _Interrupted(Exception):
    """A plugin raised a ``BaseException`` that is not an ``Exception`` (exit, interrupt): stop loading."""


def collect(package_dir: str) -> Collected:
    """Load every ``cloacina.workflows`` entry point in ``package_dir`` through pluggy, as discovery does.

    Each entry point's object is registered with a ``pluggy.PluginManager("cloacina")`` under
    ``DISTRIBUTION:ENTRY-POINT`` and ``check_pending()`` is called, so a misspelt hook is a problem,
    not a silently ignored function; its workflows are what its ``cloacina_workflows`` hook returns.
    A plugin that exits or interrupts (a ``BaseException``) is the only problem reported: nothing
    more of the package is loaded.
    """
    import os
    from importlib import metadata

    import pluggy

    from cloacina_workflow import hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    found = Collected()
    try:
        for dist in metadata.distributions(path=[package_dir]):
            for ep in dist.entry_points.select(group="cloacina.workflows"):
                _load_plugin(pm, found, dist.metadata["Name"] or "?", dist.version, ep)
    except _Interrupted as stop:
        found = Collected(problems=[str(stop)])
    # paths inside the package read relative to it: validate (a temporary directory) and register (the
    # install directory) load the same package from different places, and say the same of it
    root = os.path.join(package_dir, "")
    found.problems = [problem.replace(root, "") for problem in found.problems]
    return found


def _load_plugin(pm: pluggy.PluginManager, found: Collected, dist_name: str, dist_version: str, ep: EntryPoint) -> None:
    import pluggy

    from cloacina_workflow import Workflow

    name = f"{dist_name}:{ep.name}"
    try:
        plugin = ep.load()
        pm.register(plugin, name=name)
        pm.check_pending()
        if not pm.get_hookcallers(plugin):  # else it would be registered and silently offer nothing
            raise pluggy.PluginValidationError(
                plugin,
                f"{ep.value} is {plugin!r:.100}, which implements no Cloacina hook. Point the entry point at "
                "a Workflow made by @workflow, or mark the module's cloacina_workflows() function with @hookimpl.",
            )
    except Exception as exc:  # noqa: BLE001  # import errors, bad hookimpls: reported, the others load
        if pm.has_plugin(name):
            pm.unregister(name=name)
        found.problems.append(
            f"Plugin {name} (distribution {dist_name} {dist_version}, entry point {ep.name} = {ep.value}) "
            f"failed to load: {type(exc).__name__}: {str(exc)[:MAX_ERROR_CHARS]}"
        )
        return
    except BaseException as exc:  # noqa: BLE001  # exits, interrupts: reported, and no more imports
        raise _Interrupted(import_problem(dist_name, ep, exc)) from None
    for impl in pm.hook.cloacina_workflows.get_hookimpls():
        if impl.plugin is not plugin:
            continue
        try:
            result = impl.function()
        except Exception as exc:  # noqa: BLE001  # any failure of plugin code is reported, not raised
            found.problems.append(
                f"Plugin {name} raised in cloacina_workflows(): {type(exc).__name__}: {str(exc)[:MAX_ERROR_CHARS]}"
            )
            continue
        except BaseException as exc:  # noqa: BLE001
            raise _Interrupted(import_problem(dist_name, ep, exc)) from None
        for item in list(result) if isinstance(result, (list, tuple)) else [result]:
            if isinstance(item, Workflow):
                found.add(item, dist_name, ep.name)
            else:
                found.problems.append(
                    f"Plugin {name} returned {type(item).__name__} {item!r:.80} from cloacina_workflows(), not a "
                    "Workflow. Return the object made by @workflow (or a list of them)."
                )


def main(argv: list[str]) -> int:
    package_dir = argv[0]
    # the script's own directory (cloacina_host/) must not shadow anything; the kit comes from the
    # host, imported before the package dir goes in right after the standard library
    del sys.path[0]
    from cloacina_host import _output as out
    from cloacina_host import _tracing as tracing
    from cloacina_host._defaults import OUTPUT_FLUSH_S
    from cloacina_workflow import Context, ContextError, RetryPolicy, TaskError
    from cloacina_workflow import _machine as m
    from cloacina_workflow import _workflow as _kit  # noqa: F401  # the rest of the kit (pluggy with it), from the host
    from cloacina_workflow.limits import (
        MAX_CONTEXT_BYTES,
        MAX_JSON_DEPTH,
        context_too_large,
        loads_limited,
    )

    out.set_echo("quiet")  # the tasks' output goes to the host in the replies; the host shows it
    shadows = host_shadows(package_dir)
    put_package_first(package_dir)

    import asyncio
    import contextlib
    import functools
    import json
    import os
    import re
    import threading

    reply_fd = int(argv[1])
    # held around each reply, and around taking a task's output with the reply that carries it: a plain
    # task's thread sends its own reply, and no output may follow its reply on the pipe
    reply_lock = threading.RLock()

    def send(line: str) -> None:
        """Write one reply line to the host, whole (a blocking pipe: one write, unless it is long)."""
        data = memoryview((line + "\n").encode())
        with reply_lock:
            while data:
                data = data[os.write(reply_fd, data) :]

    def reply(message: dict[str, object]) -> None:
        send(json.dumps(message, separators=(",", ":")))

    loaded = collect(package_dir) if not shadows else Collected(problems=[shadow_problem(shadows)])
    workflows = loaded.workflows

    reply(
        {
            "op": "ready",
            "pid": os.getpid(),
            "problems": loaded.problems,
            "workflows": {
                key: {
                    "fingerprint": wf.fingerprint(),
                    "distribution": loaded.distributions[key],
                    "entry_point": loaded.entry_points[key],
                    **wf.describe(),
                }
                for key, wf in workflows.items()
            },
        }
    )

    transient_policy = RetryPolicy(attempts=1, condition="transient")

    def failure(rid: object, exc: BaseException, **extra: object) -> dict[str, object]:
        """The reply for a task's failure: the host rebuilds the kit's errors as they are, tells others as here."""
        return {
            "id": rid,
            "ok": False,
            "error_type": type(exc).__qualname__,
            "kit": m.kit_name(type(exc)),
            "described": m.describe(exc)[:MAX_ERROR_CHARS],
            "message": str(exc)[:MAX_ERROR_CHARS],
            "task": getattr(exc, "task", None) if isinstance(exc, TaskError) else None,
            "key": getattr(exc, "key", None) if isinstance(exc, ContextError) else None,
            "traceback": m.traceback_text(exc)[-MAX_ERROR_CHARS:],
            "transient": transient_policy.should_retry(exc, 1),  # what retry_condition="transient" decides
            "validation": isinstance(exc, TaskError.ValidationFailed),
            # a deferral travels with its time, so the host decides as it would have here
            **({"deferred": _deferral(exc)} if isinstance(exc, TaskError.Deferred) else {}),
            **extra,
        }

    written_by: dict[object, out.AttemptOutput] = {}  # what running requests' tasks wrote

    def answer(rid: object, line: str) -> None:
        """Send the reply ``line`` (a JSON object) to request ``rid``, with what its task wrote.

        Only the first reply to a request is sent: a plain task's thread that returns as the task is
        cancelled does not answer after the loop said it was cancelled, nor the loop after the thread.
        """
        with reply_lock:
            if rid not in written_by:
                return
            written = written_by.pop(rid)
            written.finish()
            fragment = out.wire_fragment(written)
            if fragment:
                line = f"{line[:-1]},{fragment}}}"
            send(line)

    async def send_output() -> None:
        """Send what running tasks wrote, at most once per ``OUTPUT_FLUSH_S`` (their host stores it as they run)."""
        while True:
            await asyncio.sleep(OUTPUT_FLUSH_S)
            for rid, written in list(written_by.items()):
                with reply_lock:
                    if written_by.get(rid) is not written:  # answered meanwhile, its output with the reply
                        continue
                    fragment = out.wire_fragment(written)
                    if fragment:
                        send(f'{{"op":"output","id":{json.dumps(rid)},{fragment}}}')

    def succeeded(rid: object, task_id: str, context: Context) -> None:
        """Send the reply of a task that returned: its output context, or the limit it is over."""
        # to_dict refuses a value nested deeper than the context allows (a task may have changed one
        # in place since it was set): the output is within MAX_JSON_DEPTH once it returns
        body = json.dumps(context.to_dict(), separators=(",", ":"))
        if len(body) > MAX_CONTEXT_BYTES:  # ASCII (ensure_ascii): characters are bytes
            raise context_too_large(f"the output context of task {task_id!r}", len(body))
        answer(rid, f'{{"id":{json.dumps(rid)},"ok":true,"context":{body}}}')

    plain_running: set[object] = set()  # requests whose plain task runs in a reader thread now

    def taken(request: dict[str, Any]) -> None:
        """The request's attempt exists from now on: its output is caught, a cancel of it is answered."""
        written_by[request["id"]] = out.AttemptOutput(str(request["task"]))

    def attempt_begins(request: dict[str, Any]) -> tuple[object, str, Any, Any]:
        """Catch the attempt's output (``taken``), and start its span here, a child of the host's (only
        when the host sent its trace context): its id, task id, and what ``attempt_ends`` takes."""
        rid, task_id = request["id"], str(request["task"])
        token = out.enter(written_by[rid])
        traced = (
            None if "trace" not in request else tracing.remote_attempt(request["trace"], request["workflow"], task_id)
        )
        return rid, task_id, token, traced

    def attempt_ends(rid: object, token: Any, traced: Any, error: str | None) -> None:
        if traced is not None:
            traced.end(error)
        out.leave(token)
        written_by.pop(rid, None)

    def answer_failure(rid: object, task_id: str, exc: BaseException) -> str:
        """Reply with the failed attempt of a task that raised ``exc``: one that is not an ``Exception``
        (its own ``CancelledError`` included) fails it as it would in-process. Returns its text."""
        if isinstance(exc, Exception):
            told: BaseException = exc
        elif isinstance(exc, asyncio.CancelledError):
            told = _escaped(task_id, asyncio.CancelledError(), cause=exc)
        else:
            told = _escaped(task_id, exc)
        answer(rid, json.dumps(failure(rid, told)))
        return f"{type(exc).__name__}: {exc}"

    def run_plain(request: dict[str, Any], task: Any) -> None:
        """A plain task, in the reader thread that read (and ``take``) its request, replying from there."""
        rid, task_id, token, traced = attempt_begins(request)
        error: str | None = None
        try:
            context = Context(request["context"])
            task.function(context)
            succeeded(rid, task_id, context)
        except BaseException as exc:  # noqa: BLE001  # every failure goes back to the host
            error = answer_failure(rid, task_id, exc)
        finally:
            attempt_ends(rid, token, traced, error)
            plain_running.discard(rid)

    def cancel_plain(rid: object) -> None:
        """A plain task cannot be stopped: say so (its thread's reply, if it comes later, is not sent)."""
        cancelled = {"id": rid, "ok": False, "cancelled": True, "stopped": False}
        answer(rid, json.dumps({**cancelled, "error_type": "Cancelled", "message": "cancelled"}))

    async def run_one(request: dict[str, Any]) -> None:
        """An async task's request (or one naming no task of this package: its failure is the reply)."""
        taken(request)
        rid, task_id, token, traced = attempt_begins(request)
        error: str | None = "cancelled"
        try:
            task = workflows[str(request["workflow"])].tasks[task_id]
            context = Context(request["context"])
            await task.run(context)
            succeeded(rid, task_id, context)
            error = None
        except asyncio.CancelledError as exc:
            if rid not in cancel_asked:  # the task raised CancelledError itself: a failed attempt, as in-process
                error = answer_failure(rid, task_id, exc)
                return
            cancelled = {"id": rid, "ok": False, "cancelled": True, "stopped": True}
            answer(rid, json.dumps({**cancelled, "error_type": "Cancelled", "message": "cancelled"}))
        except BaseException as exc:  # noqa: BLE001  # every other failure goes back to the host
            error = answer_failure(rid, task_id, exc)
        finally:
            attempt_ends(rid, token, traced, error)
            cancel_asked.discard(rid)

    async def poll_one(request: dict[str, Any]) -> None:
        """Poll a trigger of a loaded workflow once: reply whether it fires, and with what context."""
        from cloacina_workflow import PollInfo

        rid = request["id"]
        name = str(request["trigger"])
        stoppable = True
        try:
            found = [t for t in workflows[str(request["workflow"])].triggers if t.name == name]
            if not found:
                raise LookupError(f"workflow {request['workflow']} has no trigger {name!r}")
            stoppable = asyncio.iscoroutinefunction(found[0].function)
            fired = await found[0].poll(PollInfo(name, request.get("last_fire_at")))
            body = json.dumps(None if fired is None else fired.context, separators=(",", ":"))
            if len(body) > MAX_CONTEXT_BYTES:
                raise context_too_large(f"the context trigger {name!r} fired with", len(body))
            send(f'{{"id":{json.dumps(rid)},"ok":true,"fire":{body}}}')
        except asyncio.CancelledError:
            # a plain poll keeps running in its thread: the host retires this worker
            cancelled = {"id": rid, "ok": False, "cancelled": True, "stopped": stoppable, "message": "cancelled"}
            send(json.dumps(cancelled))
        except Exception as exc:  # noqa: BLE001  # every poll failure goes back to the host
            send(json.dumps(failure(rid, exc)))

    cancel_asked: set[object] = set()  # requests the host cancelled (a task's own CancelledError fails it)
    max_request = MAX_CONTEXT_BYTES + ENVELOPE_BYTES
    stdin = sys.stdin.buffer

    def next_request() -> bytes:
        """The next request line, or b"" at the end of input; a line over the limit, or cut, ends the worker."""
        line = stdin.readline(max_request + 1)
        if line and not line.endswith(b"\n"):  # over the limit, or cut: the stream cannot be trusted
            sys.stderr.write(f"cloacina worker: a request over {max_request:,} bytes; exiting\n")
            sys.stderr.flush()
            os._exit(70)
        return line

    def plain_task(request: dict[str, Any]) -> Any:
        """The plain task a ``run`` request names, or None (an async one, a poll, or a name not found here)."""
        if request.get("op") not in (None, "run"):
            return None
        wf = workflows.get(str(request.get("workflow")))
        task = None if wf is None else wf.tasks.get(str(request.get("task")))
        return task if task is not None and not task.is_async else None

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        running: dict[object, asyncio.Task[None]] = {}
        ended = asyncio.Event()  # the host closed the request pipe
        idle = 1  # reader threads not running a task (the one reading, and those waiting to read)
        idle_lock = threading.Lock()
        read_lock = threading.Lock()  # one thread reads the pipe at a time

        def dispatch(request: dict[str, Any]) -> None:
            """On the loop: a request that is not a plain task's (those run where they were read)."""
            if request.get("op") == "check_input":  # a registered workflow's input model lives here
                reply(_check_input(workflows, request))
                return
            if request.get("op") == "cancel":
                pending = running.get(request["id"])
                if pending is not None:
                    cancel_asked.add(request["id"])
                    pending.cancel()
                elif request["id"] in plain_running:
                    cancel_plain(request["id"])
                return
            job = asyncio.ensure_future(poll_one(request) if request.get("op") == "poll" else run_one(request))
            running[request["id"]] = job
            job.add_done_callback(functools.partial(_forget, running, request["id"]))

        def to_loop(callback: Callable[..., object], *args: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: the worker is ending
                loop.call_soon_threadsafe(callback, *args)

        def take(line: bytes) -> tuple[dict[str, Any], Any] | None:
            """Take in one request, in the order read: to the loop, or, a plain task's, (request, task) to run
            here, registered first (a cancel read after it finds it running)."""
            try:
                request = loads_limited(
                    line, "a request to the worker", max_bytes=max_request, max_depth=MAX_JSON_DEPTH + 1
                )
            except Exception as exc:  # noqa: BLE001  # answer the request if its id can be read, else it is lost
                found = re.match(rb'\{"op":"run","id":(\d+),', line)
                if found is not None:
                    reply(failure(int(found.group(1)), exc))
                return None
            task = plain_task(request)
            if task is None:
                to_loop(dispatch, request)
                return None
            plain_running.add(request["id"])
            taken(request)
            return request, task

        def readers() -> None:
            """Leader and followers: the thread holding ``read_lock`` reads and takes in one request, lets
            the next thread read, and runs a plain task itself. Its request wakes one thread, not the loop
            and then a pool thread; a spare reader is started whenever every reader is running a task."""
            nonlocal idle
            while True:
                with read_lock:  # one request at a time, in order: a request's cancel always comes after it
                    line = next_request()
                    if not line:
                        to_loop(ended.set)
                        return
                    plain = take(line)
                if plain is None:
                    continue
                with idle_lock:
                    idle -= 1  # this one runs a task now
                    spare = idle == 0
                    if spare:
                        idle += 1  # the reader started next
                if spare:
                    threading.Thread(target=readers, name="cloacina-task", daemon=True).start()
                run_plain(*plain)
                with idle_lock:
                    idle += 1

        flusher = asyncio.ensure_future(send_output())
        threading.Thread(target=readers, name="cloacina-task", daemon=True).start()
        await ended.wait()
        for rid in list(plain_running):
            cancel_plain(rid)
        for rid, job in list(running.items()):
            cancel_asked.add(rid)
            job.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)
        flusher.cancel()

    asyncio.run(serve())
    tracing.flush()  # the spans still buffered: os._exit below skips the SDK's exit hook
    # a plain task that never returns would keep the interpreter waiting for its thread: leave now
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001  # a closed or broken stream: nothing more to say on it
            continue
    os._exit(0)


def _deferral(exc: TaskDeferred) -> dict[str, object]:
    """What a failure reply carries of a ``TaskError.Deferred``: its reason and its time."""
    return {"reason": exc.reason[:MAX_ERROR_CHARS], "seconds": exc.seconds, "until": exc.until_ts}


def _check_input(workflows: Mapping[str, Workflow], request: Mapping[str, Any]) -> dict[str, object]:
    """The reply to ``check_input``: ok, or the ``InputError`` of the workflow's model, told as it is."""
    from cloacina_workflow import InputError

    rid, key = request.get("id"), str(request.get("workflow"))
    wf = workflows.get(key)
    if wf is None:
        return {"id": rid, "ok": False, "message": f"workflow {key} is not in this package", "problems": []}
    try:
        wf.check_input(request.get("context") or {})
    except InputError as exc:
        return {"id": rid, "ok": False, "message": str(exc), "problems": list(exc.problems)}
    return {"id": rid, "ok": True}


def _escaped(task_id: str, exc: BaseException, cause: BaseException | None = None) -> BaseException:
    """What a task's ``BaseException`` outside ``Exception`` fails its attempt with, its cause kept (as in-process)."""
    from cloacina_workflow import _machine as m

    err = m.escaped(task_id, exc)
    err.__cause__ = cause or exc
    return err


def _forget(running: dict[object, Any], rid: object, _job: object) -> None:
    running.pop(rid, None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
