"""docs/design.md's module map cannot go stale: it is the module docstrings, and every module has one.

The first two tests read the repository; the others run the generator on small trees of files."""

from __future__ import annotations

from pathlib import Path

from vidsearch.cli.module_map import (
    BEGIN,
    COMMAND,
    END,
    NO_DOCSTRING,
    module_map,
    replace_block,
    undocumented,
)

ROOT = Path(__file__).resolve().parents[3]
DESIGN = ROOT / "docs" / "design.md"


def _committed_map() -> str:
    text = DESIGN.read_text(encoding="utf-8")
    body_start = text.index("\n", text.index(BEGIN)) + 1
    return text[body_start : text.index(END)].strip()


def test_every_module_has_a_docstring_whose_first_line_says_what_it_holds() -> None:
    missing = undocumented(ROOT)
    assert missing == [], (
        f"modules without a docstring: {', '.join(missing)}. Open each with a docstring whose first "
        f"line says what the module holds, then run `{COMMAND}`"
    )


def test_the_design_docs_module_map_is_the_module_docstrings() -> None:
    assert _committed_map() == module_map(ROOT), (
        f"docs/design.md's module map differs from the module docstrings: run `{COMMAND}` and commit"
    )


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_module_without_a_docstring_is_named_and_marked_in_the_map(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "pipeline/__init__.py": '"""The domain."""\n',
        "pipeline/quiet.py": "X = 1\n",
        "pipeline/empty.py": '"""  """\n',
        "pipeline/told.py": '"""What it holds."""\n',
    })
    assert undocumented(root) == ["pipeline/empty.py", "pipeline/quiet.py"]
    assert f"| `pipeline/quiet.py` | {NO_DOCSTRING} |" in module_map(root)
    assert "| `pipeline/told.py` | What it holds. |" in module_map(root)


def test_a_directory_of_modules_without_an_init_is_named(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"workers/__init__.py": '"""Adapters."""\n', "workers/loose/a.py": '"""A."""\n'})
    assert undocumented(root) == ["workers/loose/__init__.py"]


def test_sub_packages_follow_their_parent_and_the_sandbox_is_one_row(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "vidsearch/__init__.py": '"""Interfaces."""\n',
        "vidsearch/cli/__init__.py": '"""The command."""\n',
        "vidsearch/cli/main.py": '"""Parses."""\n',
        "vidsearch/sandbox/__init__.py": '"""The Twelve Labs stand-in, a program of its own."""\n',
        "vidsearch/sandbox/server.py": "",
        "pipeline/__init__.py": '"""The domain."""\n',
        "pipeline/search/__init__.py": '"""Search."""\n',
    })
    text = module_map(root)
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    assert headings == [
        "### `pipeline/`", "### `pipeline/search/`", "### `vidsearch/`", "### `vidsearch/cli/`",
    ]
    assert "| `vidsearch/sandbox/` | The Twelve Labs stand-in, a program of its own. |" in text
    assert "server.py" not in text
    assert undocumented(root) == ["vidsearch/sandbox/server.py"]


def test_a_summary_is_the_first_paragraph_on_one_line_in_markdown(tmp_path: Path) -> None:
    docstring = '"""The ``index status|tune`` commands around :class:`Store`,\nwrapped.\n\nDetails."""\n'
    root = _tree(tmp_path, {"pipeline/__init__.py": '"""The domain."""\n', "pipeline/a.py": docstring})
    row = "| `pipeline/a.py` | The `index status\\|tune` commands around `Store`, wrapped. |"
    assert row in module_map(root)


def test_writing_replaces_only_what_lies_between_the_markers() -> None:
    text = f"# Design\n\n{BEGIN} (generated) -->\nold map\nmore\n{END}\n\n## State\n"
    expected = f"# Design\n\n{BEGIN} (generated) -->\nnew map\n{END}\n\n## State\n"
    assert replace_block(text, "new map") == expected
