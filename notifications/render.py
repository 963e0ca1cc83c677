"""Message texts come from Jinja templates (Thai wording lives there, not in code).

A message template is ``templates/<name>.txt.j2`` with two blocks: ``subject`` (collapsed to
one line) and ``body``. Templates may include shared parts such as ``_signature.txt.j2``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from domain.thaidate import thai_date, thai_datetime

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """One shared environment: strict about missing variables, escaping only HTML.

    ``auto_reload`` off: the templates ship with the code and do not change while it runs, and
    with it on every ``get_template`` checks the file's time on disk (a ``stat`` per message
    rendered: the sweep renders thousands; bench/README.md, P1)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        auto_reload=False,
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"),
                                     default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["thai_date"] = thai_date
    env.filters["thai_datetime"] = thai_datetime
    return env


def render_message(template: str, **context: object) -> tuple[str, str]:
    """Render ``reminder`` (or ``reminder.txt.j2``) into (subject, body)."""
    name = template if template.endswith(".j2") else f"{template}.txt.j2"
    tmpl = environment().get_template(name)
    ctx = tmpl.new_context(dict(context))
    subject = " ".join("".join(tmpl.blocks["subject"](ctx)).split())
    body = "".join(tmpl.blocks["body"](ctx)).strip("\n")
    return subject, body


def render_email_html(subject: str, body: str) -> str:
    """The HTML alternative of an email: the plain body, escaped, in paragraphs, links clickable."""
    paragraphs = [part.splitlines() for part in body.split("\n\n") if part.strip()]
    return environment().get_template("email.html.j2").render(subject=subject,
                                                              paragraphs=paragraphs)


# The template of an item's reminder by its standing on the day it is sent (render at send
# time, notifications/pump.py): one mapping, so renaming a template is a one-line change.
TEMPLATE_FOR_STANDING = {"ahead": "reminder", "due-today": "due_today", "late": "late"}


def standing_of(days: int) -> str:
    """``days``: working days from the due date to the day sent (< 0 ahead, 0 today, > 0 late)."""
    return "ahead" if days < 0 else "due-today" if days == 0 else "late"


def render_daily_email(cards: list, sent_on: object, salutation: str,
                       letters: list[tuple[str, str]] = ()) -> tuple[str, str, str]:
    """One e-mail listing a person's items of the day and the step letters (subject, body)
    written for them: (subject, plain text, HTML)."""
    from notifications.flex import standing_text

    rows = [{**card.__dict__, "standing": standing_text(card.days)} for card in cards]
    context = {"cards": rows, "sent_on": sent_on, "salutation": salutation,
               "letters": [{"subject": subject, "paragraphs": [
                   part.splitlines() for part in body.split("\n\n") if part.strip()],
                   "body": body} for subject, body in letters],
               "late": sum(1 for c in cards if c.days > 0),
               "today": sum(1 for c in cards if c.days == 0)}
    subject, body = render_message("daily_reminders", **context)
    html = environment().get_template("daily_reminders.html.j2").render(subject=subject,
                                                                        **context)
    return subject, body, html
