"""The compiled report's own words (statuses, totals' titles), read from ``labels.json`` beside this
file: the province's snapshot to the Department, the printed form and the spreadsheets use them."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LABELS_FILE = Path(__file__).resolve().parent / "labels.json"


@lru_cache
def labels() -> dict:
    """Every label, as ``{"status": {...}, "totals": {...}}`` with ``th`` and ``en`` each."""
    return json.loads(LABELS_FILE.read_text(encoding="utf-8"))


def status_th(status: str) -> str:
    """A report status (or "none") as the province says it."""
    return labels()["status"].get(status, {"th": status})["th"]
