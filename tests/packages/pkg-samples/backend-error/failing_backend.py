"""A PEP 517 backend that fails the way real ones do: it prints, then raises."""

from __future__ import annotations

import sys


def build_wheel(wheel_directory: str, config_settings: object = None, metadata_directory: object = None) -> str:
    print("failing_backend: compiling the extension module...")
    print("failing_backend: SAMPLE-BACKEND-DETAIL error: cc exited with status 1", file=sys.stderr)
    raise RuntimeError("SAMPLE-BACKEND-FAILURE: the extension module did not compile")
