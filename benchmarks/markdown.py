"""The one markdown table writer of the benchmarks (docs/benchmark.md, the ablations' .md files,
preset_vs_jpeg.md, the RTL table): a header, the ``|---|`` rule, one line per row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

MISSING = "–"  # a cell with no value (no overlap, no run)


def row(cells: Iterable) -> str:
    """``| a | b |``: one table line, every cell through str()."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(header: Sequence, rows: Iterable[Iterable] = ()) -> list[str]:
    """The lines of a table; callers append more rows with :func:`row`."""
    return [row(header), "|" + "---|" * len(header), *(row(r) for r in rows)]


def fmt(x: float | None, spec: str = ".2f") -> str:
    """``x`` formatted, or :data:`MISSING` for None."""
    return MISSING if x is None else format(x, spec)
