"""The hostile-archive corpus: every archive here is built by the test, and each is refused by the
reader with a message that says what is wrong and where, exit status 1, and nothing written."""

from __future__ import annotations

import json
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloacina_host import ArchiveError, read_archive
from cloacina_host._packaging import _zipsafe
from cloacina_host.cli import main

from .conftest import WHEEL_NAME, make_wheel, manifest_dict, raw_zip, task

WHEEL = make_wheel()
MEMBER = f"wheels/{WHEEL_NAME}"


def _manifest(**overrides: Any) -> bytes:
    return json.dumps(manifest_dict(WHEEL, **overrides)).encode()


def _archive(manifest: bytes | None = None, wheel: bytes = WHEEL, name: str = WHEEL_NAME) -> bytes:
    return raw_zip([("manifest.json", manifest or _manifest()), (f"wheels/{name}", wheel)])


def _with_wheel(wheel: bytes, name: str = WHEEL_NAME, **overrides: Any) -> bytes:
    data = manifest_dict(wheel, name, **overrides)
    return raw_zip([("manifest.json", json.dumps(data).encode()), (f"wheels/{name}", wheel)])


def _workflow_tasks(*tasks: dict[str, Any]) -> bytes:
    data = manifest_dict(WHEEL)
    data["workflows"][0]["tasks"] = list(tasks)
    return _archive(json.dumps(data).encode())


def _symlink() -> bytes:
    info = zipfile.ZipInfo(MEMBER, date_time=(1980, 1, 1, 0, 0, 0))
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("manifest.json", _manifest())
        zf.writestr(info, b"/etc/passwd")
    return buffer.getvalue()


def _forged_size() -> bytes:
    """manifest.json's central-directory entry says 10 bytes; its data inflates to far more."""
    data = bytearray(_archive())
    cd = data.rfind(b"PK\x01\x02", 0, data.rfind(b"PK\x01\x02"))  # the first central-directory entry
    assert data[cd + 46 : cd + 46 + len(b"manifest.json")] == b"manifest.json"
    struct.pack_into("<I", data, cd + 24, 10)
    return bytes(data)


def _bomb() -> bytes:
    return raw_zip([("manifest.json", _manifest()), (MEMBER, b"\0" * (8 * 1024 * 1024))])


def _many_members() -> bytes:
    return raw_zip([("manifest.json", _manifest()), *((f"wheels/w{i}.whl", b"x") for i in range(300))])


def _bzip2() -> bytes:
    return raw_zip([("manifest.json", _manifest()), (MEMBER, WHEEL)], compression=zipfile.ZIP_BZIP2)


def _encrypted() -> bytes:
    data = bytearray(_archive())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            flags = struct.unpack_from("<H", data, start + offset)[0]
            struct.pack_into("<H", data, start + offset, flags | 0x1)
            start += 4
    return bytes(data)


def _duplicate() -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate it is told to write
        return raw_zip([("manifest.json", _manifest()), (MEMBER, WHEEL), (MEMBER, WHEEL)])


FOREIGN = "demo_pkg-1.0.0-cp27-cp27mu-manylinux1_x86_64.whl"
FOREIGN_WHEEL = make_wheel(tag="cp27-cp27mu-manylinux1_x86_64")
_foreign_manifest = manifest_dict(FOREIGN_WHEEL, FOREIGN)
_foreign_manifest["wheel"]["tags"] = [{"python": "cp27", "abi": "cp27mu", "platform": "manylinux1_x86_64"}]
_foreign_manifest["wheel"]["pure"] = False
NOT_A_ZIP_WHEEL = b"this is not a zip file, whatever its name says" * 3
NO_DIST_INFO = raw_zip([("demo_pkg/__init__.py", b"flow = None\n")])
SHADOW_WHEEL = make_wheel(modules={"json/__init__.py": "", "demo_pkg/__init__.py": "flow = None\n"})

# name -> (archive bytes, a fragment of the message, the member concerned or None)
CORPUS: dict[str, tuple[Callable[[], bytes], str, str | None]] = {
    "empty file": (lambda: b"", "not a zip file", None),
    "not a zip": (lambda: b"#!/bin/sh\nrm -rf /\n" * 10, "not a zip file", None),
    "truncated": (lambda: _archive()[: len(_archive()) // 2], "truncated", None),
    "no manifest": (lambda: raw_zip([(MEMBER, WHEEL)]), "has no manifest.json", None),
    "manifest not first": (
        lambda: raw_zip([(MEMBER, WHEEL), ("manifest.json", _manifest())]),
        "manifest.json is member 2, not the first member",
        "manifest.json",
    ),
    "manifest not json": (lambda: _archive(b'{"format_version": 1,'), "is not valid JSON", "manifest.json"),
    "manifest not utf-8": (lambda: _archive(b'{"a": "\xff\xfe"}'), "not UTF-8", "manifest.json"),
    "manifest a list": (lambda: _archive(b"[1, 2]"), "must be a JSON object, not list", "manifest.json"),
    "no format_version": (
        lambda: _archive(json.dumps({"package": {}}).encode()),
        "has no format_version",
        "manifest.json",
    ),
    "unknown format_version": (
        lambda: _archive(_manifest(format_version=99)),
        "format_version 99, which this host does not read",
        "manifest.json",
    ),
    "schema: bad sha256": (
        lambda: _archive(_manifest(wheel={**manifest_dict(WHEEL)["wheel"], "sha256": "xyz"})),
        "does not follow the manifest schema: wheel.sha256",
        "manifest.json",
    ),
    "schema: unknown field": (
        lambda: _archive(_manifest(surprise=True)),
        "surprise: Extra inputs are not permitted",
        "manifest.json",
    ),
    "schema: no workflows": (lambda: _archive(_manifest(workflows=[])), "workflows:", "manifest.json"),
    "absolute path": (
        lambda: raw_zip([("manifest.json", _manifest()), ("/etc/cron.d/evil", b"x")]),
        "member '/etc/cron.d/evil' has an absolute path",
        "/etc/cron.d/evil",
    ),
    "dot-dot path": (
        lambda: raw_zip([("manifest.json", _manifest()), ("wheels/../../evil.whl", b"x")]),
        "member 'wheels/../../evil.whl' has a '..' component",
        "wheels/../../evil.whl",
    ),
    "backslash path": (
        lambda: raw_zip([("manifest.json", _manifest()), ("wheels\\..\\evil.whl", b"x")]),
        "uses a backslash",
        "wheels\\..\\evil.whl",
    ),
    "symlink member": (_symlink, f"member {MEMBER!r} is a symbolic link", MEMBER),
    "larger than declared": (
        _forged_size,
        "member 'manifest.json' does not decompress to its declared 10 bytes (CRC mismatch)",
        "manifest.json",
    ),
    "compression bomb": (_bomb, "beyond the limit of 200 to 1", MEMBER),
    "too many members": (_many_members, "holds 301 members, more than the limit of 256", None),
    "bzip2 compression": (_bzip2, "uses compression method 12", "manifest.json"),
    "encrypted": (_encrypted, "is encrypted", "manifest.json"),
    "duplicate member": (_duplicate, f"member {MEMBER!r} appears twice", MEMBER),
    "unexpected member": (
        lambda: raw_zip([("manifest.json", _manifest()), (MEMBER, WHEEL), ("run-me.sh", b"x")]),
        "unexpected member 'run-me.sh'",
        "run-me.sh",
    ),
    "wheel not in manifest": (
        lambda: raw_zip(
            [("manifest.json", _manifest()), (MEMBER, WHEEL), ("wheels/extra-1.0-py3-none-any.whl", WHEEL)]
        ),
        "member 'wheels/extra-1.0-py3-none-any.whl' is not listed in manifest.json",
        "wheels/extra-1.0-py3-none-any.whl",
    ),
    "wheel missing": (
        lambda: raw_zip([("manifest.json", _manifest())]),
        f"manifest.json lists {MEMBER!r}, but the archive has no such member",
        MEMBER,
    ),
    "wheel size differs": (
        lambda: _archive(_manifest(wheel={**manifest_dict(WHEEL)["wheel"], "size": 12})),
        "manifest.json declares 12",
        MEMBER,
    ),
    "wheel sha256 differs": (
        lambda: _archive(_manifest(wheel={**manifest_dict(WHEEL)["wheel"], "sha256": "0" * 64})),
        "but manifest.json declares 0000",
        MEMBER,
    ),
    "wheel not a zip": (lambda: _with_wheel(NOT_A_ZIP_WHEEL), "is not a wheel: it is not a zip file", WHEEL_NAME),
    "wheel without dist-info": (lambda: _with_wheel(NO_DIST_INFO), "has 0 .dist-info directories", WHEEL_NAME),
    "wheel bad file name": (
        lambda: _with_wheel(WHEEL, "demo_pkg.whl"),
        "'demo_pkg.whl' is not a valid wheel file name",
        "demo_pkg.whl",
    ),
    "wheel with unsafe member": (
        lambda: _with_wheel(make_wheel(extra={"../../.bashrc": b"evil"})),
        "member '../../.bashrc' has a '..' component",
        f"{WHEEL_NAME}!../../.bashrc",
    ),
    "wheel for another platform": (
        lambda: raw_zip(
            [("manifest.json", json.dumps(_foreign_manifest).encode()), (f"wheels/{FOREIGN}", FOREIGN_WHEEL)]
        ),
        "none of which this interpreter can load",
        f"wheels/{FOREIGN}",
    ),
    "wheel is another package": (
        lambda: _archive(_manifest(package={**manifest_dict(WHEEL)["package"], "name": "other"})),
        "but manifest.json describes other 1.0.0",
        MEMBER,
    ),
    "shadows the stdlib": (lambda: _with_wheel(SHADOW_WHEEL), "json, which shadow the standard library", MEMBER),
    "entry point not in wheel": (
        lambda: _with_wheel(make_wheel(entry_points="")),
        "names entry point 'flow', which the wheel does not declare",
        "manifest.json",
    ),
    "task graph cycle": (
        lambda: _workflow_tasks(task("a", "c"), task("b", "a"), task("c", "b")),
        "dependency cycle: ",
        "manifest.json",
    ),
    "unknown dependency": (
        lambda: _workflow_tasks(task("a"), task("b", "ghost")),
        "depends on 'ghost', which is not a task",
        "manifest.json",
    ),
    "duplicate task id": (
        lambda: _workflow_tasks(task("a"), task("a")),
        "lists task 'a' twice",
        "manifest.json",
    ),
}

#: Refused by the registry's checks (validate), but shown by inspect.
SHOWN_BY_INSPECT = {"wheel for another platform"}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_reader_refuses(case: str) -> None:
    make, fragment, member = CORPUS[case]
    with pytest.raises(ArchiveError) as info:
        read_archive(make())
    assert fragment in str(info.value)
    assert info.value.member == member
    assert info.value.exit_status == 1
    assert str(info.value).startswith("<archive bytes>: ")


@pytest.mark.parametrize("command", ["inspect", "validate"])
@pytest.mark.parametrize("case", sorted(CORPUS))
def test_cli_refuses_with_exit_1_and_writes_nothing(
    case: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, fragment, _member = CORPUS[case]
    path = tmp_path / "hostile.cloacina"
    path.write_bytes(make())
    before = sorted(tmp_path.rglob("*"))
    if command == "inspect" and case in SHOWN_BY_INSPECT:
        # inspect shows archives built for other platforms (it runs nothing); validate refuses them
        assert main([command, str(path)]) == 0
        assert "cp27-cp27mu-manylinux1_x86_64 (compiled: platform manylinux1_x86_64" in capsys.readouterr().out
        return
    assert main([command, str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {path}: ")
    assert fragment in captured.err
    assert "Traceback" not in captured.err
    assert sorted(tmp_path.rglob("*")) == before


def test_the_valid_archive_is_accepted(valid_archive: bytes) -> None:
    archive = read_archive(valid_archive)
    assert archive.manifest.package.name == "demo-pkg"
    assert archive.wheel_bytes == WHEEL
    assert archive.top_level_modules == ("demo_pkg",)


def test_limits_are_named_constants() -> None:
    assert _zipsafe.MAX_ARCHIVE_MEMBERS == 256
    assert _zipsafe.MAX_COMPRESSION_RATIO == 200
    assert _zipsafe.MAX_MEMBER_SIZE <= _zipsafe.MAX_TOTAL_SIZE


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no such file"):
        read_archive(tmp_path / "nope.cloacina")
