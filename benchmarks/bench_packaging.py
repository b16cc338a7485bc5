"""Packaging benchmark: what ``cloacina-ctl package`` adds on top of building the wheel, and how long
``cloacina-ctl inspect`` takes as a whole process, on the reference package (simple-packaged-demo).

    python benchmarks/bench_packaging.py [--runs N] [--isolated] [--check]

Both builds run the same way (without isolation by default, so that the network and the creation of
a build environment do not blur the figure). Medians of N runs. Targets: package overhead <= 1 s,
inspect <= 200 ms. ``--check`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "plugins" / "simple-packaged-demo"
CTL = Path(sys.executable).with_name("cloacina-ctl")
PACKAGE_OVERHEAD_TARGET_S = 1.0
INSPECT_TARGET_S = 0.200


def _time(command: Sequence[str], cwd: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median reported) [5]")
    parser.add_argument("--isolated", action="store_true", help="build in isolated environments (needs the index)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    isolation = [] if args.isolated else ["--no-isolation"]

    with tempfile.TemporaryDirectory(prefix="cloacina-bench-") as tmp_name:
        tmp = Path(tmp_name)
        project = Path(shutil.copytree(DEMO, tmp / "simple-packaged-demo"))
        archive = tmp / "simple-demo.cloacina"
        build_cmd = [sys.executable, "-m", "build", "--wheel", *isolation, "--outdir", str(tmp / "dist"), str(project)]
        package_cmd = [str(CTL), "package", str(project), "-o", str(archive), *isolation]
        inspect_cmd = [str(CTL), "inspect", str(archive)]
        import_cmd = [sys.executable, "-c", "import cloacina_host.cli"]
        # warm caches (and check that everything works) before measuring
        for command in (build_cmd, package_cmd, inspect_cmd):
            subprocess.run(command, cwd=tmp, check=True, capture_output=True)
        build_s = statistics.median(_time(build_cmd, tmp, args.runs))
        package_s = statistics.median(_time(package_cmd, tmp, args.runs))
        inspect_s = statistics.median(_time(inspect_cmd, tmp, max(args.runs, 10)))
        import_s = statistics.median(_time(import_cmd, tmp, max(args.runs, 10)))
        size = archive.stat().st_size

    overhead = package_s - build_s
    mode = "isolated" if args.isolated else "no isolation"
    table = Table(title=f"Packaging: simple-packaged-demo ({mode}, median of {args.runs})")
    for column in ("measurement", "time", "target", "verdict"):
        table.add_column(column, justify="right" if column == "time" else "left")
    table.add_row("python -m build --wheel", f"{build_s * 1000:.0f} ms", "", "")
    table.add_row("cloacina-ctl package (whole process)", f"{package_s * 1000:.0f} ms", "", "")
    ok_package = overhead <= PACKAGE_OVERHEAD_TARGET_S
    table.add_row(
        "package overhead over the build",
        f"{overhead * 1000:.0f} ms",
        f"<= {PACKAGE_OVERHEAD_TARGET_S * 1000:.0f} ms",
        "[green]ok[/green]" if ok_package else "[red]over[/red]",
    )
    ok_inspect = inspect_s <= INSPECT_TARGET_S
    table.add_row(
        f"cloacina-ctl inspect ({size:,}-byte archive, whole process)",
        f"{inspect_s * 1000:.0f} ms",
        f"<= {INSPECT_TARGET_S * 1000:.0f} ms",
        "[green]ok[/green]" if ok_inspect else "[red]over[/red]",
    )
    table.add_row("  of which: python -c 'import cloacina_host.cli'", f"{import_s * 1000:.0f} ms", "", "")
    Console().print(table)
    return 0 if (ok_package and ok_inspect) or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
