"""Adds ``reg_bulky/blob.bin`` to the wheel: 160 MiB of seeded random bytes, made at build time (not kept in git)."""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BLOB_MIB = 160


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="reg-bulky-"))
        out = self._tmp / "blob.bin"
        rng = random.Random(20261201)
        with out.open("wb") as f:
            for _ in range(BLOB_MIB):
                f.write(rng.randbytes(1024 * 1024))
        build_data["force_include"][str(out)] = "reg_bulky/blob.bin"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)
