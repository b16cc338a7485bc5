"""The hostile-archive corpus: every archive here is built by the test, and each is refused by the
reader with a message that says what is wrong and where, exit status 1, and nothing written."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import random
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


# -- issue 10: sizes, shapes, layouts and text that must not hang, crash or fool the reader ---------


def _deep(levels: int) -> bytes:
    data = manifest_dict(WHEEL)
    text = json.dumps(data)
    nested = "[" * levels + "]" * levels
    manifest = text.replace('"summary": "A demo"', f'"summary": {nested}').encode()
    return raw_zip([("manifest.json", manifest), (MEMBER, WHEEL)], compression=zipfile.ZIP_STORED)


def _tasks(tasks: list[dict[str, Any]]) -> bytes:
    data = manifest_dict(WHEEL)
    data["workflows"][0]["tasks"] = tasks
    return _archive(json.dumps(data, separators=(",", ":")).encode())


def _chain(n: int, *, cycle: bool = False) -> list[dict[str, Any]]:
    tasks = [{"id": f"t{i}", "dependencies": [f"t{i - 1}"] if i else []} for i in range(n)]
    if cycle:
        tasks[0]["dependencies"] = [f"t{n - 1}"]
    return tasks


def _many_workflows(n: int) -> bytes:
    data = manifest_dict(WHEEL)
    wf = data["workflows"][0]
    data["workflows"] = [{**wf, "name": f"flow{i}"} for i in range(n)]
    return _archive(json.dumps(data, separators=(",", ":")).encode())


BOMB_BLOB_SIZE = 200 * 1024 * 1024


@functools.cache
def _bomb_blob() -> tuple[bytes, str]:
    """200 MiB that deflate shrinks about 120 to 1: under the per-member ratio limit of 200."""
    rng = random.Random(10)
    block = bytearray(4 * 1024 * 1024)
    for i in range(0, len(block), 3000):
        block[i : i + 8] = rng.randbytes(8)
    blob = bytes(block) * (BOMB_BLOB_SIZE // len(block))
    return blob, base64.urlsafe_b64encode(hashlib.sha256(blob).digest()).rstrip(b"=").decode()


def _bomb_wheel(name: str) -> bytes:
    """A real wheel of two 200 MiB members: 400 MiB unpacked, within every per-wheel limit."""
    blob, digest = _bomb_blob()
    dist_info = f"{name}-1.0.dist-info"
    small = {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{name}/blob{i}.bin,sha256={digest},{len(blob)}" for i in range(2)]
    for path, data in small.items():
        record.append(
            f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        )
    small[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i in range(2):
            zf.writestr(
                zipfile.ZipInfo(f"{name}/blob{i}.bin", date_time=(1980, 1, 1, 0, 0, 0)), blob, zipfile.ZIP_DEFLATED
            )
        for path, data in small.items():
            zf.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _with_bundled(bundled: dict[str, bytes], main: bytes = WHEEL) -> bytes:
    data = manifest_dict(main)
    data["bundled_wheels"] = [
        {"filename": n, "sha256": hashlib.sha256(w).hexdigest(), "size": len(w)} for n, w in bundled.items()
    ]
    members = [("manifest.json", json.dumps(data).encode()), (MEMBER, main)]
    members += [(f"wheels/{n}", w) for n, w in bundled.items()]
    return raw_zip(members)


@functools.cache
def _unpacked_bomb() -> bytes:
    return _with_bundled({f"bomb_{c}-1.0-py3-none-any.whl": _bomb_wheel(f"bomb_{c}") for c in "abc"})


def _dep_wheel(name: str, tag: str) -> tuple[str, bytes]:
    return f"{name}-2.0-{tag}.whl", make_wheel(
        name=name, version="2.0", tag=tag, entry_points="", modules={f"{name}/__init__.py": ""}
    )


# cp39: no interpreter the suite runs on (3.10 and later) can load either of these.
NATIVE_WIN = _dep_wheel("dep_win", "cp39-cp39-win_amd64")
NATIVE_LINUX = _dep_wheel("dep_linux", "cp39-cp39-manylinux_2_17_x86_64")
PURELIB_SHADOW = make_wheel(
    modules={"demo_pkg/__init__.py": "flow = None\n", "demo_pkg-1.0.0.data/purelib/json/__init__.py": ""}
)
PLATLIB_SHADOW = make_wheel(
    modules={"demo_pkg/__init__.py": "flow = None\n", "demo_pkg-1.0.0.data/platlib/asyncio.py": ""}
)
PTH_WHEEL = make_wheel(
    modules={"demo_pkg/__init__.py": "flow = None\n", "zz-startup.pth": "import os; os.system('id')\n"}
)
PURELIB_PTH = make_wheel(
    modules={"demo_pkg/__init__.py": "flow = None\n", "demo_pkg-1.0.0.data/purelib/hook.pth": "import x\n"}
)
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31m"


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
    "deep manifest (300 levels)": (lambda: _deep(300), "(MAX_JSON_DEPTH)", "manifest.json"),
    "deep manifest (200k levels)": (lambda: _deep(200_000), "(MAX_JSON_DEPTH)", "manifest.json"),
    "100k-task manifest": (
        lambda: _tasks([{"id": f"t{i}"} for i in range(100_000)]),
        "workflows[0] declares 100,000 tasks, more than the limit of 10,000 (MAX_TASKS_PER_WORKFLOW)",
        "manifest.json",
    ),
    "100k-task chain": (
        lambda: _tasks(_chain(100_000)),
        "declares 100,000 tasks, more than the limit of 10,000 (MAX_TASKS_PER_WORKFLOW)",
        "manifest.json",
    ),
    "long cycle (10,000 tasks)": (
        lambda: _tasks(_chain(10_000, cycle=True)),
        "has a dependency cycle: t0 -> t1 -> t2",
        "manifest.json",
    ),
    "too many workflows": (
        lambda: _many_workflows(1001),
        "declares 1,001 workflows, more than the limit of 1,000 (MAX_WORKFLOWS_PER_PACKAGE)",
        "manifest.json",
    ),
    "unpacked bomb across three wheels": (
        _unpacked_bomb,
        "unpack to more than 1,073,741,824 bytes together (MAX_UNPACKED_SIZE",
        "wheels/bomb_c-1.0-py3-none-any.whl",
    ),
    ".data/purelib shadows the stdlib": (
        lambda: _with_wheel(PURELIB_SHADOW),
        "module(s) json, which shadow the standard library",
        MEMBER,
    ),
    ".data/platlib shadows the stdlib": (
        lambda: _with_wheel(PLATLIB_SHADOW),
        "module(s) asyncio, which shadow the standard library",
        MEMBER,
    ),
    ".pth file": (lambda: _with_wheel(PTH_WHEEL), ".pth file(s) zz-startup.pth, which Python runs", MEMBER),
    ".pth file in .data/purelib": (lambda: _with_wheel(PURELIB_PTH), ".pth file(s) hook.pth", MEMBER),
    "control sequences in a refused field": (
        lambda: _archive(_manifest(**{ESCAPES: 1})),
        "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31m: Extra inputs are not permitted",
        "manifest.json",
    ),
    "mixed-platform wheels": (
        lambda: _with_bundled(dict([NATIVE_WIN])),
        "needs python cp39 on platform win_amd64, and this host is",
        f"wheels/{NATIVE_WIN[0]}",
    ),
    "wheels for two platforms": (
        lambda: _with_bundled(dict([NATIVE_WIN, NATIVE_LINUX])),
        "none of which this interpreter can load",
        f"wheels/{NATIVE_LINUX[0]}",
    ),
}

#: Refused by the registry's checks (validate), but shown by inspect: what inspect says of the platform.
SHOWN_BY_INSPECT = {
    "wheel for another platform": "cp27-cp27mu-manylinux1_x86_64 (compiled: platform manylinux1_x86_64",
    "mixed-platform wheels": (
        "py3-none-any, cp39-cp39-win_amd64 (compiled: platform win_amd64; python cp39); this host cannot load it: "
        f"wheel {NATIVE_WIN[0]!r} needs python cp39 on platform win_amd64"
    ),
    "wheels for two platforms": "(no platform loads every wheel: ",
}


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
        out = capsys.readouterr().out
        assert SHOWN_BY_INSPECT[case] in " ".join(out.split())
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


def test_control_sequences_and_markup_in_manifest_text_are_shown_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    data = manifest_dict(WHEEL)
    data["package"]["summary"] = f"evil{ESCAPES}[bold red]markup[/bold red]\u202egnp.exe"
    data["package"]["version"] = "1.0.0"
    data["workflows"][0]["description"] = f"desc{ESCAPES}"
    data["workflows"][0]["tasks"][0]["docstring"] = "doc\x1b[8mhidden"
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "escapes.cloacina"
        path.write_bytes(_archive(json.dumps(data).encode()))
        assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in out
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31m[bold red]markup[/bold red]\\u202egnp.exe" in out
    assert "desc\\x1b]0;pwned" in out
    assert "doc\\x1b[8mhidden" in out


def test_safe_text() -> None:
    from cloacina_host._packaging._render import safe_text

    assert safe_text("plain → text [b]x[/b] \\x1b") == "plain → text [b]x[/b] \\x1b"
    assert safe_text("a\x1b[2Jb\x9bc\x7f\x00") == "a\\x1b[2Jb\\x9bc\\x7f\\x00"
    assert safe_text("line1\nline2\r") == "line1\\nline2\\r"
    assert safe_text("line1\nline2\r", keep_newlines=True) == "line1\nline2\\r"


def test_py2_py3_wheels_are_read() -> None:
    name = "demo_pkg-1.0.0-py2.py3-none-any.whl"
    wheel = make_wheel(tag="py2.py3-none-any")  # the WHEEL file says Tag: py2.py3-none-any, as poetry-core writes
    data = manifest_dict(wheel, name)
    data["wheel"]["tags"] = [{"python": p, "abi": "none", "platform": "any"} for p in ("py2", "py3")]
    archive = read_archive(raw_zip([("manifest.json", json.dumps(data).encode()), (f"wheels/{name}", wheel)]))
    assert [str(t) for t in archive.facts[name].tags] == ["py2-none-any", "py3-none-any"]


def test_a_10000_task_chain_is_shown_iteratively(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "chain.cloacina"
    path.write_bytes(_tasks(_chain(10_000)))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  Tasks        10000\n" in out
    assert "Flow         t0 → t1 → t2 → t3 → t4 → t5 → … (9,988 more) → t9994 → t9995" in out
    assert "└── t9999  (no retries)  after t9998\n" in out  # deeper than MAX_TREE_DEPTH: listed flat
    assert main(["inspect", "--graph", "dot", str(path)]) == 0
    assert capsys.readouterr().out.count("->") == 9_999
