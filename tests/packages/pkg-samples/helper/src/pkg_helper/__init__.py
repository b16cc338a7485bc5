"""A helper library."""

from __future__ import annotations

GREETING = "hello from pkg_helper"


def double(value: int) -> int:
    return value * 2
