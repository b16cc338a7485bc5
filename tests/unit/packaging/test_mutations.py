"""Property: whatever is done to the bytes of a valid archive, the reader returns an archive or raises
``ArchiveError``, never anything else (no zipfile, zlib, struct, pydantic or Unicode error escapes)."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloacina_host import ArchiveError, Manifest, read_archive
from cloacina_host._packaging._writer import write_archive

from .conftest import WHEEL_NAME, make_wheel, manifest_dict, raw_zip

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def valid() -> bytes:
    wheel = make_wheel()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / WHEEL_NAME
        src.write_bytes(wheel)
        out = Path(tmp) / "valid.cloacina"
        write_archive(out, Manifest.model_validate(manifest_dict(wheel)), {WHEEL_NAME: src}, 315532800)
        return out.read_bytes()


def _read(data: bytes) -> None:
    error: ArchiveError | None = None
    try:
        read_archive(data)
    except ArchiveError as exc:
        error = exc
    if error is not None:
        assert str(error).startswith("<archive bytes>: ")
        assert error.exit_status == 1


def test_the_base_archive_is_valid() -> None:
    read_archive(valid())


@SETTINGS
@given(st.data())
def test_byte_mutations(data: st.DataObject) -> None:
    blob = bytearray(valid())
    for _ in range(data.draw(st.integers(1, 8), label="edits")):
        kind = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = data.draw(st.integers(0, max(len(blob) - 1, 0)))
        if kind == "flip" and blob:
            blob[at] ^= data.draw(st.integers(1, 255))
        elif kind == "set" and blob:
            blob[at : at + 4] = data.draw(st.binary(min_size=1, max_size=4))
        elif kind == "insert":
            blob[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del blob[at : at + data.draw(st.integers(1, 64))]
        else:
            del blob[at:]
    _read(bytes(blob))


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [path] + [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [path] + [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


@SETTINGS
@given(st.data())
def test_manifest_mutations(data: st.DataObject) -> None:
    wheel = make_wheel()
    manifest = manifest_dict(wheel)
    paths = _leaves(manifest)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        path = data.draw(st.sampled_from(paths[1:]))
        target: Any = manifest
        try:
            for key in path[:-1]:
                target = target[key]
            if data.draw(st.booleans(), label="delete"):
                del target[path[-1]]
            else:
                target[path[-1]] = data.draw(JSON, label="value")
        except (KeyError, IndexError, TypeError):
            continue
    text = json.dumps(manifest, allow_nan=True).encode()
    _read(raw_zip([("manifest.json", text), (f"wheels/{WHEEL_NAME}", wheel)]))
