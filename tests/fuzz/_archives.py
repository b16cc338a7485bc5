"""Strategies for hostile ``.cloacina`` inputs: byte mutations of real archives, zips built member by
member (names, compressions, lying headers), and manifests (mutated fields, deep nesting, huge graphs,
terminal control text). The unit tests' builders (``tests/unit/packaging``) make the valid parts."""

from __future__ import annotations

import io
import json
import struct
import warnings
import zipfile
from types import ModuleType
from typing import Any

from hypothesis import strategies as st

DEEP_MARK = "\x00deep\x00"
CONTROL = st.sampled_from(["\x1b[2J", "\x1b]0;owned\x07", "\x1b[31m", "\r", "\x08\x08", "\x00", "\x9b31m", "\u202e"])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
HOSTILE_TEXT = st.lists(TEXT | CONTROL, min_size=1, max_size=4).map("".join)


@st.composite
def byte_mutations(draw: st.DrawFn, bases: dict[str, bytes]) -> bytes:
    """One of ``bases`` with 1..8 edits: flipped, set, inserted or deleted bytes, or a truncation."""
    blob = bytearray(bases[draw(st.sampled_from(sorted(bases)), label="base")])
    for _ in range(draw(st.integers(1, 8), label="edits")):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate"]))
        at = draw(st.integers(0, max(len(blob) - 1, 0)))
        if kind == "flip" and blob:
            blob[at] ^= draw(st.integers(1, 255))
        elif kind == "set" and blob:
            blob[at : at + 4] = draw(
                st.binary(min_size=1, max_size=4) | st.sampled_from([b"\xff\xff\xff\xff", b"\0\0\0\0"])
            )
        elif kind == "insert":
            blob[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del blob[at : at + draw(st.integers(1, 64))]
        elif kind == "duplicate":
            blob[at:at] = blob[at : at + draw(st.integers(1, 4096))]
        else:
            del blob[at:]
    return bytes(blob)


MEMBER_NAMES = (
    st.sampled_from(
        [
            "manifest.json",
            "wheels/demo_pkg-1.0.0-py3-none-any.whl",
            "wheels/other-2.0-py3-none-any.whl",
            "wheels/",
            "../manifest.json",
            "/etc/passwd",
            "wheels/../../x.whl",
            "wheels\\evil.whl",
            "C:/x.whl",
            "wheels/a.whl\x00.txt",
            "wheels/" + "a" * 300 + ".whl",
            "MANIFEST.JSON",
            "wheels/ünïcødé-1.0-py3-none-any.whl",
            "wheels/x.whl/",
        ]
    )
    | TEXT
)


def _lie(blob: bytes, field: str, value: int) -> bytes:
    """Rewrite a size or count field of every central directory record (a lying zip header)."""
    data = bytearray(blob)
    offsets = {"file_size": 24, "compress_size": 20, "crc": 16}
    start = 0
    while (at := data.find(b"PK\x01\x02", start)) != -1:
        if field in offsets and at + offsets[field] + 4 <= len(data):
            struct.pack_into("<I", data, at + offsets[field], value & 0xFFFFFFFF)
        start = at + 4
    if field == "entries":
        at = data.rfind(b"PK\x05\x06")
        if at != -1 and at + 12 <= len(data):
            struct.pack_into("<HH", data, at + 8, value & 0xFFFF, value & 0xFFFF)
    return bytes(data)


@st.composite
def structured_zips(draw: st.DrawFn, helpers: ModuleType) -> bytes:
    """A zip assembled member by member: real or hostile names, real wheel and manifest or junk, any
    compression, repeated names, and optionally a central directory whose sizes or counts lie."""
    wheel = helpers.make_wheel()
    manifest = json.dumps(helpers.manifest_dict(wheel)).encode()
    contents = st.sampled_from([manifest, wheel, b"", b"{}", b"\0" * 4096]) | st.binary(max_size=256)
    members = draw(st.lists(st.tuples(MEMBER_NAMES, contents), min_size=0, max_size=6), label="members")
    if draw(st.booleans(), label="valid start"):
        members.insert(0, ("manifest.json", manifest))
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            if draw(st.booleans(), label="symlink"):
                info.external_attr = (0o120777 << 16) if draw(st.booleans()) else (0o040755 << 16)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # duplicate names warn
                zf.writestr(info, data)
    blob = buffer.getvalue()
    if draw(st.booleans(), label="lie"):
        field = draw(st.sampled_from(["file_size", "compress_size", "crc", "entries"]))
        blob = _lie(blob, field, draw(st.sampled_from([0, 1, 2**31, 2**32 - 1, 65535]) | st.integers(0, 2**32 - 1)))
    return blob


def _graph(shape: str, count: int) -> list[dict[str, Any]]:
    ids = [f"t{i}" for i in range(count)]
    if shape == "chain":
        return [{"id": t, "dependencies": [ids[i - 1]] if i else []} for i, t in enumerate(ids)]
    if shape == "fan":
        return [{"id": t, "dependencies": [ids[0]] if i else []} for i, t in enumerate(ids)]
    if shape == "cycle":
        return [{"id": t, "dependencies": [ids[i - 1]]} for i, t in enumerate(ids)]
    if shape == "diamonds":  # each task depends on the two before it: exponentially many paths
        return [{"id": t, "dependencies": ids[max(0, i - 2) : i]} for i, t in enumerate(ids)]
    return [{"id": t, "dependencies": []} for t in ids]


@st.composite
def manifest_documents(draw: st.DrawFn, helpers: ModuleType, mutations: ModuleType) -> bytes:
    """The text of a manifest: the valid one with fields replaced (any JSON, hostile text), nesting up to
    300,000 levels, task graphs up to 120,000 tasks (chains, fans, cycles, diamonds), many workflows."""
    wheel = helpers.make_wheel()
    manifest = helpers.manifest_dict(wheel)
    paths = mutations._leaves(manifest)
    for _ in range(draw(st.integers(0, 3), label="edits")):
        path = draw(st.sampled_from(paths[1:]))
        target: Any = manifest
        try:
            for key in path[:-1]:
                target = target[key]
            choice = draw(st.sampled_from(["delete", "json", "text", "deep"]))
            if choice == "delete":
                del target[path[-1]]
            elif choice == "json":
                target[path[-1]] = draw(mutations.JSON, label="value")
            elif choice == "text":
                target[path[-1]] = draw(HOSTILE_TEXT, label="text")
            else:
                target[path[-1]] = DEEP_MARK
        except (KeyError, IndexError, TypeError):
            continue
    package = manifest.get("package")
    for field in draw(st.lists(st.sampled_from(["summary", "author", "license"]), max_size=3), label="hostile"):
        if isinstance(package, dict):
            package[field] = draw(HOSTILE_TEXT)
    workflows = manifest.get("workflows")
    first = workflows[0] if isinstance(workflows, list) and workflows else None
    if isinstance(first, dict) and draw(st.booleans(), label="hostile description"):
        first["description"] = draw(HOSTILE_TEXT)
    if isinstance(first, dict) and draw(st.integers(0, 3), label="graph") == 0:
        shape = draw(st.sampled_from(["chain", "fan", "cycle", "diamonds", "flat"]))
        count = draw(st.sampled_from([2, 30, 1_000, 5_000, 20_000, 60_000, 120_000]) | st.integers(1, 2_000))
        first["tasks"] = _graph(shape, count)
    if isinstance(workflows, list) and draw(st.integers(0, 5), label="workflows") == 0:
        times = draw(st.sampled_from([2, 500, 5_000]))
        tasks = first.get("tasks") if isinstance(first, dict) else None
        if isinstance(first, dict) and isinstance(tasks, list) and len(tasks) * times > 250_000:
            # a large graph is drawn once: 5,000 copies of 120,000 tasks would be a text of gigabytes,
            # which exhausts the fuzz session's own memory before the host reads a byte of it
            copy = {**first, "tasks": tasks[:2]}
            manifest["workflows"] = [first] + [copy] * (len(workflows) * times - 1)
        else:
            manifest["workflows"] = workflows * times
    text = json.dumps(manifest, allow_nan=True, ensure_ascii=draw(st.booleans()))
    if '"\\u0000deep\\u0000"' in text:
        depth = draw(st.sampled_from([101, 500, 5_000, 200_000, 300_000]) | st.integers(1, 1_000), label="depth")
        kind = draw(st.sampled_from(["[]", "{}"]))
        nested = "[" * depth + "]" * depth if kind == "[]" else '{"a":' * depth + "1" + "}" * depth
        # one deep value is enough: the mark may have been copied into thousands of workflows, and
        # 300,000 levels in each would be gigabytes of text, exhausting the fuzz session before the host
        text = text.replace('"\\u0000deep\\u0000"', nested, 1).replace('"\\u0000deep\\u0000"', "null")
    return text.encode("utf-8", errors="surrogatepass")
