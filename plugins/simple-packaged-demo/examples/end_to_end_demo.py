"""The tutorial's end-to-end demo: build the package, register and load it, execute ``data_processing``.

    python examples/end_to_end_demo.py [--home DIR] [--database-url URL] [--isolation | --no-isolation]

1. Builds this project into a ``.cloacina`` archive (pypa ``build`` + the manifest), as
   ``cloacina-ctl package . -o simple-demo.cloacina`` does.
2. Registers it (``Registry.register``): the archive is checked, stored in the database, installed
   into ``<home>/packages/<sha256>`` and loaded in a fresh worker process, which must find the
   workflows and fingerprints the manifest records.
3. Executes ``simple_demo::data_processing`` on the durable engine (``DefaultRunner``); its tasks run
   in the package's own worker process, whose prints appear below.

By default everything goes to a new temporary directory (printed at the start, removed at the end), so
the demo never touches ``~/.cloacina``; ``--home DIR`` keeps the database and installs there instead.
The database is the SQLite file ``cloacina.db`` in that home unless ``--database-url`` says otherwise.
The wheel is built in an isolated environment (hatchling is fetched from the package index) unless
hatchling is installed here, in which case it is built in place; ``--isolation``/``--no-isolation``
choose explicitly.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

from cloacina_host import DefaultRunner, HostError, Registry, package_workflow

PROJECT = Path(__file__).resolve().parent.parent


def say(line: str = "") -> None:
    print(line, flush=True)  # flushed: the worker's prints share this output


async def run_demo(home: Path, database_url: str | None, isolation: bool) -> int:
    say("🚀 Simple Packaged Workflow Demo")
    say("===============================")
    say()

    say("Step 1: Building workflow package...")
    archive = home / "simple-demo.cloacina"
    built = package_workflow(PROJECT, archive, isolation=isolation)
    say(f"✅ Package built: {built.size} bytes")
    say()

    say("Step 2: Setting up registry and loading package...")
    registry = Registry(database_url, home=home)
    try:
        # the archive is stored, installed, and loaded in a fresh worker: this source tree's build wins
        registry.register(archive, force=True, activate=True)
        say("✅ Package registered and loaded")
        say()

        say("Step 3: Executing workflow...")
        async with DefaultRunner(database_url, home=home, catalog=registry.catalog()) as runner:
            result = await runner.execute("simple_demo::data_processing", {})
    finally:
        await registry.aclose()
    if not result.ok:
        say(f"❌ Execution {result.execution_id} {result.status}: {result.error}")
        return 1

    report = result.context.get("final_report")
    say()
    say("📈 Final Report:")
    say(f"   Report ID: {report['report_id']}")
    say(f"   Records Processed: {report['summary']['total_processed']}")
    say(f"   Success Rate: {report['summary']['success_rate']}")
    say(f"   Generated: {report['generated_at']}")
    say()
    say("✅ Demo completed successfully!")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="Cloacina home to use and keep [default: a temporary directory]")
    parser.add_argument("--database-url", help="database [default: cloacina.db in the home]")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--isolation", dest="isolation", action="store_true", default=None, help="isolated build")
    group.add_argument("--no-isolation", dest="isolation", action="store_false", help="build in this environment")
    args = parser.parse_args(argv)
    isolation = args.isolation if args.isolation is not None else importlib.util.find_spec("hatchling") is None

    temporary = args.home is None
    home = Path(tempfile.mkdtemp(prefix="cloacina-demo-")) if temporary else args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    print(f"(Cloacina home for this demo: {home}{', removed at the end' if temporary else ''})", file=sys.stderr)
    try:
        return asyncio.run(run_demo(home, args.database_url, isolation))
    except HostError as exc:
        print(f"❌ {exc}", file=sys.stderr)
        return 1
    finally:
        if temporary:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
