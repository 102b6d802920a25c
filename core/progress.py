"""Progress on a terminal for long commands (``pae generate``, ``load-events``, ``run``, ``demo``).

A bar with counts, rate and time left on an interactive stderr; nothing at all in logs and CI (no TTY), so
their output stays the final summary. Set ``PAE_PROGRESS=0`` to silence it on a terminal too.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def enabled() -> bool:
    return sys.stderr.isatty() and os.environ.get("PAE_PROGRESS", "1") not in ("0", "false", "no")


@contextmanager
def progress(description: str, total: float | None = None, unit: str = "") -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1, description=None)``; draws a bar only when ``enabled()``."""
    if not enabled():
        yield lambda n=1, description=None: None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn(unit), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True, redirect_stdout=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: float = 1, description: str | None = None) -> None:
            bar.update(task, advance=n, **({"description": description} if description else {}))

        yield advance
