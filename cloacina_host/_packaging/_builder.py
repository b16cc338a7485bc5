"""Building the wheel with pypa ``build`` (isolated like ``python -m build``, or not), and dependency wheels.

The backend runs in a subprocess whose output is captured: kept on the error when the build fails
(``--verbose`` shows it), and quiet otherwise. ``SOURCE_DATE_EPOCH`` is always set for the backend,
so that backends that honour it (hatchling, setuptools, flit) build reproducible wheels.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

from ._errors import PackagingError

#: Never bundled: the host provides the kit, and with it what the kit itself needs (see ``host_provided``).
KIT_DISTRIBUTION = "cloacina-workflow"


class _CapturingRunner:
    """A ``pyproject_hooks`` subprocess runner that captures output and pins ``SOURCE_DATE_EPOCH``.

    ``meanwhile``: callables run in turn, one in this thread while each hook's process runs (the
    first with the first hook...): the caller's own preparation (imports) overlaps the backend's
    work instead of following the build.
    """

    def __init__(self, source_date_epoch: int, meanwhile: Sequence[Callable[[], object]] = ()) -> None:
        self.source_date_epoch = source_date_epoch
        self.output: list[str] = []
        self._meanwhile = list(meanwhile)

    def __call__(
        self, cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
    ) -> None:
        env = {**os.environ, **(extra_environ or {}), "SOURCE_DATE_EPOCH": str(self.source_date_epoch)}
        with subprocess.Popen(
            list(cmd), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc:
            try:
                if self._meanwhile:
                    self._meanwhile.pop(0)()  # the hook's output waits in its pipe meanwhile
            finally:
                stdout, _ = proc.communicate()
        self.output.append(stdout)
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, list(cmd), output=stdout)


def _failure_output(exc: BaseException, runner: _CapturingRunner) -> str:
    parts = [text for text in runner.output if text.strip()]
    inner = getattr(exc, "exception", None)
    for stream in ("output", "stderr"):
        text = getattr(inner, stream, None)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if isinstance(text, str) and text.strip() and text not in parts:
            parts.append(text)
    return "\n".join(parts).strip()


def build_wheel(
    project: Path,
    out_dir: Path,
    *,
    isolation: bool,
    source_date_epoch: int,
    meanwhile: Sequence[Callable[[], object]] = (),
) -> Path:
    """Build ``project``'s wheel into ``out_dir`` with pypa ``build``; return its path.

    ``meanwhile``: called in turn while the backend's hooks run in their processes (``_CapturingRunner``).
    """
    import build  # imported here: only packaging needs it, and it is not free to import
    import build.env

    runner = _CapturingRunner(source_date_epoch, meanwhile)
    how = "in an isolated environment" if isolation else "without isolation"
    try:
        if isolation:
            with build.env.DefaultIsolatedEnv() as env:
                builder = build.ProjectBuilder.from_isolated_env(env, project, runner=runner)
                env.install(builder.build_system_requires)
                env.install(builder.get_requires_for_build("wheel"))
                return Path(builder.build("wheel", out_dir))
        builder = build.ProjectBuilder(project, runner=runner)
        missing = builder.check_dependencies("wheel")
        if missing:
            names = sorted({chain[0] for chain in missing})
            raise PackagingError(
                f"Cannot build {project} without isolation: its build requirements are not installed here: "
                f"{', '.join(names)}. Install them (pip install {' '.join(names)}) or drop --no-isolation.",
                project=project,
            )
        return Path(builder.build("wheel", out_dir))
    except PackagingError:
        raise
    except build.BuildBackendException as exc:
        output = _failure_output(exc, runner)
        last = output.strip().splitlines()[-1] if output.strip() else str(exc)
        raise PackagingError(
            f"The build backend failed to build a wheel from {project} ({how}): {last}. "
            "Run with --verbose to see the backend's whole output, or try `python -m build --wheel` there.",
            project=project,
            output=output,
        ) from exc
    except build.BuildException as exc:
        raise PackagingError(
            f"Cannot build {project}: {exc}. Fix pyproject.toml's [build-system].", project=project
        ) from exc
    except build.FailedProcessError as exc:
        output = _failure_output(exc, runner)
        raise PackagingError(
            f"Setting up the isolated build environment for {project} failed: {exc}. Check the network access "
            "to the package index, or build with --no-isolation when the build requirements are installed.",
            project=project,
            output=output,
        ) from exc


def host_provided() -> frozenset[str]:
    """The kit and every distribution it needs, as installed here: these stay the host's in a worker."""
    from packaging.requirements import Requirement

    found: set[str] = set()
    pending = [KIT_DISTRIBUTION]
    while pending:
        name = canonicalize_name(pending.pop())
        if name in found:
            continue
        found.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                pending.append(req.name)
    return frozenset(found)


def bundle_requirements(requirements: Sequence[str]) -> list[str]:
    """The requirements to bundle: those that apply to this interpreter, minus what the host provides."""
    from packaging.requirements import InvalidRequirement, Requirement

    keep: list[str] = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) == KIT_DISTRIBUTION:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        keep.append(str(req))
    return keep


def download_dependency_wheels(
    project: Path, requirements: Sequence[str], out_dir: Path, *, find_links: Sequence[str], no_index: bool
) -> list[Path]:
    """Wheels for ``requirements`` and their dependencies (``pip wheel``), minus the host-provided ones."""
    wanted = bundle_requirements(requirements)
    if not wanted:
        return []
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "-w", str(out_dir)]
    for link in find_links:
        command += ["--find-links", link]
    if no_index:
        command.append("--no-index")
    command += wanted
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        last = output.splitlines()[-1] if output else f"exit status {proc.returncode}"
        raise PackagingError(
            f"Could not get wheels for the requirements of {project} ({', '.join(wanted)}): {last}. "
            "Use --find-links DIR for local wheels, or package without --bundle-deps.",
            project=project,
            output=output,
        )
    provided = host_provided()
    return [w for w in sorted(out_dir.glob("*.whl")) if canonicalize_name(w.name.split("-", 1)[0]) not in provided]
