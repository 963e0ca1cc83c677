"""The stylesheet's blocks close where they should.

A merge once dropped the closing brace of two ``@media`` blocks in web/static/tidtam.css; the
browser then read every later rule (the phone menu among them) as part of a media query and the
phone header grew to four lines. Each part of the sheet starts with a ``/* === name === */``
comment, and each must begin at the top level.
"""

from __future__ import annotations

import re
from pathlib import Path

SHEET = Path(__file__).resolve().parents[2] / "web" / "static" / "tidtam.css"


def _depths(css: str) -> list[tuple[int, int, str]]:
    """(line, depth before the line, the line) for every line, comments and strings skipped."""
    out, depth, i, line = [], 0, 0, 1
    lines = css.split("\n")
    starts = {sum(len(x) + 1 for x in lines[:n]): n + 1 for n in range(len(lines))}
    while i < len(css):
        if i in starts:
            line = starts[i]
            out.append((line, depth, lines[line - 1]))
        if css.startswith("/*", i):
            end = css.index("*/", i + 2) + 2
            for j in range(i + 1, end):  # lines inside the comment still get their depth
                if j in starts:
                    out.append((starts[j], depth, lines[starts[j] - 1]))
            i = end
            continue
        ch = css[i]
        if ch in "\"'":
            i = css.index(ch, i + 1) + 1
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            assert depth >= 0, f"tidtam.css line {line}: a '}}' closes nothing"
        i += 1
    assert depth == 0, f"tidtam.css ends with {depth} block(s) still open"
    return out


def test_every_block_in_the_stylesheet_closes():
    _depths(SHEET.read_text(encoding="utf-8"))


def test_every_part_of_the_stylesheet_starts_at_the_top_level():
    parts = [(n, d, text) for n, d, text in _depths(SHEET.read_text(encoding="utf-8"))
             if re.match(r"/\* === ", text)]
    assert parts, "the sheet's parts are marked /* === name === */"
    inside = [f"line {n}: {text[:60]}" for n, d, text in parts if d != 0]
    assert not inside, "parts that begin inside an unclosed block: " + "; ".join(inside)
