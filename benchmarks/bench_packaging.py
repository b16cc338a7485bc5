"""Packaging and start-up benchmark: what ``cloacina-ctl package`` adds on top of building the wheel,
how long ``cloacina-ctl inspect`` takes as a whole process, on the reference package
(simple-packaged-demo), and what importing ``cloacina_host`` and ``cloacina_host.cli`` costs.

    python benchmarks/bench_packaging.py [--runs N] [--isolated] [--baseline GITREF] [--check]

Both builds run the same way (without isolation by default, so that the network and the creation of
a build environment do not blur the figure). Medians of N runs. Targets: package overhead <= 1 s,
inspect <= 200 ms. ``--baseline REF`` (e.g. ``HEAD~3`` or a branch) also runs every command with
the source tree of that git commit first on ``PYTHONPATH`` (same interpreter, same installed
libraries), alternating with this tree's runs so that both see the same load, and prints the two
side by side. ``--check`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from _baseline import checkout, environment
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "plugins" / "simple-packaged-demo"
CTL = Path(sys.executable).with_name("cloacina-ctl")
PACKAGE_OVERHEAD_TARGET_S = 1.0
INSPECT_TARGET_S = 0.200

Env = Mapping[str, str]


def _run(command: Sequence[str], cwd: Path, env: Env) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def _medians(command: Sequence[str], cwd: Path, envs: Mapping[str, Env], runs: int) -> dict[str, float]:
    """Median seconds of ``command`` under each environment, their runs interleaved."""
    times: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(runs):
        for name, env in envs.items():
            times[name].append(_run(command, cwd, env))
    return {name: statistics.median(t) for name, t in times.items()}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median reported) [5]")
    parser.add_argument("--isolated", action="store_true", help="build in isolated environments (needs the index)")
    parser.add_argument("--baseline", metavar="GITREF", help="also measure the tree of this git commit, side by side")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    isolation = [] if args.isolated else ["--no-isolation"]

    with tempfile.TemporaryDirectory(prefix="cloacina-bench-") as tmp_name:
        tmp = Path(tmp_name)
        envs: dict[str, Env] = {}
        if args.baseline:
            envs[args.baseline] = environment(checkout(args.baseline, tmp))
        envs["this tree"] = dict(os.environ)
        project = Path(shutil.copytree(DEMO, tmp / "simple-packaged-demo"))
        archive = tmp / "simple-demo.cloacina"
        build_cmd = [sys.executable, "-m", "build", "--wheel", *isolation, "--outdir", str(tmp / "dist"), str(project)]
        package_cmd = [str(CTL), "package", str(project), "-o", str(archive), *isolation]
        inspect_cmd = [str(CTL), "inspect", str(archive)]
        # warm caches (and check that everything works) before measuring
        for env in envs.values():
            for command in (build_cmd, package_cmd, inspect_cmd):
                subprocess.run(command, cwd=tmp, env=env, check=True, capture_output=True)
        many = max(args.runs, 10)
        build_s = statistics.median(_run(build_cmd, tmp, envs["this tree"]) for _ in range(args.runs))
        package_s = _medians(package_cmd, tmp, envs, args.runs)
        inspect_s = _medians(inspect_cmd, tmp, envs, many)
        host_s = _medians([sys.executable, "-c", "import cloacina_host"], tmp, envs, many)
        cli_s = _medians([sys.executable, "-c", "import cloacina_host.cli"], tmp, envs, many)
        python_s = statistics.median(_run([sys.executable, "-c", "pass"], tmp, envs["this tree"]) for _ in range(many))
        size = archive.stat().st_size

    names = list(envs)
    overhead = {name: package_s[name] - build_s for name in names}
    mode = "isolated" if args.isolated else "no isolation"
    title = f"Packaging and start-up: simple-packaged-demo ({mode}; medians of {args.runs} runs, {many} for inspect)"
    table = Table(title=title)
    table.add_column("measurement")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("target")
    table.add_column("verdict")
    now = names[-1]

    def row(label: str, values: Mapping[str, float] | float, target: float | None = None) -> bool:
        per = values if isinstance(values, Mapping) else dict.fromkeys(names, values)
        ok = target is None or per[now] <= target
        verdict = "" if target is None else "[green]ok[/green]" if ok else "[red]over[/red]"
        table.add_row(label, *(_ms(per[n]) for n in names), f"<= {_ms(target)}" if target else "", verdict)
        return ok

    row("python -m build --wheel", build_s)
    row("cloacina-ctl package (whole process)", package_s)
    ok_package = row("package overhead over the build", overhead, PACKAGE_OVERHEAD_TARGET_S)
    ok_inspect = row(f"cloacina-ctl inspect ({size:,}-byte archive, whole process)", inspect_s, INSPECT_TARGET_S)
    row("  python -c 'import cloacina_host.cli'", cli_s)
    row("  python -c 'import cloacina_host'", host_s)
    row("  python -c pass (the interpreter alone)", python_s)
    Console().print(table)
    return 0 if (ok_package and ok_inspect) or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
