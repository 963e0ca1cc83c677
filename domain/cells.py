"""Spreadsheet cells that cannot run code: the OWASP rule against CSV and formula injection.

A text a district typed (a center's name, a place, an outcome) that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return would be read by Excel or LibreOffice as a formula (or
a DDE call) in the coordinator's XLSX or CSV. OWASP's "CSV Injection" page: prefix such a cell
with a single quote, so it is shown as the text it is. The full-width forms (＝ ＋ － ＠) are
included: spreadsheet programs under an Asian input method may take them for their ASCII twins.
Only text is touched: a number (an int, a float) stays a number, a negative one too.
"""

from __future__ import annotations

from typing import TypeVar

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
QUOTE = "'"

V = TypeVar("V")


def is_dangerous(text: str) -> bool:
    """A text a spreadsheet program would evaluate rather than show."""
    return text.startswith(TRIGGERS)


def inert(value: V) -> V | str:
    """The value as a spreadsheet cell that shows, never runs: text starting with a trigger gets
    a leading quote; anything that is not text (numbers, None) is returned unchanged."""
    if isinstance(value, str) and is_dangerous(value):
        return QUOTE + value
    return value


def inert_row(row: list[V]) -> list[V | str]:
    """A row of cells, each made inert."""
    return [inert(value) for value in row]
