"""Settings refuse what must not reach production, and say which variable is wrong."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tidtam.infra.settings import Settings, SettingsError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("TIDTAM_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(("variable", "value"), [
    ("TIDTAM_SECRET_KEY", "changeme"),
    ("TIDTAM_SMTP_PASSWORD", "secret"),
    ("TIDTAM_LINE_CHANNEL_ACCESS_TOKEN", "change-me"),
    ("TIDTAM_LINE_CHANNEL_SECRET", "xxx"),
])
def test_placeholder_secret_is_refused_outside_demo(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises((SettingsError, ValidationError), match=variable):
        Settings(_env_file=None)
    monkeypatch.setenv("TIDTAM_DEMO", "1")
    Settings(_env_file=None)  # demo mode accepts it


def test_mistyped_variable_is_refused(monkeypatch):
    monkeypatch.setenv("TIDTAM_SMTP_HOSTNAME", "mail.example")
    with pytest.raises((SettingsError, ValidationError), match="TIDTAM_SMTP_HOSTNAME"):
        Settings(_env_file=None)


def test_secret_from_file(monkeypatch, tmp_path):
    secret = tmp_path / "key"
    secret.write_text("a-real-random-key-of-enough-length-1234\n", encoding="utf-8")
    monkeypatch.setenv("TIDTAM_SECRET_KEY_FILE", str(secret))
    settings = Settings(_env_file=None)
    assert settings.session_secret == "a-real-random-key-of-enough-length-1234"


def test_web_needs_a_secret_key_outside_demo():
    with pytest.raises(SettingsError, match="TIDTAM_SECRET_KEY"):
        _ = Settings(_env_file=None).session_secret
    assert Settings(_env_file=None, demo=True).session_secret


def test_default_database_is_sqlite_under_the_data_dir(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path)
    assert settings.db_url == f"sqlite:///{tmp_path / 'tidtam.db'}"
    assert settings.timezone == "Asia/Bangkok"


def test_unknown_timezone_is_refused():
    with pytest.raises((ValidationError, Exception), match="Nowhere"):
        Settings(_env_file=None, timezone="Mars/Nowhere")


@pytest.mark.parametrize(("demo", "value"), [("0", "2024-07-16T10:00:00+07:00"),
                                             ("1", "2024-07-16T10:00:00")])
def test_a_demo_clock_needs_demo_mode_and_a_time_zone(monkeypatch, demo, value):
    monkeypatch.setenv("TIDTAM_DEMO", demo)
    monkeypatch.setenv("TIDTAM_DEMO_NOW", value)
    with pytest.raises((SettingsError, ValidationError), match="TIDTAM_DEMO_NOW"):
        Settings(_env_file=None)


def test_database_pool_from_the_environment(monkeypatch, tmp_path):
    from tidtam.infra.db import engine_of, pool_limits

    monkeypatch.setenv("TIDTAM_DB_POOL_SIZE", "4")
    monkeypatch.setenv("TIDTAM_DB_MAX_OVERFLOW", "2")
    monkeypatch.setenv("TIDTAM_DB_POOL_TIMEOUT", "2.5")
    settings = Settings(_env_file=None, data_dir=tmp_path)
    engine = engine_of(settings)
    assert pool_limits(engine).capacity == 6 and pool_limits(engine).timeout == 2.5
    engine.dispose()
    monkeypatch.setenv("TIDTAM_DB_POOL_SIZE", "0")
    with pytest.raises(ValidationError, match="db_pool_size"):
        Settings(_env_file=None)
