"""Text that comes from a package (manifest, plugin metadata) printed as data, never as terminal commands.

``safe_text`` is the packaging layer's (``_packaging/_text.py``): control characters, bidirectional
overrides and line separators shown escaped. Table cells are ``rich.text.Text``, so ``[red]`` in a
description is shown as it is, not taken as markup.
"""

from __future__ import annotations

import datetime as dt

from rich.text import Text

from .._packaging._text import safe_text


def safe_cell(value: object) -> Text:
    """``safe_text(value)`` as a rich ``Text`` (no markup), for table cells and ``print``; ``""`` for None."""
    return Text(safe_text(value))


def local_time(iso: str | None) -> str:
    """An ISO 8601 timestamp of a JSON view as this machine's local time, to the second (``-`` for None)."""
    if iso is None:
        return "-"
    return dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def seconds(iso: str | None) -> float | None:
    """An ISO 8601 timestamp of a JSON view as seconds since the epoch (None stays None)."""
    return None if iso is None else dt.datetime.fromisoformat(iso).timestamp()


__all__ = ["local_time", "safe_cell", "safe_text", "seconds"]
