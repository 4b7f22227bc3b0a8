"""``vidsearch archive status|compact`` on an archive directory seeded through EmbeddingArchive
(copies of some primary keys included, as replays leave them); bad input is one line and exit 2.
The CLI's ``main`` runs in this process (settings from the environment, as a shell gives them)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.archive.store import EmbeddingArchive
from pipeline.settings import get_settings, load_settings
from tests.pipeline.archive.test_store import DIM, MODEL, columns
from vidsearch.cli.main import main


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


Cli = Callable[..., Run]


@pytest.fixture
def vidsearch(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    def run(archive_url: str, *args: str) -> Run:
        monkeypatch.setenv("VIDSEARCH_ARCHIVE_URL", archive_url)
        get_settings.cache_clear()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Run(code, out, err)

    yield run
    get_settings.cache_clear()


@pytest.fixture
def archive_dir(tmp_path: Path) -> str:
    url = str(tmp_path / "archive")
    archive = EmbeddingArchive.from_settings(load_settings(archive_url=url))
    assert archive is not None
    archive.append("vs_one", MODEL, DIM, columns([f"a-{i}" for i in range(5)]))
    archive.append("vs_one", MODEL, DIM, columns(["a-0", "a-1"], value=1.0))  # a replay
    archive.append("vs_two", MODEL, DIM, columns(["b-0"], category="sport"))
    return url


def test_status_lists_each_archived_collection_with_rows_and_copies(
    archive_dir: str, vidsearch: Cli
) -> None:
    proc = vidsearch(archive_dir, "archive", "status", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    by_name = {c["collection"]: c for c in report["collections"]}
    assert report["archive"] == archive_dir and sorted(by_name) == ["vs_one", "vs_two"]
    one = by_name["vs_one"]
    assert (one["rows"], one["stored_rows"], one["files"]) == (5, 7, 2)
    assert (by_name["vs_two"]["dimension"], by_name["vs_two"]["categories"]) == (DIM, ["sport"])
    text = vidsearch(archive_dir, "archive", "status")
    assert text.returncode == 0 and "vs_one" in text.stdout and "5 rows (7 stored)" in text.stdout


def test_compact_without_a_collection_rewrites_every_one_to_one_copy_per_pk(
    archive_dir: str, vidsearch: Cli
) -> None:
    proc = vidsearch(archive_dir, "archive", "compact", "--json")
    assert proc.returncode == 0, proc.stderr
    stats = {s["collection"]: s for s in json.loads(proc.stdout)}
    assert (stats["vs_one"]["rows_before"], stats["vs_one"]["rows_after"]) == (7, 5)
    assert (stats["vs_one"]["files_before"], stats["vs_one"]["files_after"]) == (2, 1)
    after = json.loads(vidsearch(archive_dir, "archive", "status", "--json").stdout)
    assert {c["collection"]: c["stored_rows"] for c in after["collections"]} == {"vs_one": 5, "vs_two": 1}


def test_compact_of_one_collection_names_it_in_its_summary(
    archive_dir: str, vidsearch: Cli
) -> None:
    proc = vidsearch(archive_dir, "archive", "compact", "vs_one")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("vs_one: 7 rows in 2 files -> 5 rows in 1 files")


def test_an_unknown_collection_or_an_archive_that_is_off_is_exit_2_with_one_line(
    archive_dir: str, vidsearch: Cli
) -> None:
    unknown = vidsearch(archive_dir, "archive", "compact", "vs_three")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "no collection vs_three (archived: vs_one, vs_two)" in unknown.stderr
    off = vidsearch("", "archive", "status")
    assert off.returncode == 2 and "VIDSEARCH_ARCHIVE_URL is empty" in off.stderr
