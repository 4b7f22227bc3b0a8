"""The documentation cannot drift from the code.

docs/settings.md holds the settings table the settings model renders; docs/cli.md has a row for
every command naming exactly its options, and every exit code; the README names every command, its
test command is what CI runs, and it stays a front door (at most 200 lines). Every relative link
in the README, docs/ and bench/README.md points to a file that exists and, for a Markdown file, to
a heading it has.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import pytest

from vidsearch import exit_codes
from vidsearch.cli.main import build_parser
from vidsearch.cli.settings_doc import settings_table

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README_MAX_LINES = 200
BEGIN, END = "<!-- settings-table:begin", "<!-- settings-table:end -->"
# Commands whose options are documented on their own page rather than in their docs/cli.md row.
OPTIONS_ELSEWHERE = {"sandbox": DOCS / "sandbox.md"}
WITH_LINKS = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), ROOT / "bench" / "README.md"]

FENCE = re.compile(r"^```.*?^```[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:")
COMMAND_WORD = re.compile(r"^[a-z][a-z-]*$")


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of any level."""
    text = f"\n{text}"
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    following = re.search(r"^#", text[start:], flags=re.MULTILINE)
    return text[start : start + following.start()] if following else text[start:]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"}


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, set[str]]:
    """Every command ('submit', 'index tune', ...) with its options; a command that only groups
    subcommands (``index``, ``analytics``) is not one itself."""
    found: dict[str, set[str]] = {}
    for name, sub in _subparsers(parser).items():
        path = f"{prefix}{name}"
        children = _commands(sub, f"{path} ")
        if _options(sub) or not children:
            found[path] = _options(sub)
        found.update(children)
    return found


def _table_rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[1:]]


def _command_path(cell: str) -> str:
    """``vidsearch versions drop VERSION [--yes]`` -> ``versions drop``."""
    words = cell.strip("`").split()
    assert words[0] == "vidsearch", cell
    path = []
    for word in words[1:]:
        if not COMMAND_WORD.match(word):
            break
        path.append(word)
    return " ".join(path)


def _cli_rows() -> dict[str, str]:
    """docs/cli.md's command table: command path -> its first cell (the usage line)."""
    text = _section(_read(DOCS / "cli.md"), "# The CLI")
    cells = [row[0] for row in _table_rows(text)]
    paths = [_command_path(cell) for cell in cells]
    assert len(paths) == len(set(paths)), [p for p, n in Counter(paths).items() if n > 1]
    return dict(zip(paths, cells, strict=True))


def _mentions(text: str, option: str) -> bool:
    return re.search(rf"{re.escape(option)}(?![\w-])", text) is not None


def test_the_settings_table_in_docs_matches_the_settings_model() -> None:
    text = _read(DOCS / "settings.md")
    start = text.index(BEGIN)
    body = text[text.index("\n", start) + 1 : text.index(END)]
    assert body.strip() == settings_table()


def test_the_cli_reference_has_a_row_for_every_command_and_none_for_another() -> None:
    assert set(_cli_rows()) == set(_commands(build_parser()))


def test_every_command_row_names_exactly_the_options_of_its_command() -> None:
    rows = _cli_rows()
    for path, options in _commands(build_parser()).items():
        where = _read(OPTIONS_ELSEWHERE[path]) if path in OPTIONS_ELSEWHERE else rows[path]
        missing = {o for o in options if not _mentions(where, o)}
        assert not missing, (path, missing)
        unknown = set(re.findall(r"--[a-z][a-z0-9-]*", rows[path])) - options
        assert not unknown, (path, unknown)


def test_the_cli_reference_lists_every_exit_code_and_no_other() -> None:
    table = _table_rows(_section(_read(DOCS / "cli.md"), "## Exit codes"))
    documented = {int(row[0]) for row in table}
    codes = {value for name, value in vars(exit_codes).items() if name.startswith("EXIT_")}
    assert documented == codes


def test_the_readme_names_every_command_and_no_other() -> None:
    text = _section(_read(ROOT / "README.md"), "## The CLI at a glance")
    named = {_command_path(row[0]).split()[0] for row in _table_rows(text)}
    assert named == set(_subparsers(build_parser()))


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```sh\n(.+?)\n```", _read(ROOT / "README.md"))
    test_command = next(c for c in commands if "pytest" in c)
    ci = _read(ROOT / ".ci" / "run")
    assert test_command.replace("python3", "$PYTHON") in ci


def test_the_readme_is_a_front_door_of_at_most_200_lines() -> None:
    lines = _read(ROOT / "README.md").splitlines()
    assert len(lines) <= README_MAX_LINES


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: Counter[str] = Counter()
    anchors = set()
    for heading in HEADING.findall(FENCE.sub("", _read(path))):
        slug = _slug(heading)
        anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return anchors


def _relative_links(path: Path) -> list[str]:
    prose = CODE_SPAN.sub("", FENCE.sub("", _read(path)))
    return [target for target in LINK.findall(prose) if not SCHEME.match(target)]


@pytest.mark.parametrize("page", WITH_LINKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file_and_heading(page: Path) -> None:
    for link in _relative_links(page):
        target, _, anchor = link.partition("#")
        resolved = (page.parent / target).resolve() if target else page
        assert resolved.exists(), (link, resolved)
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), (link, sorted(_anchors(resolved)))


def test_the_link_check_sees_the_links_of_the_readme() -> None:
    links = _relative_links(ROOT / "README.md")
    assert "docs/cli.md" in links
    assert "docs/reliability.md#findings" in links
