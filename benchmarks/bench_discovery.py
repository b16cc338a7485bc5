"""Discovery benchmark: finding the workflows of 100 installed plugins.

    python benchmarks/bench_discovery.py [--plugins N] [--runs N] [--check]

It writes N small plugin distributions (a module offering a real 3-task ``Workflow`` and a
``cloacina.workflows`` entry point each) as wheels, installs them with ``installer`` into one
directory (byte-compiled, as pip installs), and puts that directory first on ``sys.path`` of fresh
processes, beside everything installed in this environment. In each process it measures the
first ``discover()`` (cold: reading the metadata of every installed distribution, importing the
plugins, registering them with a new plugin manager) and the next one (warm: the same process, a
new plugin manager, the scan cached). The same code reading through the standard library's
``importlib.metadata`` (what discovery used before) is printed beside it. Medians of N fresh
processes; peak RSS is the process's. Target: cold discovery of 100 plugins <= 0.3 s.
``--check`` exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

TARGET_S = 0.3

PLUGIN_MODULE = """
from cloacina_workflow import Context, task, workflow


@workflow(name="flow_{i:03d}", package="bench_{i:03d}", description="benchmark plugin {i}")
class flow_{i:03d}:
    @task(id="extract")
    def extract(context: Context) -> None:
        context.insert("rows", [1, 2, 3])

    @task(id="transform", dependencies=["extract"])
    def transform(context: Context) -> None:
        context.insert("total", sum(context.get("rows")))

    @task(id="load", dependencies=["transform"])
    def load(context: Context) -> None:
        context.insert("loaded", True)
"""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(i: int, directory: Path) -> Path:
    """A pure-Python wheel of plugin ``i`` (module, METADATA, WHEEL, entry_points.txt, RECORD)."""
    dist, version, module = f"cloacina-bench-plugin-{i:03d}", "1.0.0", f"cloacina_bench_plugin_{i:03d}"
    info = f"{dist.replace('-', '_')}-{version}.dist-info"
    files = {
        f"{module}.py": PLUGIN_MODULE.format(i=i).encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
        "Requires-Dist: cloacina-workflow>=0.1\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench_discovery\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[cloacina.workflows]\nflow_{i:03d} = {module}:flow_{i:03d}\n".encode(),
    }
    record = [_record_line(name, data) for name, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def install_plugins(count: int, root: Path) -> Path:
    """Write ``count`` plugin wheels and install them with ``installer`` into ``root/site``."""
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    wheels, site = root / "wheels", root / "site"
    wheels.mkdir()
    site.mkdir()
    scheme = {key: str(site) for key in ("purelib", "platlib")} | {
        "headers": str(site / "include"),
        "scripts": str(site / "bin"),
        "data": str(site / "data"),
    }
    destination = SchemeDictionaryDestination(  # byte-compiled at install, as pip does by default
        scheme, interpreter=sys.executable, script_kind="posix", bytecode_optimization_levels=(0,)
    )
    for i in range(count):
        with WheelFile.open(write_wheel(i, wheels)) as source:
            source.validate_record()
            install(source, destination, additional_metadata={"INSTALLER": b"bench_discovery\n"})
    return site


def child(site: str, reader: str) -> int:
    """In a fresh process: cold then warm ``discover()`` with ``site`` first on ``sys.path``; JSON on stdout."""
    import resource

    sys.path.insert(0, site)
    if reader == "stdlib":
        import importlib.metadata

        sys.modules["importlib_metadata"] = importlib.metadata  # the reader discovery imports on first use
    from cloacina_host import _discovery

    started = time.perf_counter()
    scanned = _discovery.installed_entry_points()
    scan_s = time.perf_counter() - started
    catalog = _discovery.discover()
    cold_s = time.perf_counter() - started
    started = time.perf_counter()
    again = _discovery.discover()
    warm_s = time.perf_counter() - started
    bench = [key for key in catalog.entries if key.startswith("bench_")]
    assert len(bench) == len([key for key in again.entries if key.startswith("bench_")])
    assert again.plugin_manager is not catalog.plugin_manager
    import importlib_metadata

    body = {
        "distributions": len({d.metadata.get("Name") for d in importlib_metadata.distributions()}),
        "scan_s": scan_s,
        "cold_s": cold_s,
        "warm_s": warm_s,
        "entry_points": len(scanned),
        "plugins": len(bench),
        "problems": [str(p) for p in catalog.problems],
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    print(json.dumps(body))
    return 0


def measure(site: Path, reader: str, runs: int) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for _ in range(runs):
        command = [sys.executable, __file__, "--child", str(site), reader]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        process_s = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"the {reader} child failed:\n{done.stderr}")
        results.append({**json.loads(done.stdout.splitlines()[-1]), "process_s": process_s})
    merged: dict[str, Any] = {
        key: statistics.median(r[key] for r in results) for key in ("scan_s", "cold_s", "warm_s", "process_s")
    }
    merged["maxrss_kb"] = max(r["maxrss_kb"] for r in results)
    merged["plugins"] = results[0]["plugins"]
    merged["entry_points"] = results[0]["entry_points"]
    merged["distributions"] = results[0]["distributions"]
    merged["problems"] = results[0]["problems"]
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugins", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--child", nargs=2, metavar=("SITE", "READER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)

    with tempfile.TemporaryDirectory(prefix="cloacina-bench-discovery-") as tmp:
        site = install_plugins(args.plugins, Path(tmp))
        backport = measure(site, "importlib_metadata", args.runs)
        stdlib = measure(site, "stdlib", args.runs)
    for name, found in (("importlib_metadata", backport), ("stdlib", stdlib)):
        if found["plugins"] != args.plugins or found["problems"]:
            raise SystemExit(f"{name}: found {found['plugins']} of {args.plugins} plugins; {found['problems']}")

    from rich.console import Console  # not in the children: they measure discovery, not rich
    from rich.table import Table

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.0f} ms"

    ok = backport["cold_s"] <= TARGET_S
    table = Table(
        title=f"Discovery of {args.plugins} installed plugins ({backport['distributions']} distributions on "
        f"sys.path), Python {sys.version_info.major}.{sys.version_info.minor}, median of {args.runs} processes",
        caption="cold: the first discover() in a fresh process (scan, import, register); scan: of which "
        "reading the metadata (importing the reader included); warm: the next discover() (fresh plugin "
        "manager, scan cached); process: the whole child, interpreter start and imports included",
    )
    for column in ("metadata reader", "cold", "scan", "warm", "process", "peak RSS"):
        table.add_column(column, justify="left" if column == "metadata reader" else "right")
    for label, found in (("importlib_metadata", backport), ("stdlib importlib.metadata", stdlib)):
        row = [ms(found[key]) for key in ("cold_s", "scan_s", "warm_s", "process_s")]
        table.add_row(label, *row, f"{found['maxrss_kb'] / 1024:.0f} MB")
    console = Console()
    console.print(table)
    console.print(
        f"cold discovery of {args.plugins} plugins through importlib_metadata: {ms(backport['cold_s'])} "
        f"(target <= {TARGET_S * 1000:.0f} ms): " + ("[green]ok[/green]" if ok else "[red]over[/red]")
    )
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
