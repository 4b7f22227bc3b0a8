"""The README cannot drift: its settings table, its CLI table and CI's test command."""

from __future__ import annotations

import re
from pathlib import Path

from vidsearch.cli.main import build_parser
from vidsearch.cli.settings_doc import settings_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BEGIN, END = "<!-- settings-table:begin", "<!-- settings-table:end -->"


def _between_markers() -> str:
    start = README.index(BEGIN)
    body = README[README.index("\n", start) + 1 : README.index(END)]
    return body.strip()


def test_the_settings_table_matches_the_settings_model() -> None:
    assert _between_markers() == settings_table()


def test_every_cli_command_is_in_the_readme() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name in subparsers.choices:  # type: ignore[union-attr]
        assert f"`vidsearch {name}" in README, name


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```sh\n(.+?)\n```", README)
    test_command = next(c for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command.replace("python3", "$PYTHON") in ci
