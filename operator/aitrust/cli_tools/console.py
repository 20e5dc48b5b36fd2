"""Rich output that degrades to plain text: no colour with --no-color/NO_COLOR, no boxes off a TTY."""

from __future__ import annotations

import sys
from typing import TextIO

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from aitrust.api.v1alpha1 import Tier

TIER_STYLES = {Tier.TRUSTED: "green", Tier.RESTRICTED: "yellow", Tier.QUARANTINED: "bold red"}
# Off a terminal nothing wraps: output is for grep, files and CI logs.
PLAIN_WIDTH = 4096


def make_console(no_color: bool = False, file: TextIO | None = None) -> Console:
    out = file if file is not None else sys.stdout
    isatty = getattr(out, "isatty", None)
    tty = bool(isatty()) if callable(isatty) else False
    return Console(
        file=out,
        no_color=no_color or None,
        highlight=False,
        emoji=False,
        soft_wrap=not tty,
        width=None if tty else PLAIN_WIDTH,
        force_terminal=tty,
    )


def new_table(console: Console, *columns: str, title: str | None = None) -> Table:
    """A table with borders on a terminal, and kubectl-like aligned columns elsewhere."""
    fancy = console.is_terminal
    table = Table(
        *columns,
        title=title if fancy else None,
        box=box.SIMPLE_HEAD if fancy else None,
        show_edge=fancy,
        pad_edge=False,
        header_style="bold" if fancy else "",
        title_justify="left",
    )
    if not fancy and title:
        emit(console, Text(title))
    return table


def tier_text(tier: Tier | None) -> Text:
    if tier is None:
        return Text("-")
    return Text(tier.value, style=TIER_STYLES[tier])


def emit(console: Console, renderable: RenderableType) -> None:
    """Print; off a terminal, without the padding Rich leaves at line ends."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    text = "\n".join(line.rstrip() for line in captured.get().splitlines())
    console.file.write(text + "\n")
