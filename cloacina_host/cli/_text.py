"""Text that comes from a package (manifest, plugin metadata) printed as data, never as terminal commands.

``safe_text`` is the packaging layer's (``_packaging/_text.py``): control characters, bidirectional
overrides and line separators shown escaped. Table cells are ``rich.text.Text``, so ``[red]`` in a
description is shown as it is, not taken as markup.
"""

from __future__ import annotations

from rich.text import Text

from .._packaging._text import safe_text


def safe_cell(value: object) -> Text:
    """``safe_text(value)`` as a rich ``Text`` (no markup), for table cells and ``print``; ``""`` for None."""
    return Text(safe_text(value))


__all__ = ["safe_cell", "safe_text"]
