"""``vidsearch archive export`` and ``vidsearch restore`` through the CLI's ``main`` (in this
process, settings from the environment) on real Redis and Milvus Lite: the live version's
collection goes to the archive and comes back with its aliases; bad input is one line and exit 2."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.clients import Clients
from pipeline.milvus.columns import Columns
from pipeline.settings import get_settings
from pipeline.versions import ensure_initial, live_alias
from tests.pipeline.recovery.test_restore import columns
from vidsearch.cli.main import main

pytestmark = pytest.mark.integration

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def vidsearch(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], redis_url: str,
              milvus_uri: str, tmp_path: Path) -> Iterator[Cli]:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    for name, value in {"REDIS_URL": redis_url, "MILVUS_URI": milvus_uri, "REDIS_PREFIX": prefix,
                        "COLLECTION_PREFIX": prefix, "ARCHIVE_URL": str(tmp_path / "archive"),
                        "NUM_PARTITIONS": "2",
                        "DATA_DIR": str(tmp_path / "data")}.items():
        monkeypatch.setenv(f"VIDSEARCH_{name}", value)

    def run(*args: str) -> tuple[int, str, str]:
        get_settings.cache_clear()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    get_settings.cache_clear()


def test_export_then_restore_brings_the_live_version_back_with_its_aliases(vidsearch: Cli) -> None:
    get_settings.cache_clear()
    settings = get_settings()
    with Clients.from_settings(settings) as clients:
        version = ensure_initial(clients.versions, clients.store)  # the live version and aliases
        eight = columns(0, 60)
        vectors = np.random.default_rng(1).random((60, 512), dtype=np.float32)
        rows = Columns(eight.pks, vectors, eight.scalars)  # the settings' model: 512-d
        clients.store.upsert_columns(version.collection, rows)
        clients.store.flush(version.collection)
    code, out, err = vidsearch("archive", "export", "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == 60
    with Clients.from_settings(settings) as clients:
        clients.store.drop_alias(version.alias)
        clients.store.drop_alias(live_alias(settings))
        clients.store.drop(version.collection)
    code, out, err = vidsearch("restore", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["version"], report["rows"], report["milvus_rows"]) == (version.id, 60, 60)
    with Clients.from_settings(settings) as clients:
        assert clients.store.alias_target(live_alias(settings)) == version.collection
        assert clients.store.count(version.alias) == 60


def test_restore_of_an_unknown_version_or_an_empty_archive_is_one_line_and_exit_2(
    vidsearch: Cli,
) -> None:
    code, _out, err = vidsearch("restore", "nosuch-1")
    assert code == 2 and "no such version 'nosuch-1'" in err
    code, _out, err = vidsearch("restore")
    assert code == 2 and "the archive holds no rows of collection" in err
    code, _out, err = vidsearch("archive", "export")
    assert code == 2 and "Milvus has no collection" in err
