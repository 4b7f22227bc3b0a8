"""Render docs/design.md's module map from the module docstrings (``python -m vidsearch.cli.module_map``).

The map walks ``pipeline/``, ``workers/`` and ``vidsearch/``: one section per package, introduced by
its ``__init__`` docstring, and one row per module with the summary of its docstring (its first
paragraph, on one line). Docstrings are read with :mod:`ast`: nothing is imported, so it is fast and
has no side effects. The Twelve Labs sandbox (``vidsearch/sandbox/``) is a separate program with its
own document (docs/sandbox.md): it is one row, its package docstring, and its modules are not listed.

A module without a docstring is not papered over: its cell says ``**no docstring**``,
:func:`undocumented` names it (sandbox modules included), and the command exits 1 after printing
or writing. ``--write FILE`` replaces what lies between the line holding ``<!-- module-map:begin``
and ``<!-- module-map:end -->``; tests/vidsearch/cli/test_module_map.py keeps docs/design.md in step.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "workers", "vidsearch")
SEPARATE_PROGRAMS = ("vidsearch/sandbox",)
"""Packages shown as one row: programs of their own that the map does not take apart."""
NO_DOCSTRING = "**no docstring**"
BEGIN, END = "<!-- module-map:begin", "<!-- module-map:end -->"
COMMAND = "python -m vidsearch.cli.module_map --write docs/design.md"
_ROLE = re.compile(r":[a-z]+:`([^`]+)`")


def summary(path: Path) -> str | None:
    """The first paragraph of the module's docstring on one line, or None without a docstring."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    if not docstring or not docstring.strip():
        return None
    return " ".join(docstring.strip().split("\n\n", 1)[0].split())


def _modules(root: Path) -> list[Path]:
    """Every module of the shipped packages, sorted by path."""
    return sorted(p for package in PACKAGES for p in (root / package).rglob("*.py"))


def undocumented(root: Path = ROOT) -> list[str]:
    """The modules (paths from ``root``) whose docstring is missing or empty, and the ``__init__.py``
    missing from a directory of modules."""
    modules = _modules(root)
    inits = {d / "__init__.py" for d in {p.parent for p in modules}}
    found = [p for p in modules if summary(p) is None] + [i for i in inits if not i.exists()]
    return sorted(p.relative_to(root).as_posix() for p in found)


def _in_program(directory: Path, root: Path) -> bool:
    rel = directory.relative_to(root).as_posix()
    return any(rel == p or rel.startswith(f"{p}/") for p in SEPARATE_PROGRAMS)


def _sections(root: Path) -> list[Path]:
    """The package directories the map shows, parents before their sub-packages."""
    directories = {p.parent for p in _modules(root)}
    shown = [d for d in directories if not _in_program(d, root)]
    return sorted(shown, key=lambda d: (PACKAGES.index(d.relative_to(root).parts[0]),
                                        d.relative_to(root).parts))


def _cell(text: str | None) -> str:
    if text is None:
        return NO_DOCSTRING
    return _ROLE.sub(r"`\1`", text).replace("``", "`").replace("|", "\\|")


def _rows(directory: Path, root: Path) -> list[str]:
    entries: list[tuple[str, str | None]] = [
        (p.relative_to(root).as_posix(), summary(p))
        for p in directory.glob("*.py") if p.name != "__init__.py"
    ]
    entries += [
        (f"{d.relative_to(root).as_posix()}/", summary(d / "__init__.py"))
        for d in directory.iterdir() if d.is_dir() and _in_program(d, root)
    ]
    return [f"| `{name}` | {_cell(text)} |" for name, text in sorted(entries)]


def _section(directory: Path, root: Path) -> str:
    init = directory / "__init__.py"
    intro = _cell(summary(init) if init.exists() else None)
    lines = [f"### `{directory.relative_to(root).as_posix()}/`", "", intro]
    rows = _rows(directory, root)
    if rows:
        lines += ["", "| module | what it holds |", "|---|---|", *rows]
    return "\n".join(lines)


def module_map(root: Path = ROOT) -> str:
    """The map in Markdown: a heading and an introduction per package, a table of its modules."""
    return "\n\n".join(_section(d, root) for d in _sections(root))


def replace_block(text: str, block: str) -> str:
    """``text`` with ``block`` between the module-map markers (the begin line is kept)."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"no {BEGIN} ... {END} markers")
    body_start = text.index("\n", text.index(BEGIN)) + 1
    return text[:body_start] + block + "\n" + text[text.index(END, body_start):]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the map, or write it into ``--write FILE``; exit 1 when a module has no docstring."""
    description = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m vidsearch.cli.module_map", description=description)
    parser.add_argument("--write", type=Path, metavar="FILE", help="replace the map between its markers")
    args = parser.parse_args(argv)
    block = module_map()
    if args.write is None:
        print(block)
    else:
        args.write.write_text(replace_block(args.write.read_text(encoding="utf-8"), block), encoding="utf-8")
    missing = undocumented()
    if missing:
        print(f"modules without a docstring: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
