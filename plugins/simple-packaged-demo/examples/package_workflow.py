"""Package this workflow into a ``.cloacina`` archive: the tutorial's ``package_workflow`` example.

    python examples/package_workflow.py [OUTPUT] [--no-isolation]

Builds the wheel with pypa ``build``, reads the task graph in a separate process and writes
``simple-demo.cloacina`` (or OUTPUT). The same as ``cloacina-ctl package . -o simple-demo.cloacina``.
Needs the host (``pip install cloacina-host``); the package itself only depends on the kit.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cloacina_host import PackagingError, package_workflow

PROJECT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    isolation = "--no-isolation" not in argv
    args = [a for a in argv if a != "--no-isolation"]
    output = Path(args[0]) if args else Path("simple-demo.cloacina")

    print("📦 Packaging the simple-packaged-demo workflow")
    print("=============================================")
    try:
        result = package_workflow(PROJECT, output, isolation=isolation, progress=lambda step: print(f"  {step}"))
    except PackagingError as exc:
        print(f"❌ {exc}", file=sys.stderr)
        return 1

    manifest = result.manifest
    print(f"✅ Package built: {result.size} bytes")
    print(f"   {result.path}")
    print(f"   {manifest.package.name} {manifest.package.version}, wheel {manifest.wheel.filename}")
    for wf in manifest.workflows:
        print(f"   workflow {wf.key}: {' → '.join(t.id for t in wf.tasks)}")
        print(f"   fingerprint {wf.fingerprint}")
    print(f"Next: cloacina-ctl inspect {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
