"""The one clock: real, demo (from TIDTAM_DEMO_NOW, shared by the processes `serve` starts), fixed."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tidtam.infra.clock import (
    DemoClock,
    FixedClock,
    SystemClock,
    clock_at,
    clock_from_settings,
    epoch_env,
    instant_of,
    today,
)
from tidtam.infra.settings import Settings, SettingsError

ROOT = Path(__file__).parents[2]
DEMO_NOW = datetime(2024, 8, 6, 2, 0, tzinfo=UTC)  # Tuesday 09:00 in Bangkok


def demo_settings(**values) -> Settings:
    return Settings(_env_file=None, demo=True, demo_now=DEMO_NOW, **values)


def test_a_fixed_clock_always_says_its_instant_in_utc():
    bangkok = datetime.fromisoformat("2024-07-31T16:00:00+07:00")
    clock = FixedClock(bangkok)
    assert clock.now() == clock.now() == datetime(2024, 7, 31, 9, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_a_fixed_clock_refuses_a_naive_instant():
    with pytest.raises(ValueError, match="time zone"):
        FixedClock(datetime(2024, 7, 31, 16, 0))


def test_a_demo_clock_starts_at_the_chosen_moment_and_runs_on_at_the_real_pace():
    an_hour_ago = SystemClock().now() - timedelta(hours=1)
    clock = DemoClock(DEMO_NOW, epoch=an_hour_ago)
    reading = clock.now()
    assert DEMO_NOW + timedelta(hours=1) <= reading < DEMO_NOW + timedelta(hours=1, minutes=5)
    assert clock.now() >= reading


def test_without_an_epoch_a_demo_clock_starts_when_it_is_built():
    reading = DemoClock(DEMO_NOW).now()
    assert DEMO_NOW <= reading < DEMO_NOW + timedelta(minutes=5)


def test_the_settings_choose_the_clock():
    assert isinstance(clock_from_settings(Settings(_env_file=None, demo=True)), SystemClock)
    demo = clock_from_settings(demo_settings())
    assert isinstance(demo, DemoClock) and demo.start == DEMO_NOW
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    assert clock_from_settings(demo_settings(demo_epoch=epoch)) == DemoClock(DEMO_NOW, epoch)


def test_an_epoch_needs_a_demo_moment_and_a_time_zone():
    with pytest.raises((SettingsError, ValueError), match="TIDTAM_DEMO_EPOCH"):
        Settings(_env_file=None, demo=True, demo_epoch=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises((SettingsError, ValueError), match="TIDTAM_DEMO_EPOCH"):
        demo_settings(demo_epoch=datetime(2026, 1, 1))


def test_a_commands_clock_is_its_now_else_the_process_clock():
    instant = datetime(2024, 7, 31, 9, 0, tzinfo=UTC)
    assert clock_at(instant) == FixedClock(instant)
    assert instant_of("2024-07-31T16:00:00+07:00") == instant
    assert today(FixedClock(datetime(2024, 7, 31, 18, 0, tzinfo=UTC)), _bangkok()).isoformat() \
        == "2024-08-01"  # 01:00 the next morning in Bangkok


def test_a_flows_now_must_carry_its_offset():
    from domain.errors import InvalidInput

    with pytest.raises(InvalidInput, match="timezone"):
        instant_of("2024-07-31T16:00:00")


def test_processes_given_the_epoch_read_the_same_demo_time():
    """What `tidtam serve` does: build its clock, hand the epoch to every child. A child that
    ignored it would start its own demo time at DEMO_NOW, an hour behind this one."""
    parent = DemoClock(DEMO_NOW, epoch=SystemClock().now() - timedelta(hours=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDTAM_")}
    env.update(TIDTAM_DEMO="1", TIDTAM_DEMO_NOW=DEMO_NOW.isoformat(), **epoch_env(parent))
    code = ("from tidtam.infra.clock import process_clock; print(process_clock().now().isoformat())")
    before = parent.now()
    child = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                           text=True, check=True)
    after = parent.now()
    assert before <= datetime.fromisoformat(child.stdout.strip()) <= after


def test_only_a_demo_clock_has_an_epoch_to_hand_on():
    assert epoch_env(SystemClock()) == {}
    assert epoch_env(DemoClock(DEMO_NOW, datetime(2026, 1, 1, tzinfo=UTC))) == {
        "TIDTAM_DEMO_EPOCH": "2026-01-01T00:00:00+00:00"}


def _bangkok():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Bangkok")
