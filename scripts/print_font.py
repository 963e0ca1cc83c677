"""Make tidtam/documents/fonts/: TLWG's Laksaman (TH Sarabun's metric twin) with one change,
so that text copied from a printed PDF keeps Thai words whole.

Why: Chromium prints each glyph at the position HarfBuzz shaped it to, and writes the font's own
advance widths (hmtx) into the PDF. Laksaman's Thai marks (ไม้ไต่คู้, tone marks, upper vowels)
have advance 0; over a tall consonant (ป ฝ ฟ) the font's anchors move the mark left by about
0.125 em, so in the PDF the mark's box ends 0.125 em before the next letter. Text extractors
(poppler's pdftotext, viewers' copy) read a gap over 0.1 em as a word break: "เป็น" came out as
"เป็ น". Here every mark (GDEF class 3) gets an advance of 150 units in hmtx. Shaping still
zeroes a mark's advance (HarfBuzz's Thai shaper goes by GDEF), so the page looks the same to the
pixel; only the width the PDF records for the mark changes, and the gap is gone.

Run once when the font changes (fontTools is not a dependency of tidtam):
    uv run --no-project --with fonttools python scripts/print_font.py
"""

from __future__ import annotations

from pathlib import Path

from fontTools.ttLib import TTFont

SOURCE = Path("/usr/share/fonts/truetype/tlwg")  # Debian's fonts-tlwg-laksaman
OUT = Path(__file__).resolve().parents[1] / "tidtam" / "documents" / "fonts"
MARK_ADVANCE = 150  # units of 1000/em: covers the 0.125 em shift, overlaps less than 0.2 em
FAMILY = "tidtam Laksaman"


def patch(source: Path, target: Path) -> int:
    font = TTFont(source)
    marks = [glyph for glyph, cls in font["GDEF"].table.GlyphClassDef.classDefs.items() if cls == 3]
    for glyph in marks:
        _, lsb = font["hmtx"][glyph]
        font["hmtx"][glyph] = (MARK_ADVANCE, lsb)
    names = font["name"]
    for record in names.names:  # a changed font carries another name (GPL font exception, good manners)
        if record.nameID in (1, 4, 6, 16):
            text = record.toUnicode()
            new = text.replace("Laksaman", FAMILY if record.nameID != 6 else "tidtamLaksaman")
            record.string = new
    font.save(target)
    return len(marks)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for style in ("Regular", "Bold"):
        name = "Laksaman.ttf" if style == "Regular" else "Laksaman-Bold.ttf"
        count = patch(SOURCE / name, OUT / f"tidtamLaksaman-{style}.ttf")
        print(f"{style}: {count} marks given an advance of {MARK_ADVANCE}")


if __name__ == "__main__":
    main()
