"""Text that comes from a package (manifest, plugin metadata) printed as data, never as terminal commands.

Control characters (C0, DEL, C1: ESC among them), bidirectional overrides and line separators are
shown escaped (``\\x1b``, ``\\u202e``), so a description cannot move the cursor, recolour the terminal,
set the window title or reorder what is shown; table cells are ``rich.text.Text``, so ``[red]`` in a
description is shown as it is, not taken as markup.
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 (tab and newline too: a cell is one line), DEL, C1; bidi embeddings/overrides/isolates; LS, PS.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: object) -> str:
    """``value`` as text with every control character escaped (see the module); ``""`` for None."""
    return "" if value is None else _UNSAFE.sub(_escape, str(value))


def safe_cell(value: object) -> Text:
    """``safe_text(value)`` as a rich ``Text`` (no markup), for table cells and ``print``."""
    return Text(safe_text(value))
