"""Prefect flows, one per file and thin: read the clock's ``now``, call one use case, report.
May import documents, app, infra and everything below them."""
