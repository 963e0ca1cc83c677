"""Errors a person sees, in Thai and English; the web and CLI map each kind to a status."""

from __future__ import annotations


class TidtamError(Exception):
    """Base for errors a person sees; carries Thai and English text."""

    def __init__(self, message_en: str, message_th: str):
        super().__init__(message_en, message_th)
        self.message_en = message_en
        self.message_th = message_th

    def __str__(self) -> str:
        return f"{self.message_th} / {self.message_en}"


class InvalidInput(TidtamError, ValueError):
    """Bad input: HTTP 422, CLI exit 2.

    Also a ValueError, so pydantic validators may raise it and keep the Thai text.
    """


class NotFound(TidtamError):
    """An unknown district, step or item: HTTP 404."""


class Forbidden(TidtamError):
    """A district the user may not see or change: HTTP 403."""


class Conflict(TidtamError):
    """A stale version, an item already done, a second launch: HTTP 409."""


class Unavailable(TidtamError):
    """Something the server needs is missing or down (e.g. Chromium for PDFs): HTTP 503."""
