"""`python -m tidtam.cli …`: the same command as `tidtam …`."""

from tidtam.cli import app

app()
