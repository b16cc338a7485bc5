"""The source tree of an earlier git commit, to measure beside this tree (``--baseline GITREF``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def checkout(ref: str, where: Path) -> Path:
    """The source tree of git commit ``ref``, extracted under ``where``."""
    archive = where / "baseline.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref], stdout=out, check=True)
    tree = where / "baseline"
    with tarfile.open(archive) as tar:
        if sys.version_info >= (3, 12):
            tar.extractall(tree, filter="data")
        else:  # our own repository's archive: nothing hostile in it
            tar.extractall(tree)
    return tree


def environment(tree: Path) -> dict[str, str]:
    """This process's environment with ``tree``'s host and kit first on ``PYTHONPATH``: the same
    interpreter and installed dependencies, the baseline's own code."""
    path = os.pathsep.join([str(tree), str(tree / "cloacina-workflow"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep)}
