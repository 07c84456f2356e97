"""The one Markdown table writer of the project (evaluation reports, m2t tables, quickstart stages)."""
from __future__ import annotations

from typing import Iterable, Sequence


def _row(cells: Sequence) -> str:
    return "|" + "|".join(f" {c} " if str(c) else " " for c in cells) + "|"


def markdown_table(header: Sequence, rows: Iterable[Sequence]) -> str:
    """``| a | b |`` lines: the header, the ``|---|`` rule, then one line per row (cells as given)."""
    return "\n".join([_row(header), "|---" * len(header) + "|"] + [_row(r) for r in rows])
