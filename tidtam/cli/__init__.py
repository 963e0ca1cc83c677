"""The `tidtam` command, one module per group: setup (init, user-add, demo-data), letters
(directives, load, close, directive new), work (launch, sweep, digest, compile, mark-done), look
(status, outbox), run (serve, web, pump, watch-flows, fake-line). May import every layer: it is
the top."""

from tidtam.cli import letters, look, run, setup, work  # noqa: F401  (each registers its commands)
from tidtam.cli.common import app

__all__ = ["app"]
