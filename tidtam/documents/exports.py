"""Every spreadsheet tidtam writes: the provincial compilation (one XLSX of totals, districts and
sessions, or one CSV per table) and a directive's board (district × step, states in words).

Both formats are written from the same rows (``compilation_tables``, ``board_table``), so the
XLSX and the CSV can never disagree with each other or with the page. Each table keeps stable
keys (category and kind codes) in ``Table.header``; the files' header row is those keys in
words, Thai by default and English on request (``lang="en"``), from ``labels.json``'s
"headers". The "totals" table gives each code its Thai and English title. Only accepted
reports count: a district without one has blank figures.

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
from domain.thaidate import english_date, thai_date
from tidtam.app.boards import Board
from tidtam.app.labels import labels, status_th
from tidtam.app.national import NationalBoard, NationalRow
from tidtam.app.reporting import ReportView

Lang = Literal["th", "en"]
LANGS: tuple[Lang, ...] = ("th", "en")
TableName = Literal["totals", "districts", "sessions", "board", "steps", "national"]
TABLES: tuple[TableName, ...] = ("totals", "districts", "sessions")
BOM = "\ufeff"  # Excel reads a CSV as UTF-8 (Thai intact) only when it starts with this


@dataclass(frozen=True)
class Table:
    """One sheet / one CSV file: a header of keys and rows of plain values (None = blank)."""

    name: TableName
    header: list[str]
    rows: list[list[Any]]
    words: dict[Lang, list[str]] | None = None  # the header in words; None: from labels.json

    def header_in(self, lang: Lang, spec: DirectiveSpec | None = None) -> list[str]:
        """The header row a person reads: each key in Thai (the default) or English."""
        if self.words is not None:
            return self.words[lang]
        return [header_word(key, lang, spec) for key in self.header]


def header_word(key: str, lang: Lang, spec: DirectiveSpec | None) -> str:
    """One column key in words: a fixed key from labels.json, a category or kind by its title."""
    lang = lang if lang in LANGS else "th"
    words = labels()["headers"]
    if key in words:
        return words[key][lang]
    if key.startswith("places:"):
        return words["places"][lang].format(kind=_kind_title(key.removeprefix("places:"), lang, spec))
    if spec is not None:
        for category in spec.participant_categories:
            if category.code == key:
                return category.title_th if lang == "th" else category.title_en
    return key


def _kind_title(code: str, lang: Lang, spec: DirectiveSpec | None) -> str:
    if code == OTHER_KIND or spec is None:
        return labels()["headers"]["other_kind"][lang] if code == OTHER_KIND else code
    kind = next((k for k in form_of(spec).activity_kinds if k.code == code), None)
    return (kind.title_th if lang == "th" else kind.title_en) if kind else code


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


def compilation_xlsx(compilation: Compilation, spec: DirectiveSpec, lang: Lang = "th") -> bytes:
    """One workbook: sheets "totals", "districts", "sessions" (numbers as numbers)."""
    return _workbook(compilation_tables(compilation, spec).values(), spec, lang,
                     f"{spec.reference_no} — {spec.title_th}")


def _workbook(tables: Any, spec: DirectiveSpec | None, lang: Lang, title: str) -> bytes:
    """The tables as sheets named by their keys, each with its header in words, bold, frozen."""
    book = Workbook()
    book.remove(book.active)
    for table in tables:
        sheet = book.create_sheet(table.name)
        header = table.header_in(lang, spec)
        sheet.append(inert_row(header))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append(inert_row(row))
        _text_as_text(sheet)
        sheet.freeze_panes = "A2"
        for index, word in enumerate(header, start=1):
            longest = max([len(str(word))] + [len(str(r[index - 1] or "")) for r in table.rows])
            sheet.column_dimensions[get_column_letter(index)].width = min(60, max(8, longest + 2))
    book.properties.title = title
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


def compilation_csv(compilation: Compilation, spec: DirectiveSpec, table: TableName,
                    lang: Lang = "th") -> str:
    """One table as CSV text, starting with a BOM; write it as UTF-8 (``encoding="utf-8"``)."""
    if table not in TABLES:
        raise InvalidInput(f"no table {table!r}; choose one of {', '.join(TABLES)}",
                           f"ไม่มีตาราง {table!r} เลือกได้: {', '.join(TABLES)}")
    return _csv(compilation_tables(compilation, spec)[table], spec, lang)


def _csv(table: Table, spec: DirectiveSpec | None, lang: Lang) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(inert_row(table.header_in(lang, spec)))
    writer.writerows(inert_row(["" if value is None else value for value in row])
                     for row in table.rows)
    return BOM + out.getvalue()


# --- the board --------------------------------------------------------------------------------

def _due(day: Any, lang: Lang) -> str:
    return thai_date(day) if lang == "th" else english_date(day)


def board_table(board: Board, lang: Lang = "th") -> Table:
    """The board as the page shows it: a row per district (code, name), a column per step with
    the cell's state in words ("–" where the district has no such item), then the settled
    count and the overdue count. The step columns' words carry the step's due day."""
    cell_words = {state: words[lang] for state, words in labels()["board_cell"].items()
                  if state != "_about"}
    words = labels()["headers"]
    keys = ["district_code", "district", *[s.code for s in board.steps], "done", "overdue"]
    header = {lang_: [words["district_code"][lang_], words["district"][lang_],
                      *[words["step"][lang_].format(code=s.code, due=_due(s.due_on, lang_))
                        for s in board.steps],
                      words["done"][lang_], words["overdue"][lang_]] for lang_ in LANGS}
    rows = []
    for row in board.rows:
        cells = [row.cell(step) for step in board.steps]
        rows.append([row.district.code,
                     row.district.name_th if lang == "th" else row.district.name_en,
                     *[cell_words[c.state] if c else cell_words["none"] for c in cells],
                     f"{row.done_count}/{len(row.cells)}", row.overdue_count])
    return Table("board", keys, rows, header)


def board_steps(board: Board) -> Table:
    """The board's key: each step's code, titles and due day (the page shows it under the board)."""
    rows = [[s.code, s.title_th, s.title_en, s.due_on.isoformat(), thai_date(s.due_on)]
            for s in board.steps]
    return Table("steps", ["code", "title_th", "title_en", "due_on", "due_on_th"], rows)


def board_xlsx(board: Board, lang: Lang = "th") -> bytes:
    """The board (sheet "board") and its key (sheet "steps")."""
    d = board.directive
    return _workbook([board_table(board, lang), board_steps(board)], None, lang,
                     f"{d.reference_no} — {d.title_th}")


def board_csv(board: Board, lang: Lang = "th") -> str:
    """The board as CSV text with a BOM (Excel then reads the Thai)."""
    return _csv(board_table(board, lang), None, lang)


# --- the Department's national board ------------------------------------------------------------

def _rate_words(rate: Any, lang: Lang) -> str:
    """A national cell as the page says it: done x/y (p%) · on time q% ("–" where none expected)."""
    words = labels()["national_cell"]
    if not rate.expected:
        return words["none"][lang]
    return words["rate"][lang].format(actual=rate.actual, expected=rate.expected,
                                      percent=rate.percent, on_time=rate.on_time_percent)


def _report_words(row: NationalRow, lang: Lang) -> str:
    words = labels()["national_cell"]
    if row.report is not None:
        return words["on_time" if row.report_rate.on_time else "late"][lang]
    return words["not_sent" if row.report_rate.overdue else "not_yet"][lang]


def national_table(board: NationalBoard, lang: Lang = "th") -> Table:
    """The national board as the page shows it: a row per province, a column per step (done,
    share, share on time), all steps, the report to the Department; the country's row last."""
    words = labels()["headers"]
    country = labels()["national_cell"]["country"]
    keys = ["province_code", "province", *[s.code for s in board.steps], "all_steps", "report"]
    header = {lang_: [words["province_code"][lang_], words["province"][lang_],
                      *[words["step"][lang_].format(code=s.code, due=_due(s.due_on, lang_))
                        for s in board.steps],
                      words["all_steps"][lang_], words["report"][lang_]] for lang_ in LANGS}
    rows: list[list[Any]] = [
        [row.province.code, row.province.name_th if lang == "th" else row.province.name_en,
         *[_rate_words(row.cells.get(s.code), lang) if s.code in row.cells
           else labels()["national_cell"]["none"][lang] for s in board.steps],
         _rate_words(row.overall, lang), _report_words(row, lang)]
        for row in board.rows]
    reports = board.reports
    rows.append(["", country[lang], *[_rate_words(board.column(s.code), lang) for s in board.steps],
                 _rate_words(board.overall, lang), f"{reports.actual}/{reports.expected}"])
    return Table("national", keys, rows, header)


def national_xlsx(board: NationalBoard, lang: Lang = "th") -> bytes:
    d = board.directive
    return _workbook([national_table(board, lang)], None, lang, f"{d.reference_no} — {d.title_th}")


def national_csv(board: NationalBoard, lang: Lang = "th") -> str:
    return _csv(national_table(board, lang), None, lang)


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
                             [row for row in totals.rows if row[0] != "districts"],
                             totals.words)
    return tables


def report_xlsx(view: ReportView, lang: Lang = "th") -> bytes:
    """The district's report as a workbook: sheets "totals", "districts" (its row), "sessions"."""
    spec = view.spec
    return _workbook(report_tables(view).values(), spec, lang,
                     f"{spec.reference_no} — {spec.title_th}")


def report_csv(view: ReportView, table: TableName, lang: Lang = "th") -> str:
    """One table of the district's report as CSV text, starting with a BOM."""
    if table not in TABLES:
        raise InvalidInput(f"no table {table!r}; choose one of {', '.join(TABLES)}",
                           f"ไม่มีตาราง {table!r} เลือกได้: {', '.join(TABLES)}")
    return _csv(report_tables(view)[table], view.spec, lang)
