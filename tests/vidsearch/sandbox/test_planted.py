"""Planted collections: the truth they carry matches the catalog and the manifest they write."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from vidsearch.sandbox import catalog
from vidsearch.sandbox.planted import main, plant


def test_copies_share_scenes_and_title_under_another_url_and_the_same_category() -> None:
    planted = plant(topics=3, per_topic=5, duplicates=2, misfiled=0)
    entries = {e["url"]: e for e in planted.catalog}
    filed = {url: category for url, category, _ in planted.lines}
    assert len(planted.duplicates) == 2
    for original, copy in planted.duplicates:
        assert original != copy
        assert entries[original]["scenes"] == entries[copy]["scenes"]
        assert entries[original]["title"] == entries[copy]["title"]
        assert filed[original] == filed[copy]


def test_misfiled_lines_carry_another_topic_category_and_the_truth_keeps_the_real_one() -> None:
    planted = plant(topics=4, per_topic=5, duplicates=0, misfiled=3, seed=5)
    filed = {url: category for url, category, _ in planted.lines}
    assert len(planted.misfiled) == 3
    for url, true_category in planted.misfiled.items():
        assert filed[url] != true_category == planted.topic[url]
    others = [u for u in filed if u not in planted.misfiled]
    assert all(filed[u] == planted.topic[u] for u in others)


def test_no_two_videos_have_the_same_scenes_unless_planted() -> None:
    planted = plant(topics=4, per_topic=10, duplicates=3, misfiled=2, solo=True)
    scenes = [json.dumps(e["scenes"]) for e in planted.catalog]
    assert len(scenes) - len(set(scenes)) == 3
    assert [line for line in planted.lines if line[1] == "solo"] == [planted.lines[-1]]


def test_the_written_catalog_loads_in_the_sandbox_and_the_manifest_has_every_line(tmp_path: Path) -> None:
    assert main([str(tmp_path), "--topics", "2", "--per-topic", "3", "--duplicates", "1",
                 "--misfiled", "1", "--solo"]) == 0
    entries = catalog.load(tmp_path / "catalog.json")
    with (tmp_path / "manifest.csv").open(encoding="utf-8") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == len(entries) == 2 * 3 + 1 + 1
    assert {line["url"] for line in lines} == set(entries)
    assert all(len(e.scenes) == 3 and e.duration for e in entries.values())
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert len(truth["duplicates"]) == 1 and len(truth["misfiled"]) == 1


def test_impossible_plantings_are_refused() -> None:
    with pytest.raises(ValueError, match="topics"):
        plant(topics=1)
    with pytest.raises(ValueError, match="more planted"):
        plant(topics=2, per_topic=1, duplicates=2, misfiled=1)
