"""Generated collections with planted truth: topic groups, near-duplicates and mis-filed videos.

``plant()`` returns a sandbox catalog (``--catalog``), the manifest lines to submit and the truth:

* **topics**: each topic has ten words and a category of the same name; a video of a topic has
  three scenes, each with two of the topic's words and one word of its own, and a title of two
  topic words, so videos of a topic are alike and no two videos are the same;
* **duplicates**: a copy of a video (same duration, scenes and title) under another URL, filed in
  the same category: only the sandbox's per-source noise differs;
* **mis-filed**: a video whose scenes are of one topic, filed in the manifest under another
  topic's category;
* **solo** (optional): a category holding one video of its own topic.

``python -m vidsearch.sandbox.planted OUT_DIR [--per-topic N ...]`` writes ``catalog.json``,
``manifest.csv`` and ``truth.json`` there.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOPICS: dict[str, tuple[str, ...]] = {
    "animals": ("dog", "cat", "horse", "parrot", "rabbit", "lion", "elephant", "owl", "fox", "whale"),
    "sports": ("football", "tennis", "cycling", "skiing", "rowing", "boxing", "golf", "hockey",
               "marathon", "climbing"),
    "cooking": ("pasta", "bread", "curry", "salad", "pancakes", "soup", "sushi", "grill", "cake",
                "dumplings"),
    "travel": ("paris", "tokyo", "desert", "harbour", "mountain", "temple", "island", "market",
               "canyon", "glacier"),
    "music": ("guitar", "piano", "drums", "violin", "choir", "concert", "jazz", "opera", "trumpet",
              "festival"),
    "science": ("rocket", "telescope", "microscope", "robot", "laboratory", "volcano", "galaxy",
                "chemistry", "fossil", "circuit"),
}
SOLO_WORDS = ("lighthouse", "fog", "beacon", "keeper")
SCENES = 3


@dataclass
class Planted:
    """A generated collection and its truth."""

    lines: list[tuple[str, str, str]] = field(default_factory=list)  # url, category, title
    catalog: list[dict[str, Any]] = field(default_factory=list)
    topic: dict[str, str] = field(default_factory=dict)  # url -> true topic
    duplicates: list[list[str]] = field(default_factory=list)  # [original, copy]
    misfiled: dict[str, str] = field(default_factory=dict)  # url -> true category

    def truth(self) -> dict[str, Any]:
        return {"topic": self.topic, "duplicates": self.duplicates, "misfiled": self.misfiled}

    def write(self, out: Path) -> None:
        """``catalog.json``, ``manifest.csv`` and ``truth.json`` in ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        (out / "catalog.json").write_text(json.dumps(self.catalog), encoding="utf-8")
        (out / "truth.json").write_text(json.dumps(self.truth(), indent=1), encoding="utf-8")
        with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["url", "category", "title"])
            writer.writerows(self.lines)


def _video(rng: random.Random, url: str, words: tuple[str, ...], own: str) -> dict[str, Any]:
    duration = float(rng.randrange(24, 49))
    step = duration / SCENES
    scenes = [{"start": round(j * step, 3), "end": round((j + 1) * step, 3),
               "words": [*rng.sample(words, 2), f"{own}s{j}"]} for j in range(SCENES)]
    return {"url": url, "duration": duration, "title": " ".join(rng.sample(words, 2)), "scenes": scenes}


def _add(planted: Planted, entry: dict[str, Any], category: str, topic: str) -> None:
    planted.catalog.append(entry)
    planted.lines.append((entry["url"], category, entry["title"]))
    planted.topic[entry["url"]] = topic


def plant(
    topics: int = 4, per_topic: int = 10, duplicates: int = 2, misfiled: int = 2, *,
    solo: bool = False, seed: int = 0, host: str = "https://cdn.example.com",
) -> Planted:
    """A collection of ``topics`` x ``per_topic`` videos plus the planted copies and mis-filings."""
    if not 2 <= topics <= len(TOPICS):
        raise ValueError(f"topics must be in 2..{len(TOPICS)}")
    if duplicates + misfiled > topics * per_topic:
        raise ValueError("more planted duplicates and mis-filed videos than videos")
    rng = random.Random(seed)
    names = list(TOPICS)[:topics]
    planted = Planted()
    n = 0
    for topic in names:
        for _ in range(per_topic):
            url = f"{host}/v/{seed}-{n:07d}.mp4"
            _add(planted, _video(rng, url, TOPICS[topic], f"p{seed}x{n}"), topic, topic)
            n += 1
    chosen = rng.sample(range(len(planted.lines)), duplicates + misfiled)
    for i in chosen[:duplicates]:
        original = planted.catalog[i]
        copy = {**original, "url": f"{host}/v/{seed}-{n:07d}-copy.mp4"}
        n += 1
        _add(planted, copy, planted.lines[i][1], planted.topic[original["url"]])
        planted.duplicates.append([original["url"], copy["url"]])
    for i in chosen[duplicates:]:
        url, category, title = planted.lines[i]
        wrong = rng.choice([c for c in names if c != category])
        planted.lines[i] = (url, wrong, title)
        planted.misfiled[url] = category
    if solo:
        _add(planted, _video(rng, f"{host}/v/{seed}-solo.mp4", SOLO_WORDS, f"p{seed}solo"), "solo", "solo")
    return planted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a planted catalog, manifest and truth")
    parser.add_argument("out", type=Path)
    parser.add_argument("--topics", type=int, default=4)
    parser.add_argument("--per-topic", type=int, default=10)
    parser.add_argument("--duplicates", type=int, default=2)
    parser.add_argument("--misfiled", type=int, default=2)
    parser.add_argument("--solo", action="store_true", help="add a category with one video")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    plant(args.topics, args.per_topic, args.duplicates, args.misfiled, solo=args.solo,
          seed=args.seed).write(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
