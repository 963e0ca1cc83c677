"""Waiting for something to happen: poll a condition until a deadline, never a bare sleep.

``wait_until`` returns as soon as the condition holds (a fast machine never waits long) and
fails with a message when the deadline passes (a slow one gets the whole timeout).
``holds_for`` is the other side: a condition that must stay true for a whole window (nothing
happens), checked at every poll so a breach fails at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")
Message = str | Callable[[], str]


def _text(message: Message) -> str:
    return message() if callable(message) else message


def wait_until(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.05,
               message: Message = "the condition never held",
               check: Callable[[], None] | None = None) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy (which is
    returned) or ``timeout`` seconds have passed (the test fails with ``message``, which may be a
    function, e.g. to add a log). ``check`` is called between polls to fail early (a process that
    exited)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if check is not None:
            check()
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g} s: {_text(message)}")
        time.sleep(interval)


def holds_for(condition: Callable[[], object], seconds: float, interval: float = 0.05,
              message: Message = "the condition stopped holding") -> None:
    """Fail as soon as ``condition`` is falsy; pass if it stays truthy for ``seconds``."""
    started = time.monotonic()
    deadline = started + seconds
    while True:
        if not condition():
            pytest.fail(f"after {time.monotonic() - started:.2f} s: {_text(message)}")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)
