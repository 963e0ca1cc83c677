"""The OWASP rule for spreadsheet cells (domain/cells.py), table-driven."""

from __future__ import annotations

import pytest

from domain.cells import inert, inert_row


@pytest.mark.parametrize(("typed", "written"), [
    ("=1+1", "'=1+1"),
    ("+66 81 234 5678", "'+66 81 234 5678"),
    ("-5", "'-5"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("\uff1d1+1", "'\uff1d1+1"),  # a full-width equals sign
    ("ศูนย์ฯ บ้านหนองบอน", "ศูนย์ฯ บ้านหนองบอน"),
    ("a=1", "a=1"),
    ("'=1", "'=1"),
    ("", ""),
])
def test_text_that_starts_like_a_formula_gets_a_quote(typed, written):
    assert inert(typed) == written


@pytest.mark.parametrize("value", [-5, 0, 23, -2.5, None, True])
def test_numbers_and_blanks_stay_what_they_are(value):
    assert inert(value) is value


def test_a_row_is_made_inert_cell_by_cell():
    assert inert_row(["2706", "=cmd", -3, None]) == ["2706", "'=cmd", -3, None]
