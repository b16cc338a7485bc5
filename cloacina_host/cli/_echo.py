"""What tasks write, shown on stderr while ``cloacina-ctl run`` executes (stdout carries only the result).

On a terminal each line is prefixed with its task id (``[task_id] line``) and printed through the
console that draws the progress table, above it; otherwise lines are written as they are.
``--quiet`` shows nothing. Either way the output is stored (``executions logs ID``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.text import Text

from .. import _output


@contextlib.contextmanager
def task_output_shown(console: Console, *, quiet: bool) -> Iterator[None]:
    """While the block runs, caught task output is shown on ``console`` (stderr's), or not at all."""
    if quiet:
        with _output.echo("quiet"):
            yield
        return
    if console.is_terminal:

        def show(label: str, line: _output.OutputLine) -> None:
            console.print(Text(f"[{label}] {line.display()}"), soft_wrap=True)

    else:

        def show(label: str, line: _output.OutputLine) -> None:
            stream = _output.real_stream("stderr")
            stream.write(line.display() + "\n")
            stream.flush()

    with _output.echo("lines", show):
        yield
