"""What the board page (``/directives/{slug}``) puts together in Python, the markup still drawn
by its templates' macros.

- The cells: a province's board has hundreds of cells but a few dozen kinds (step, state,
  report state, status, done from the report). board.html's ``cell_markup`` macro draws each
  kind once, with ``ITEM_ID`` where the item's id goes; ``board_cells`` puts each cell's item
  id into its kind's markup, so no template code runs per cell.
- The reporting-rate chart: ``chart_figure`` keeps the figure ``_chart.svg.j2`` drew for the
  same chart (the same letter, series, due days and day) in the same language, so a board read
  again before anything changed does not draw it again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from markupsafe import Markup

from models.board import StepRow
from tidtam.app.boards import PageCell
from tidtam.app.charts import RateChart

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
    return Markup("".join(out).strip())


FIGURES_KEPT = 64  # boards' charts (each some 20 kB of markup), the least recently drawn dropped
_figures: OrderedDict[tuple, Markup] = OrderedDict()
_figures_lock = threading.Lock()


def chart_figure(chart: RateChart, lang: str, draw: Callable[..., Markup], *args: Any,
                 **kwargs: Any) -> Markup:
    """``draw(chart, *args, **kwargs)`` (``_chart.svg.j2``'s ``figure``), or the figure it drew
    for a chart with the same contents in the same language: the directive's slug and reference
    number, the district or the whole country, the day, every point and every due day."""
    directive = chart.directive
    key = (lang, directive.slug, directive.reference_no,
           (chart.district.code, chart.district.name_th, chart.district.name_en)
           if chart.district else None, chart.national, chart.today,
           tuple(chart.series), tuple(chart.marks), args, tuple(sorted(kwargs.items())))
    with _figures_lock:
        figure = _figures.get(key)
        if figure is not None:
            _figures.move_to_end(key)
            return figure
    figure = draw(chart, *args, **kwargs)
    with _figures_lock:
        _figures[key] = figure
        while len(_figures) > FIGURES_KEPT:
            _figures.popitem(last=False)
    return figure
