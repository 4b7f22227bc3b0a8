"""The examples in config/ name every setting with its default, so they cannot drift from
pipeline/settings.py; the beat schedule example imports and runs a real ``vidsearch`` command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from celery.schedules import crontab

from pipeline.settings import Settings, env_name, load_settings
from vidsearch.cli.main import build_parser

CONFIG = Path(__file__).resolve().parents[1] / "config"
FIELDS = set(Settings.model_fields)
ENV_LINE = re.compile(r"^#?\s?([A-Z][A-Z0-9_]*)=(.*)$")


def env_example() -> dict[str, str]:
    lines = (CONFIG / ".env.example").read_text(encoding="utf-8").splitlines()
    return {m[1]: m[2] for m in map(ENV_LINE.match, lines) if m}


def test_the_example_toml_loads_and_sets_every_setting_with_a_default_to_that_default() -> None:
    path = CONFIG / "vidsearch.example.toml"
    table = tomllib.loads(path.read_text(encoding="utf-8"))["vidsearch"]
    defaults = Settings()
    with_default = {n for n, f in Settings.model_fields.items() if f.default is not None}
    assert set(table) == with_default
    loaded = load_settings(path)
    assert {n: getattr(loaded, n) for n in FIELDS} == {n: getattr(defaults, n) for n in FIELDS}


def test_the_example_toml_names_the_settings_without_a_default_in_comments() -> None:
    text = (CONFIG / "vidsearch.example.toml").read_text(encoding="utf-8")
    commented = set(re.findall(r"^# (\w+) = ", text, flags=re.MULTILINE))
    assert {n for n, f in Settings.model_fields.items() if f.default is None} <= commented


def test_the_env_example_names_the_variable_of_every_setting() -> None:
    missing = {env_name(n) for n in FIELDS} - set(env_example())
    assert not missing


def test_the_env_example_values_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    by_env = {env_name(n): n for n in FIELDS}
    examples = {k: v for k, v in env_example().items() if k in by_env}
    for name, value in examples.items():
        if Settings.model_fields[by_env[name]].default is not None:
            monkeypatch.setenv(name, value)
    loaded, defaults = load_settings(), Settings.model_construct()
    assert {n: getattr(loaded, n) for n in FIELDS} == {
        n: getattr(defaults, n) for n in FIELDS
    }


def test_the_beat_schedule_example_runs_the_backfill_nightly_with_a_valid_command() -> None:
    from config import beat_schedule

    entry = beat_schedule.BEAT_SCHEDULE["nightly-backfill"]
    assert isinstance(entry["schedule"], crontab)
    assert entry["task"] in beat_schedule.app.tasks
    assert "tick" not in beat_schedule.app.conf.beat_schedule  # workers tick by themselves
    argv = entry["args"][0]
    assert argv[:2] == ["vidsearch", "backfill"]
    args = build_parser().parse_args(argv[1:])
    assert args.handler == "backfill" and args.name == "nightly"
    with pytest.raises(ValueError, match="backfill` only"):
        beat_schedule.spawn_backfill(["rm", "-rf", "/"])


def test_vidsearch_beat_and_worker_load_the_schedule_file_given_with_schedule(tmp_path: Path) -> None:
    from pipeline.errors import ConfigError
    from workers.app import app, load_schedule

    schedule = tmp_path / "schedule.py"
    schedule.write_text('BEAT_SCHEDULE = {"hourly-x": {"task": "vidsearch.ops.x", "schedule": 3600.0}}\n')
    before = app.conf.beat_schedule
    try:
        load_schedule(app, schedule)
        assert "hourly-x" in app.conf.beat_schedule and "tick" not in app.conf.beat_schedule
    finally:
        app.conf.beat_schedule = before
    with pytest.raises(ConfigError, match="cannot load"):
        load_schedule(app, tmp_path / "no_such_schedule.py")
