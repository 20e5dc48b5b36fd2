"""The user-facing commands beside `run`: scan, inventory, explain and get.

IO and presentation live here (files, stdin, Rich tables, SARIF/JSON, cluster reads); the
decisions come from the pure core (``aitrust.core.scan``, ``classify``, ``inventory``).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the scan, inventory, explain and get subcommands to the `aitrust` parser."""
    from aitrust.cli_tools import explain_cmd, inventory_cmd, scan_cmd

    scan_cmd.add_parser(sub)
    inventory_cmd.add_parser(sub)
    explain_cmd.add_parsers(sub)
