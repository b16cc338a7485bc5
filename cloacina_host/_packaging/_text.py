"""Text from an archive is data: ``safe_text`` makes it safe to print on a terminal.

Package metadata, manifest fields and names come from files the host does not trust. Printed raw,
an ``ESC [ ...`` sequence can recolour, move the cursor, retitle the terminal or hide what follows;
a bidirectional override can make text read differently from what it is. ``safe_text`` replaces
every C0 and C1 control character (ESC included, so no escape sequence survives), DEL, and the
Unicode bidirectional and line-separator controls with a visible escape (``\\x1b``, ``\\u202e``).
Rich markup is a separate matter: show such text through ``rich.text.Text`` (never as markup), or
``rich.markup.escape`` it.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_KEEP_NEWLINES = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: object, *, keep_newlines: bool = False) -> str:
    """``str(text)`` with control characters shown as escapes (``\\n``, ``\\x1b``, ``\\u202e``); ``""``
    for None; newlines kept when ``keep_newlines``."""
    if text is None:
        return ""
    s = text if isinstance(text, str) else str(text)
    return (_UNSAFE_KEEP_NEWLINES if keep_newlines else _UNSAFE).sub(_escape, s)
