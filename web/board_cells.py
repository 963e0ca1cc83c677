"""The board page's cells, put together in Python: a province's board has hundreds of cells but a
few dozen kinds (step, state, report state, status, done from the report). board.html's
``cell_markup`` macro draws each kind once, with ``ITEM_ID`` where the item's id goes; this puts
each cell's item id into its kind's markup, so no template code runs per cell."""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup

from models.board import StepRow
from tidtam.app.boards import PageCell

ITEM_ID = "@item-id@"


def board_cells(columns: list[tuple[StepRow, PageCell | None]], draw: Callable[..., Markup],
                kinds: dict) -> Markup:
    """One row's cells, each as ``draw(code, state, report_state, status, from_report, ITEM_ID)``
    would draw it with the item's id; ``kinds`` keeps each kind's markup for the page's other
    rows. The row's first indentation and last line end are the template's own."""
    out: list[str] = []
    for step, cell in columns:
        if cell is None:
            key: object = step.code
            parts = kinds.get(key)
            if parts is None:
                parts = kinds[key] = [str(draw(step.code, None, None, None, False, ITEM_ID))]
            out.append(parts[0])
            continue
        key = cell.kind
        parts = kinds.get(key)
        if parts is None:
            parts = kinds[key] = str(draw(step.code, cell.state, cell.report_state,
                                          cell.item.status, cell.from_report, ITEM_ID)
                                     ).split(ITEM_ID)
        out.append(parts[0])
        out.append(str(cell.item.id))
        out.append(parts[1])
    return Markup("".join(out).strip())  # noqa: S704 (each part drawn by the autoescaped macro)
