"""Infrastructure: settings, the database, the one clock, the project's paths, photo storage, and
the outbox pump wired to the configured channels. May import notifications, models and domain."""
