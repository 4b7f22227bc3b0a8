"""Search quality on a labelled library the benchmark generates (section 7 of ``bench/run``).

The library: ``videos`` sandbox catalog videos of 60-600 s, 3-6 scenes each. A scene's words are a
*common* word (one of 40, shared by many scenes) and a word of its own. Hybrid targets are scenes
whose words are ``x`` and ``y``, with two decoy scenes of ``x`` alone and two of ``y`` alone in other
videos, so text ``x`` alone and a clip of ``y`` alone each rank a decoy first, and only both together
single out the target. Every video is embedded by the sandbox (tasks over HTTP, Marengo 3.0,
6 s segments, visual + audio, clip + asset) and upserted into Milvus Lite.

Queries, each labelled with its target video and scene:

* text: the scene's two words;
* clip: a *different*, not ingested URL whose catalog holds a scene with the target scene's words,
  its range passed as the clip range (a sync video embed);
* image: an image URL whose file name is the scene's words;
* hybrid: text ``x`` plus a clip of another URL whose scene is ``y``.

Against the tutorial's method (the raw top-10 segments of one query vector, no grouping, no
fusion, a video's rank = its first segment's): video R@1, R@10 and MRR per query kind; moments
(mean IoU of the top hit's best moment with the target scene, R@1 at IoU >= 0.5 and >= 0.7) against
the tutorial's top segment; the score floor (the scores of the target videos against those of videos
sharing no word with the query, from which ``search_min_score`` is chosen); the hybrid subset
against each of its parts; Milvus WeightedRanker /
RRFRanker against client-side fusion; the result cache (hit latency, embed and Milvus calls of a
hit, and a hit turning into a miss when a matching video is written and flushed).
"""

from __future__ import annotations

import itertools
import json
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import redis

from bench.common import Row, log, pct, section, table
from pipeline.ingest.writer import SegmentWriter
from pipeline.milvus.filters import Filter
from pipeline.milvus.store import MilvusStore
from pipeline.search.query import Query, QueryPart
from pipeline.search.searcher import Searcher
from pipeline.segments import Segment, pack_vector
from pipeline.settings import Settings, load_settings
from pipeline.spec import EmbeddingSpec, item_key, segment_pk
from pipeline.state.keys import Keys
from pipeline.twelvelabs import TwelveLabsGateway
from vidsearch.stack.services import Service, start_milvus, start_redis, start_sandbox

HOST = "https://bench.example.org"
COMMON_WORDS = 40
MIN_SCENE_S = 10.0
TOP_K = 10
GOALS = {"text_r1": 0.95, "moment_r1": 0.8, "iou_gain": 0.15}


@dataclass(frozen=True)
class Scene:
    start: float
    end: float
    words: tuple[str, ...]


@dataclass
class Video:
    url: str
    duration: float
    category: str
    scenes: list[Scene]


@dataclass(frozen=True)
class Case:
    """One labelled query: what to ask, which video and scene it means."""

    kind: str
    query: Query
    target: str
    scene: tuple[float, float]
    parts: dict[str, Query] = field(default_factory=dict)


@dataclass
class Library:
    videos: list[Video]
    catalog: dict[str, Any]
    cases: list[Case]
    late: Video
    """In the catalog, not ingested: written during the cache measure (the first text query's words)."""


# --- the labelled library ---------------------------------------------------------------------
def _scenes(rng: random.Random, duration: float, n: int) -> list[tuple[float, float]]:
    """``n`` contiguous scenes of at least MIN_SCENE_S covering [0, duration]."""
    n = max(1, min(n, int(duration // MIN_SCENE_S)))
    shares = [rng.random() for _ in range(n)]
    spare = duration - n * MIN_SCENE_S
    bounds = [0.0]
    for share in shares[:-1]:
        bounds.append(round(bounds[-1] + MIN_SCENE_S + spare * share / sum(shares), 1))
    bounds.append(round(duration, 1))
    return list(itertools.pairwise(bounds))


def _videos(rng: random.Random, count: int) -> list[Video]:
    videos = []
    for v in range(count):
        duration = round(rng.uniform(60, 600), 1)
        ranges = _scenes(rng, duration, rng.randint(3, 6))
        scenes = [Scene(a, b, (f"c{rng.randrange(COMMON_WORDS):02d}", f"u{v:04d}s{k}"))
                  for k, (a, b) in enumerate(ranges)]
        videos.append(Video(f"{HOST}/lib/v{v:04d}.mp4", duration, f"cat{v % 8}", scenes))
    return videos


def _set_words(video: Video, index: int, words: tuple[str, ...]) -> tuple[float, float]:
    scene = video.scenes[index]
    video.scenes[index] = replace(scene, words=words)
    return scene.start, scene.end


def _query_clip(catalog: dict[str, Any], name: str, words: tuple[str, ...], length: float
                ) -> tuple[str, float, float]:
    """A not-ingested clip URL whose middle scene has ``words``; returns (url, start, end)."""
    url = f"{HOST}/queries/{name}.mp4"
    start, end = 8.0, round(8.0 + length, 1)
    catalog[url] = {"duration": end + 8.0, "scenes": [
        {"start": 0, "end": start, "words": [f"f{name.replace('-', '')}a"]},
        {"start": start, "end": end, "words": list(words)},
        {"start": end, "end": end + 8.0, "words": [f"f{name.replace('-', '')}b"]}]}
    return url, start, end


def _pick(free: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """``n`` scene slots of ``n`` different videos, taken out of ``free``."""
    picked: list[tuple[int, int]] = []
    for slot in free:
        if slot[0] not in {p[0] for p in picked}:
            picked.append(slot)
            if len(picked) == n:
                break
    for slot in picked:
        free.remove(slot)
    return picked


def _hybrid(rng: random.Random, videos: list[Video], catalog: dict[str, Any], count: int,
            used: set[tuple[int, int]]) -> list[Case]:
    free = [(v, k) for v, video in enumerate(videos) for k in range(len(video.scenes))]
    rng.shuffle(free)
    cases = []
    for h in range(count):
        (tv, tk), *decoys = _pick(free, 5)
        x, y = f"hx{h:03d}", f"hy{h:03d}"
        scene = _set_words(videos[tv], tk, (x, y))
        for i, (dv, dk) in enumerate(decoys):
            _set_words(videos[dv], dk, (x,) if i < 2 else (y,))
        used.update([(tv, tk), *decoys])
        url, start, end = _query_clip(catalog, f"hybrid-{h:03d}", (y,), 12.0)
        clip = Query(clip_url=url, clip_start_s=start, clip_end_s=end, top_k=TOP_K)
        parts = {"text": Query(text=x, top_k=TOP_K), "clip": clip}
        cases.append(Case("hybrid", replace(clip, text=x), videos[tv].url, scene, parts))
    return cases


def _plain_cases(rng: random.Random, videos: list[Video], catalog: dict[str, Any],
                 counts: dict[str, int], used: set[tuple[int, int]]) -> list[Case]:
    slots = [(v, k) for v, video in enumerate(videos) for k in range(len(video.scenes))
             if (v, k) not in used]
    cases = []
    for kind, count in counts.items():
        for i, (v, k) in enumerate(rng.sample(slots, count)):
            video, scene = videos[v], videos[v].scenes[k]
            words = scene.words
            if kind == "text":
                query = Query(text=" ".join(words), top_k=TOP_K)
            elif kind == "image":
                query = Query(image_url=f"{HOST}/img/{'-'.join(words)}.jpg", top_k=TOP_K)
            else:
                length = min(30.0, max(6.0, scene.end - scene.start))
                url, start, end = _query_clip(catalog, f"clip-{i:03d}", words, length)
                query = Query(clip_url=url, clip_start_s=start, clip_end_s=end, top_k=TOP_K)
            cases.append(Case(kind, query, video.url, (scene.start, scene.end)))
    return cases


def build_library(videos: int, queries: dict[str, int], seed: int = 7) -> Library:
    rng = random.Random(seed)
    lib = _videos(rng, videos)
    catalog: dict[str, Any] = {}
    used: set[tuple[int, int]] = set()
    cases = _hybrid(rng, lib, catalog, queries["hybrid"], used)
    cases += _plain_cases(rng, lib, catalog, {k: queries[k] for k in ("text", "clip", "image")}, used)
    first = next(c for c in cases if c.kind == "text")
    words = tuple((first.query.text or "").split())
    late = Video(f"{HOST}/lib/late-arrival.mp4", 60.0, "cat0", [Scene(0.0, 60.0, words)])
    for video in [*lib, late]:
        catalog[video.url] = {"duration": video.duration, "title": f"bench {video.url[-9:-4]}",
                              "scenes": [{"start": s.start, "end": s.end, "words": list(s.words)}
                                         for s in video.scenes]}
    return Library(lib, catalog, cases, late)


# --- ingest -------------------------------------------------------------------------------------
def embed_videos(gateway: TwelveLabsGateway, spec: EmbeddingSpec, videos: Sequence[Video]
                 ) -> dict[str, Any]:
    tasks = {v.url: gateway.create_task(v.url, spec) for v in videos}
    results: dict[str, Any] = {}
    while len(results) < len(tasks):
        for url, task_id in tasks.items():
            if url not in results:
                result = gateway.retrieve(task_id)
                if result.status != "processing":
                    results[url] = result
        time.sleep(0.05)
    return results


def segments_of(video: Video, result: Any, spec: EmbeddingSpec) -> list[Segment]:
    key = item_key(video.url, spec)
    return [Segment(pk=segment_pk(key, s.option, s.scope, s.start_s, s.end_s), item_key=key,
                    job_id="bench", url=video.url, category=video.category,
                    title=video.url.rsplit("/", 1)[-1], metadata="{}", model=spec.model,
                    option=s.option, scope=s.scope, start_s=s.start_s, end_s=s.end_s,
                    vector=pack_vector(s.embedding))
            for s in result.segments]


def ingest(settings: Settings, store: MilvusStore, videos: Sequence[Video]) -> int:
    spec = EmbeddingSpec.from_settings(settings)
    collection = store.ensure_collection(settings.model, settings.dimension)
    rows = 0
    results = embed_videos(TwelveLabsGateway(settings), spec, videos)
    batch: list[Segment] = []
    for video in videos:
        batch += segments_of(video, results[video.url], spec)
        if len(batch) >= 2000:
            store.upsert(collection, batch)
            rows, batch = rows + len(batch), []
    store.upsert(collection, batch)
    store.flush(collection)
    return rows + len(batch)


# --- measures ------------------------------------------------------------------------------------
def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


@dataclass
class Outcome:
    """Where the target came (1-based, None: not in the top 10) and the top hit's span."""

    rank: int | None
    span: tuple[float, float] | None
    ms: float


def summary(cases: Sequence[Case], outcomes: Sequence[Outcome]) -> dict[str, float]:
    n = len(outcomes)
    ious = [iou(o.span, c.scene) if o.rank == 1 and o.span else 0.0
            for c, o in zip(cases, outcomes, strict=True)]
    return {
        "n": n,
        "r1": sum(o.rank == 1 for o in outcomes) / n,
        "r10": sum(o.rank is not None for o in outcomes) / n,
        "mrr": sum(1 / o.rank for o in outcomes if o.rank) / n,
        "iou": sum(ious) / n,
        "iou50": sum(i >= 0.5 for i in ious) / n,
        "iou70": sum(i >= 0.7 for i in ious) / n,
        "p50_ms": pct([o.ms for o in outcomes], 50),
        "p95_ms": pct([o.ms for o in outcomes], 95),
    }


def ours(searcher: Searcher, case: Case, query: Query | None = None) -> Outcome:
    started = time.perf_counter()
    hits = searcher.search(query or case.query).hits
    ms = (time.perf_counter() - started) * 1000
    urls = [h.url for h in hits]
    rank = urls.index(case.target) + 1 if case.target in urls else None
    span = (hits[0].start_s, hits[0].end_s) if hits else None
    return Outcome(rank, span, ms)


def tutorial(searcher: Searcher, store: MilvusStore, case: Case) -> Outcome:
    """The tutorial: one query vector, raw top-10 segments, a video ranked by its first segment."""
    part = case.query.parts()[0]
    vector = searcher.embed_part(part)
    started = time.perf_counter()
    raw = store.search_where(searcher.collection, vector, Filter(scope="clip"), limit=TOP_K)
    ms = (time.perf_counter() - started) * 1000
    urls = list(dict.fromkeys(h.url for h in raw))
    rank = urls.index(case.target) + 1 if case.target in urls else None
    span = (raw[0].start_s, raw[0].end_s) if raw else None
    return Outcome(rank, span, ms)


def _ours_case(searcher: Searcher, case: Case) -> Outcome:
    return ours(searcher, case)


def evaluate(run: Callable[[Case], Outcome], cases: Sequence[Case]) -> dict[str, float]:
    return summary(cases, [run(c) for c in cases])


def f2(value: float) -> str:
    return f"{value:.2f}"


def kind_rows(kind: str, mine: dict[str, float], base: dict[str, float]) -> list[Row]:
    goal = ">= 0.95" if kind == "text" else "reported"
    met = mine["r1"] >= GOALS["text_r1"] if kind == "text" else None
    return [Row("7", f"{kind} queries ({int(mine['n'])}): video R@1 / R@10 / MRR",
                f"{f2(mine['r1'])} / {f2(mine['r10'])} / {f2(mine['mrr'])}",
                f"tutorial {f2(base['r1'])} / {f2(base['r10'])} / {f2(base['mrr'])}",
                f"R@1 {mine['r1'] - base['r1']:+.2f}", goal, met, {"ours": mine, "tutorial": base})]


def moment_rows(mine: dict[str, float], base: dict[str, float]) -> list[Row]:
    gain = mine["iou"] - base["iou"]
    return [
        Row("7", f"moments, text queries: mean IoU of the top hit's best moment ({int(mine['n'])})",
            f2(mine["iou"]), f"tutorial top segment {f2(base['iou'])}", f"{gain:+.2f}",
            f">= +{GOALS['iou_gain']}", gain >= GOALS["iou_gain"]),
        Row("7", "  moment R@1 at IoU >= 0.5", f2(mine["iou50"]), f"tutorial {f2(base['iou50'])}",
            f"{mine['iou50'] - base['iou50']:+.2f}", f">= {GOALS['moment_r1']}",
            mine["iou50"] >= GOALS["moment_r1"]),
        Row("7", "  moment R@1 at IoU >= 0.7", f2(mine["iou70"]), f"tutorial {f2(base['iou70'])}",
            f"{mine['iou70'] - base['iou70']:+.2f}", "reported", None),
    ]


FLOOR_TOP_K = 30
"""Hits per query the floor measurement looks at (enough to reach the unrelated videos)."""


def _scene_words(lib: Library, case: Case) -> set[str]:
    video = next(v for v in lib.videos if v.url == case.target)
    return {w for s in video.scenes if (s.start, s.end) == case.scene for w in s.words}


def floor_scores(searcher: Searcher, lib: Library) -> dict[str, list[float]]:
    """Scores of the text, clip and image queries' hits (floor lifted, ``FLOOR_TOP_K`` each):
    ``target`` the labelled video, ``partial`` videos sharing a word with the target scene,
    ``unrelated`` videos sharing none (what a floor must hide)."""
    scores: dict[str, list[float]] = {"target": [], "partial": [], "unrelated": []}
    by_url = {v.url: {w for s in v.scenes for w in s.words} for v in lib.videos}
    for case in (c for c in lib.cases if c.kind in ("text", "clip", "image")):
        words = _scene_words(lib, case)
        query = replace(case.query, top_k=FLOOR_TOP_K, min_score=-1.0)
        for hit in searcher.search(query).hits:
            kind = "target" if hit.url == case.target else \
                "partial" if by_url.get(hit.url, set()) & words else "unrelated"
            scores[kind].append(hit.score)
    return scores


def floor_rows(searcher: Searcher, lib: Library, floor: float) -> list[Row]:
    """The distributions and what the floor ``floor`` keeps and hides of them."""
    s = floor_scores(searcher, lib)
    t, p, u = s["target"], s["partial"], s["unrelated"]
    kept = sum(x >= floor for x in t) / max(1, len(t))
    hidden = sum(x < floor for x in u) / max(1, len(u))
    return [
        Row("7", f"score floor: target hits (text, clip, image; {len(t)}): min / p5 / p50",
            f"{min(t, default=0):.3f} / {pct(t, 5):.3f} / {pct(t, 50):.3f}", "", "", "reported", None),
        Row("7", f"  partial matches (share a word; {len(p)}): min / p50 / max",
            f"{min(p, default=0):.3f} / {pct(p, 50):.3f} / {max(p, default=0):.3f}", "", "", "reported",
            None),
        Row("7", f"  unrelated hits (no shared word; {len(u)}): p50 / p99 / max",
            f"{pct(u, 50):.3f} / {pct(u, 99):.3f} / {max(u, default=0):.3f}", "", "", "reported", None),
        Row("7", f"  search_min_score {floor:g}: targets kept / unrelated hidden",
            f"{kept:.2f} / {hidden:.2f}", "", "", "1.00 / 1.00", kept == 1.0 and hidden == 1.0),
    ]


def hybrid_rows(searchers: dict[str, Searcher], cases: Sequence[Case]) -> list[Row]:
    client = searchers["client"]
    text = evaluate(lambda c: ours(client, c, c.parts["text"]), cases)
    clip = evaluate(lambda c: ours(client, c, c.parts["clip"]), cases)
    rows = []
    fused = {name: evaluate(partial(_ours_case, s), cases) for name, s in searchers.items()}
    both = fused["client"]
    best_part = max(text["r1"], clip["r1"])
    rows.append(Row("7", f"hybrid text + clip ({len(cases)}), client fusion: R@1 / R@10 / MRR",
                    f"{f2(both['r1'])} / {f2(both['r10'])} / {f2(both['mrr'])}",
                    f"text alone {f2(text['r1'])} / {f2(text['r10'])} / {f2(text['mrr'])}; clip "
                    f"alone {f2(clip['r1'])} / {f2(clip['r10'])} / {f2(clip['mrr'])}",
                    f"R@1 {both['r1'] - best_part:+.2f}",
                    "beats both parts", both["r1"] > best_part and both["mrr"] > max(text["mrr"],
                                                                                     clip["mrr"]),
                    {"text": text, "clip": clip, "fused": fused}))
    for name in ("weighted", "rrf"):
        other = fused[name]
        ranker = "WeightedRanker" if name == "weighted" else "RRFRanker"
        rows.append(Row("7", f"  Milvus hybrid_search + {ranker}: R@1 / MRR, p50 ms",
                        f"{f2(other['r1'])} / {f2(other['mrr'])}, {other['p50_ms']:.0f}",
                        f"client {f2(both['r1'])} / {f2(both['mrr'])}, {both['p50_ms']:.0f}",
                        f"MRR {other['mrr'] - both['mrr']:+.2f}", "reported", None))
    return rows


def cache_rows(settings: Settings, store: MilvusStore, embed: Callable[[QueryPart], list[float]],
               calls: dict[str, int], lib: Library) -> list[Row]:
    cases = [c for c in lib.cases if c.kind == "text"]
    client = redis.Redis.from_url(settings.redis_url)
    searcher = Searcher(settings, client, store, embed)
    misses = [ours(searcher, c).ms for c in cases]
    embeds, milvus = calls["embed"], store.calls
    hits = [ours(searcher, c).ms for c in cases]
    served = all(searcher.search(c.query).cached for c in cases[:5])
    hit_embeds, hit_milvus = calls["embed"] - embeds, store.calls - milvus
    turned = invalidation(settings, client, searcher, cases[0], lib.late)
    ratio = pct(misses, 50) / pct(hits, 50) if pct(hits, 50) else 0.0
    return [
        Row("7", f"result cache hit: p50 / p95 ms ({len(hits)} queries, all served: {served})",
            f"{pct(hits, 50):.2f} / {pct(hits, 95):.2f}",
            f"miss {pct(misses, 50):.0f} / {pct(misses, 95):.0f}", f"{ratio:.0f}x faster",
            "reported", None),
        Row("7", "  embed calls / Milvus calls made by those hits", f"{hit_embeds} / {hit_milvus}",
            "", "", "0 / 0", hit_embeds == 0 and hit_milvus == 0),
        Row("7", "  a hit turns into a miss after a matching video's rows are flushed",
            "yes" if turned else "no", "", "", "yes", turned),
    ]


def invalidation(settings: Settings, client: redis.Redis[bytes], searcher: Searcher, case: Case,
                 video: Video) -> bool:
    """Write ``video`` (the case's scene words) through the SegmentWriter (flush, generation bump);
    the cached result must turn into a miss that finds the new video."""
    assert searcher.search(case.query).cached
    spec = EmbeddingSpec.from_settings(settings)
    result = embed_videos(TwelveLabsGateway(settings), spec, [video])[video.url]
    stream = Keys(settings.redis_prefix).segments
    segments = segments_of(video, result, spec)
    for segment in segments:
        client.xadd(stream, segment.to_fields())  # type: ignore[arg-type,unused-ignore]
    writer = SegmentWriter(client, MilvusStore(settings), _Ledger(), settings, "bench-quality")
    writer.ensure_group()
    written = 0
    while written < len(segments):
        written += writer.drain(max_seconds=5).rows
    after = searcher.search(case.query)
    return not after.cached and video.url in {h.url for h in after.hits}


class _Ledger:
    def record_written(self, pairs: Sequence[tuple[str, str]]) -> None:
        pass

    def record_dead(self, item_key: str, reason: str) -> None:
        raise AssertionError(f"bench segment dead-lettered: {reason}")


# --- the run ------------------------------------------------------------------------------------
def measure(settings: Settings, lib: Library) -> list[Row]:
    store = MilvusStore(settings, timeout_s=600)
    gateway = TwelveLabsGateway(settings)
    calls = {"embed": 0}

    def embed(part: QueryPart) -> list[float]:
        calls["embed"] += 1
        return gateway.embed_part(part)

    client = redis.Redis.from_url(settings.redis_url)
    uncached = settings.model_copy(update={"result_cache_ttl_s": 0})
    searchers = {name: Searcher(uncached.model_copy(update={"search_fusion": name}), client, store,
                                embed) for name in ("client", "weighted", "rrf")}
    mine = searchers["client"]
    by_kind = {k: [c for c in lib.cases if c.kind == k] for k in ("text", "clip", "image")}
    rows: list[Row] = []
    moments = Searcher(uncached, client, store, embed)
    for kind, cases in by_kind.items():
        with section(f"quality: {kind} queries"):
            base = evaluate(lambda c: tutorial(mine, store, c), cases)
            rows += kind_rows(kind, evaluate(lambda c: ours(mine, c), cases), base)
            if kind == "text":
                text_moments = [replace(c, query=replace(c.query, moments=True)) for c in cases]
                rows += moment_rows(evaluate(lambda c: ours(moments, c), text_moments), base)
    with section("quality: score floor"):
        rows += floor_rows(mine, lib, settings.search_min_score)
    with section("quality: hybrid queries, three fusions"):
        rows += hybrid_rows(searchers, [c for c in lib.cases if c.kind == "hybrid"])
    with section("quality: result cache"):
        rows += cache_rows(settings, store, embed, calls, lib)
    return rows


def measure_floor(settings: Settings, lib: Library) -> list[Row]:
    """Only the score floor rows (``--floor``: recalibrating ``search_min_score``)."""
    store = MilvusStore(settings, timeout_s=600)
    client = redis.Redis.from_url(settings.redis_url)
    uncached = settings.model_copy(update={"result_cache_ttl_s": 0})
    searcher = Searcher(uncached, client, store, TwelveLabsGateway(settings).embed_part)
    with section("quality: score floor"):
        return floor_rows(searcher, lib, settings.search_min_score)


def run(videos: int, queries: dict[str, int], tmp: Path, floor_only: bool = False) -> list[Row]:
    lib = build_library(videos, queries)
    tmp.mkdir(parents=True, exist_ok=True)
    catalog = tmp / "quality-catalog.json"
    catalog.write_text(json.dumps(lib.catalog), encoding="utf-8")
    services: list[Service] = []
    try:
        services.append(r := start_redis(tmp / "quality-redis"))
        services.append(m := start_milvus(tmp / "quality-milvus"))
        services.append(s := start_sandbox(tmp, args=["--speed", "5000", "--catalog", str(catalog)]))
        settings = load_settings(
            redis_url=f"redis://{r.host}:{r.port}/0", milvus_uri=m.url,
            twelvelabs_base_url=f"{s.url}/v1.3", collection_prefix=f"q{uuid.uuid4().hex[:8]}",
            embedding_options=["visual", "audio"], writer_max_wait_s=0.05,
        )
        store = MilvusStore(settings, timeout_s=600)
        with section(f"quality: ingest {videos} videos"):
            started = time.perf_counter()
            rows = ingest(settings, store, lib.videos)
            log(f"quality: {rows:,} rows in {time.perf_counter() - started:.0f} s")
        store.close()
        return [Row("7", f"library: {videos} videos of 60-600 s, {rows:,} rows; queries "
                    + ", ".join(f"{k} {v}" for k, v in queries.items()), "", "", "", "", None),
                *(measure_floor if floor_only else measure)(settings, lib)]
    finally:
        for service in reversed(services):
            service.stop()


def sizes(quick: bool) -> tuple[int, dict[str, int]]:
    """The default (200+ videos) or the --quick library and query counts."""
    if quick:
        return 60, {"text": 20, "clip": 10, "image": 10, "hybrid": 8}
    return 210, {"text": 40, "clip": 20, "image": 20, "hybrid": 16}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--floor", action="store_true", help="only the score floor rows")
    args = parser.parse_args()
    videos, queries = sizes(args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        print(table(run(videos, queries, Path(tmp), args.floor)))


if __name__ == "__main__":
    main()
