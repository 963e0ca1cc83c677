"""The provincial compilation as spreadsheets: one XLSX (totals, districts, sessions) or one CSV per table.

Both formats are written from the same rows (``compilation_tables``), so the XLSX and the
CSV can never disagree with each other or with the Compilation the page shows. Header cells
are stable keys (category and kind codes); the "totals" table gives each code its Thai and
English title. Only accepted reports count: a district without one has blank figures.

Every text cell goes out inert (``domain.cells``): a district's text that starts like a formula
gets a leading quote, and the XLSX stores every text as a string cell, never a formula; numbers
stay numbers.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Literal

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from domain.cells import inert_row
from domain.directive import DirectiveSpec, FormSpec
from domain.errors import InvalidInput
from domain.report import (
    NO_REPORT,
    OTHER_KIND,
    Compilation,
    DistrictEntry,
    ReportSummary,
    SessionEntry,
    form_of,
)
from domain.thaidate import thai_date
from tidtam.app.labels import labels, status_th
from tidtam.app.reporting import ReportView

TableName = Literal["totals", "districts", "sessions"]
TABLES: tuple[TableName, ...] = ("totals", "districts", "sessions")
BOM = "\ufeff"  # Excel reads a CSV as UTF-8 (Thai intact) only when it starts with this


@dataclass(frozen=True)
class Table:
    """One sheet / one CSV file: a header of keys and rows of plain values (None = blank)."""

    name: TableName
    header: list[str]
    rows: list[list[Any]]


def session_kind(form: FormSpec, entry: SessionEntry) -> tuple[str, str]:
    """The (Thai, English) title of a session's activity kind; a district's own name for "other"."""
    if entry.kind == OTHER_KIND:
        return entry.kind_other, entry.kind_other
    kind = next((k for k in form.activity_kinds if k.code == entry.kind), None)
    return (kind.title_th, kind.title_en) if kind else ("", "")


def session_heads(entry: SessionEntry) -> int:
    """Everyone counted in one session (unreadable counts left out)."""
    return sum(v or 0 for v in entry.participants.values())


def compilation_tables(compilation: Compilation, spec: DirectiveSpec) -> dict[TableName, Table]:
    """The three tables of the compilation, in the order the XLSX shows them."""
    return {"totals": _totals(compilation, spec), "districts": _districts(compilation, spec),
            "sessions": _sessions(compilation, spec)}


def _kind_columns(form: FormSpec) -> list[str]:
    """The form's kinds, then "other" (every kind a district named itself, added up)."""
    return [k.code for k in form.activity_kinds] + ([OTHER_KIND] if form.allow_other_kind else [])


def _places_by_column(summary: ReportSummary) -> dict[str, int]:
    places: dict[str, int] = {}
    for kind in summary.kinds:
        column = OTHER_KIND if kind.code.startswith(f"{OTHER_KIND}:") else kind.code
        places[column] = places.get(column, 0) + kind.places
    return places


def _totals(compilation: Compilation, spec: DirectiveSpec) -> Table:
    words = labels()["totals"]
    totals = compilation.totals
    rows: list[list[Any]] = [
        ["centers", "centers", words["centers"]["th"], words["centers"]["en"], totals.centers, None],
        ["sessions", "sessions", words["sessions"]["th"], words["sessions"]["en"], totals.sessions, None],
    ]
    rows += [["participants", c.code, c.title_th, c.title_en, totals.participants.get(c.code, 0), None]
             for c in spec.participant_categories]
    rows.append(["participants", "total", words["total"]["th"], words["total"]["en"],
                 totals.total_participants, None])
    used = {k.code: k for k in totals.kinds}
    for kind in form_of(spec).activity_kinds:
        found = used.pop(kind.code, None)
        rows.append(["kinds", kind.code, kind.title_th, kind.title_en,
                     found.places if found else 0, found.sessions if found else 0])
    rows += [["kinds", k.code, k.title_th, k.title_en, k.places, k.sessions] for k in used.values()]
    rows += [["districts", "accepted", words["accepted"]["th"], words["accepted"]["en"],
              len(compilation.accepted), None],
             ["districts", "missing", words["missing"]["th"], words["missing"]["en"],
              len(compilation.missing), None]]
    return Table("totals", ["section", "code", "title_th", "title_en", "value", "sessions"], rows)


def _districts(compilation: Compilation, spec: DirectiveSpec) -> Table:
    codes = [c.code for c in spec.participant_categories]
    kinds = _kind_columns(form_of(spec))
    header = ["district_code", "name_th", "name_en", "status", "status_th", "centers", "sessions",
              *codes, "total_participants", *[f"places:{k}" for k in kinds], "outcomes"]
    rows = []
    for entry in compilation.districts:
        row: list[Any] = [entry.code, entry.name_th, entry.name_en, entry.status, status_th(entry.status)]
        summary = entry.summary
        if summary is None:
            row += [None] * (len(header) - len(row))
        else:
            places = _places_by_column(summary)
            row += [summary.centers, summary.sessions, *[summary.participants.get(c, 0) for c in codes],
                    summary.total_participants, *[places.get(k, 0) for k in kinds],
                    len(summary.outcomes)]
        rows.append(row)
    return Table("districts", header, rows)


def _sessions(compilation: Compilation, spec: DirectiveSpec) -> Table:
    codes = [c.code for c in spec.participant_categories]
    form = form_of(spec)
    header = ["district_code", "district_name_th", "no", "held_on", "held_on_th", "center", "place",
              "kind", "kind_title_th", *codes, "total_participants"]
    rows = []
    for entry in compilation.accepted:
        for number, s in enumerate(entry.content.sessions if entry.content else [], start=1):
            rows.append([
                entry.code, entry.name_th, number, s.held_on.isoformat() if s.held_on else None,
                thai_date(s.held_on) if s.held_on else None, s.center, s.place,
                s.kind if s.kind != OTHER_KIND else f"{OTHER_KIND}:{s.kind_other}",
                session_kind(form, s)[0], *[s.participants.get(c) or 0 for c in codes],
                session_heads(s)])
    return Table("sessions", header, rows)


def compilation_xlsx(compilation: Compilation, spec: DirectiveSpec) -> bytes:
    """One workbook: sheets "totals", "districts", "sessions" (numbers as numbers)."""
    return tables_xlsx(compilation_tables(compilation, spec), spec)


def tables_xlsx(tables: dict[TableName, Table], spec: DirectiveSpec) -> bytes:
    """The tables as one workbook, a sheet each, text inert and numbers as numbers."""
    book = Workbook()
    book.remove(book.active)
    for table in tables.values():
        sheet = book.create_sheet(table.name)
        sheet.append(table.header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append(inert_row(row))
        _text_as_text(sheet)
        sheet.freeze_panes = "A2"
        for index, key in enumerate(table.header, start=1):
            longest = max([len(str(key))] + [len(str(r[index - 1] or "")) for r in table.rows])
            sheet.column_dimensions[get_column_letter(index)].width = min(60, max(8, longest + 2))
    book.properties.title = f"{spec.reference_no} — {spec.title_th}"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _text_as_text(sheet: Any) -> None:
    """Every text cell a string cell: openpyxl would store a text starting with ``=`` as a
    formula; ``inert_row`` already quoted those, this makes sure no other path slips one in."""
    for row in sheet.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"


def compilation_csv(compilation: Compilation, spec: DirectiveSpec, table: TableName) -> str:
    """One table as CSV text, starting with a BOM; write it as UTF-8 (``encoding="utf-8"``)."""
    _known(table)
    return table_csv(compilation_tables(compilation, spec)[table])


def _known(table: str) -> None:
    if table not in TABLES:
        raise InvalidInput(f"no table {table!r}; choose one of {', '.join(TABLES)}",
                           f"ไม่มีตาราง {table!r} เลือกได้: {', '.join(TABLES)}")


def table_csv(chosen: Table) -> str:
    """One table as CSV text, starting with a BOM, every text cell inert."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(inert_row(chosen.header))
    writer.writerows(inert_row(["" if value is None else value for value in row])
                     for row in chosen.rows)
    return BOM + out.getvalue()


# --- one district's report, as filed ---------------------------------------------------------------

def report_tables(view: ReportView) -> dict[TableName, Table]:
    """One district's report in the compilation's three tables, whatever its status (a draft's
    figures as typed): what the district files, before the province adds it up. The totals
    leave out the province's count of accepted and missing districts, which one report cannot
    say."""
    district, report = view.district, view.report
    entry = DistrictEntry(district.code, district.name_th, district.name_en,
                          str(report.status) if report else NO_REPORT, view.summary,
                          view.checked.content)
    tables = compilation_tables(Compilation(view.summary, (entry,)), view.spec)
    totals = tables["totals"]
    tables["totals"] = Table("totals", totals.header,
                             [row for row in totals.rows if row[0] != "districts"])
    return tables


def report_xlsx(view: ReportView) -> bytes:
    """The district's report as a workbook: sheets "totals", "districts" (its row), "sessions"."""
    return tables_xlsx(report_tables(view), view.spec)


def report_csv(view: ReportView, table: TableName) -> str:
    """One table of the district's report as CSV text, starting with a BOM."""
    _known(table)
    return table_csv(report_tables(view)[table])
