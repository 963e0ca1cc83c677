"""Thai first, English on request: the UI's words live in ``web/locale/*.json``, not in code."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from starlette.requests import HTTPConnection

from domain.thaidate import DIGITS

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("th", "en")
DEFAULT_LANGUAGE = "th"
DEFAULT_DIGITS = "arabic"


@lru_cache
def catalog(lang: str) -> Mapping[str, str]:
    """The flat key → text table of one language, read once."""
    return json.loads((LOCALE_DIR / f"{lang}.json").read_text(encoding="utf-8"))


class Translator:
    """``t("board.title")``, ``t("flash.done", step="G1")``; an unknown key raises (a bug)."""

    def __init__(self, lang: str):
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        self._texts = catalog(self.lang)

    def __call__(self, key: str, **params: object) -> str:
        text = self._texts[key]
        return text.format(**params) if params else text

    def maybe(self, key: str, default: str) -> str:
        """A text for data-defined codes (a directive's own rung names) that may have none."""
        return self._texts.get(key, default)

    def local(self, obj: object, field: str) -> str:
        """The Thai or English variant of a bilingual column, e.g. ``title`` → ``title_th``."""
        return getattr(obj, f"{field}_{self.lang}")


def digits_of(conn: HTTPConnection) -> str:
    """The digits chosen beside the language switch ("thai" or "arabic", kept in the session
    as the language is), else Arabic."""
    digits = conn.session.get("digits") if "session" in conn.scope else None
    return digits if digits in DIGITS else DEFAULT_DIGITS


def language_of(conn: HTTPConnection) -> str:
    """The language chosen with the switch (kept in the session), else Thai."""
    lang = conn.session.get("lang") if "session" in conn.scope else None
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE
