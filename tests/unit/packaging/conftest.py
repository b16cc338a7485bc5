"""Synthetic archives for the reader's tests: a real wheel layout and a real manifest, built in memory.

No build backend and no process: the reader never runs package code, so a wheel written here
by hand (dist-info, METADATA, WHEEL, RECORD, entry points, a module) is all it needs to see.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloacina_host._packaging._manifest import Manifest
from cloacina_host._packaging._writer import write_archive

WHEEL_NAME = "demo_pkg-1.0.0-py3-none-any.whl"
FINGERPRINT = "sha256:" + "ab" * 32

ArchiveFactory = Callable[..., bytes]


def make_wheel(
    *,
    name: str = "demo_pkg",
    version: str = "1.0.0",
    tag: str = "py3-none-any",
    modules: dict[str, str] | None = None,
    entry_points: str = "[cloacina.workflows]\nflow = demo_pkg:flow\n",
    extra: dict[str, bytes] | None = None,
) -> bytes:
    dist_info = f"{name}-{version}.dist-info"
    files: dict[str, bytes] = {
        path: text.encode() for path, text in (modules or {"demo_pkg/__init__.py": "flow = None\n"}).items()
    }
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.3\nName: {name.replace('_', '-')}\nVersion: {version}\nSummary: A demo\n"
        "Author: Demo Team\nLicense-Expression: MIT\nRequires-Python: >=3.10\nRequires-Dist: cloacina-workflow>=0.1\n"
    ).encode()
    files[f"{dist_info}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: {tag}\n".encode()
    if entry_points:
        files[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    files.update(extra or {})
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    return raw_zip(list(files.items()))


def task(task_id: str, *deps: str, **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "dependencies": list(deps), **extra}


def manifest_dict(wheel: bytes, wheel_name: str = WHEEL_NAME, /, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format_version": 1,
        "package": {
            "name": "demo-pkg",
            "version": "1.0.0",
            "summary": "A demo",
            "author": "Demo Team",
            "license": "MIT",
            "requires_python": ">=3.10",
            "requirements": ["cloacina-workflow>=0.1"],
        },
        "wheel": {
            "filename": wheel_name,
            "sha256": hashlib.sha256(wheel).hexdigest(),
            "size": len(wheel),
            "tags": [{"python": "py3", "abi": "none", "platform": "any"}],
            "pure": True,
        },
        "workflows": [
            {
                "name": "flow",
                "package": "demo_pkg",
                "description": "collect, process, report",
                "author": "Demo Team",
                "entry_point": {"name": "flow", "value": "demo_pkg:flow"},
                "fingerprint": FINGERPRINT,
                "tasks": [
                    task("collect_data", retry={"attempts": 2}),
                    task("process_data", "collect_data"),
                    task("generate_report", "process_data", timeout_s=30),
                ],
            }
        ],
        "cloacina_workflow_version": "0.1.0",
        "builder": {"name": "cloacina-host", "version": "0.1.0"},
        "created_at": "1980-01-01T00:00:00Z",
    }
    data.update(overrides)
    return data


def raw_zip(members: list[tuple[str, bytes]], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of exactly these members, in this order (manifest first or not: the caller decides)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            zf.writestr(info, data)
    return buffer.getvalue()


@pytest.fixture
def valid_archive(tmp_path: Path) -> bytes:
    """The bytes of a valid archive, written by the real writer."""
    wheel = make_wheel()
    wheel_path = tmp_path / "wheelsrc" / WHEEL_NAME
    wheel_path.parent.mkdir()
    wheel_path.write_bytes(wheel)
    out = tmp_path / "valid.cloacina"
    write_archive(out, Manifest.model_validate(manifest_dict(wheel)), {WHEEL_NAME: wheel_path}, 315532800)
    return out.read_bytes()
