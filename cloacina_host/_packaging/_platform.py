"""What platform a whole archive needs: every wheel's tags together, and whether this host fits.

An archive loads only where every one of its wheels loads: the interpreters it accepts are the
intersection of each compiled wheel's interpreters, and its platforms the intersection of each
wheel's platforms (``any`` accepts all; ``manylinux``/``musllinux``/``macosx`` tags of different
versions meet at the highest of their minimum versions). ``inspect`` shows that; ``validate`` and
``register`` refuse a wheel this interpreter cannot load, naming what it needs and what this is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.tags import Tag

_GENERIC_PYTHON = re.compile(r"^py\d*$")
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_VERSIONED = re.compile(r"^(manylinux|musllinux|macosx)_(\d+)_(\d+)_(.+)$")
_MAC_ARCHES = {"universal2": ("arm64", "x86_64"), "universal": ("x86_64", "i386"), "intel": ("x86_64", "i386")}


@dataclass(frozen=True)
class _Platform:
    """A platform tag as (family, arch) and the minimum version it asks for (glibc, musl, macOS)."""

    family: str
    arch: str
    version: tuple[int, int] | None
    text: str


def _platforms(tag: str) -> list[_Platform]:
    for legacy, version in _LEGACY_MANYLINUX.items():
        if tag.startswith(legacy + "_"):
            return [_Platform("manylinux", tag[len(legacy) + 1 :], version, tag)]
    match = _VERSIONED.match(tag)
    if match:
        family, major, minor, arch = match.groups()
        arches = _MAC_ARCHES.get(arch, (arch,)) if family == "macosx" else (arch,)
        return [_Platform(family, a, (int(major), int(minor)), tag) for a in arches]
    return [_Platform(tag, "", None, tag)]


def _platform_text(p: _Platform) -> str:
    if p.version is None:
        return p.text
    return f"{p.family}_{p.version[0]}_{p.version[1]}_{p.arch}"


def wheel_tags(filename: str) -> frozenset[Tag]:
    """The tags of a wheel file name (``py2.py3-none-any`` expanded); ``ValueError`` when it is not one."""
    from packaging.utils import parse_wheel_filename

    return frozenset(parse_wheel_filename(filename)[3])


@dataclass(frozen=True)
class Needs:
    """What an archive needs to load: ``pure`` (any platform), else the interpreters and platforms
    every wheel accepts (empty ``conflict`` when they have some in common)."""

    tags: tuple[str, ...]
    pure: bool
    pythons: tuple[str, ...]
    platforms: tuple[str, ...]
    compiled: tuple[str, ...]
    conflict: str = ""

    def text(self) -> str:
        tags = ", ".join(self.tags)
        if self.pure:
            return f"{tags} (pure Python: any platform, any architecture)"
        if self.conflict:
            return f"{tags} (no platform loads every wheel: {self.conflict})"
        return f"{tags} (compiled: platform {', '.join(self.platforms) or 'any'}; python {', '.join(self.pythons)})"


def _is_pure(tags: Iterable[Tag]) -> bool:
    return all(t.abi == "none" and t.platform == "any" and t.interpreter.startswith("py") for t in tags)


def archive_needs(wheels: Mapping[str, Iterable[Tag]]) -> Needs:
    """What the archive whose wheels (filename -> tags; the package's own first) have these tags needs."""
    sets = {name: sorted(tags, key=str) for name, tags in wheels.items()}
    shown: list[str] = []
    for tags in sets.values():
        shown.extend(str(t) for t in tags if str(t) not in shown)
    compiled = [name for name, tags in sets.items() if not _is_pure(tags)]
    if not compiled:
        return Needs(tags=tuple(shown), pure=True, pythons=(), platforms=(), compiled=())
    # interpreters: wheels naming specific ones (cp311...) must agree; generic py3 wheels accept any python 3
    specific = [
        {t.interpreter for t in sets[n]}
        for n in compiled
        if any(not _GENERIC_PYTHON.match(t.interpreter) for t in sets[n])
    ]
    pythons = set.intersection(*specific) if specific else {t.interpreter for n in compiled for t in sets[n]}
    # platforms: (family, arch) every constraining wheel accepts, at the highest minimum version
    common: dict[tuple[str, str], _Platform] | None = None
    for name in compiled:
        mine: dict[tuple[str, str], _Platform] = {}
        for tag in sets[name]:
            if tag.platform == "any":
                mine = {}
                break
            for p in _platforms(tag.platform):
                key = (p.family, p.arch)
                if key not in mine or (p.version or (0, 0)) < (mine[key].version or (0, 0)):
                    mine[key] = p
        if not mine:
            continue  # this wheel runs on any platform
        if common is None:
            common = mine
            continue
        merged: dict[tuple[str, str], _Platform] = {}
        for key in common.keys() & mine.keys():
            a, b = common[key], mine[key]
            merged[key] = a if (a.version or (0, 0)) >= (b.version or (0, 0)) else b
        common = merged
    needs_of = "; ".join(f"{n} needs {', '.join(sorted({str(t) for t in sets[n]}))}" for n in compiled)
    if not pythons:
        return Needs(tuple(shown), False, (), (), tuple(compiled), conflict=f"no python fits every wheel: {needs_of}")
    if common is not None and not common:
        return Needs(tuple(shown), False, tuple(sorted(pythons)), (), tuple(compiled), conflict=needs_of)
    platforms: tuple[str, ...] = ()
    if common is not None:
        single = len(compiled) == 1
        platforms = tuple(sorted({p.text if single else _platform_text(p) for p in common.values()}))
    return Needs(tuple(shown), False, tuple(sorted(pythons)), platforms, tuple(compiled))


@cache
def supported_tags() -> frozenset[Tag]:
    from packaging.tags import sys_tags

    return frozenset(sys_tags())


def host_description() -> str:
    """This interpreter and platform, e.g. ``cp311 on manylinux_2_36_x86_64`` (its most specific tag)."""
    from packaging.tags import interpreter_name, interpreter_version, sys_tags

    best = next(iter(sys_tags()))
    return f"{interpreter_name()}{interpreter_version()} on {best.platform} (it loads e.g. {best})"


def misfit(filename: str, tags: Iterable[Tag]) -> str | None:
    """Why this interpreter cannot load the wheel, or None when it can."""
    tags = list(tags)
    if supported_tags() & set(tags):
        return None
    interpreters = ", ".join(sorted({t.interpreter for t in tags}))
    platforms = ", ".join(sorted({t.platform for t in tags}))
    return (
        f"wheel {filename!r} needs python {interpreters} on platform {platforms} (tags "
        f"{', '.join(sorted(str(t) for t in tags))}), but this host is {host_description()}"
    )
