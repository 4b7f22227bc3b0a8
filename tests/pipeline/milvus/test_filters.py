"""Filter expressions: every value escaped, and on both engines a hostile key matches only itself."""

from __future__ import annotations

import uuid

import pytest

from pipeline.milvus.filters import (
    Filter,
    all_of,
    at_least,
    equals,
    none_of,
    one_of,
    quote,
)
from pipeline.milvus.store import MilvusStore
from pipeline.segments import Segment, pack_vector
from pipeline.settings import load_settings

HOSTILE_KEYS = (
    'a"b',
    "a\\b",
    "ends\\",
    '\\"',
    "it's",
    'x"] or item_key not in ["',  # closes the list early when quotes are not escaped
    'x" or item_key != "',
    "x",
    "line\nfeed",
    "carriage\rreturn",
    "tab\tnul\x00bell\x07del\x7f",
    "caf\u00e9 \u4e2d\u2028",
)


def test_quote_escapes_backslashes_quotes_and_line_breaks_and_nothing_else() -> None:
    assert quote("plain") == '"plain"'
    assert quote('a"b') == '"a\\"b"'
    assert quote("a\\b") == '"a\\\\b"'
    assert quote('\\"') == '"\\\\\\""'
    assert quote("line\nfeed\r") == '"line\\nfeed\\r"'
    assert quote("it's\t\x00 caf\u00e9") == "\"it's\t\x00 caf\u00e9\""


def test_builders_quote_every_value() -> None:
    assert equals("item_key", 'k"') == 'item_key == "k\\""'
    assert one_of("pk", ["a", "b\\"]) == 'pk in ["a", "b\\\\"]'
    assert none_of("url", ["u"]) == 'url not in ["u"]'
    assert at_least("ingested_at", 1234) == "ingested_at >= 1234"
    assert all_of(equals("scope", "clip"), "", one_of("item_key", ["k"])) == (
        'scope == "clip" and item_key in ["k"]'
    )
    assert all_of() == ""


def test_builders_refuse_what_could_change_the_expression() -> None:
    with pytest.raises(ValueError, match="field name"):
        equals("scope == scope or scope", "clip")
    with pytest.raises(ValueError, match="non-empty sequence"):
        one_of("item_key", "abc")  # a string is not a list of keys
    with pytest.raises(ValueError, match="non-empty sequence"):
        one_of("item_key", [])
    with pytest.raises(TypeError):
        at_least("ingested_at", "0 or 1")  # type: ignore[arg-type]


def test_filter_quotes_every_value_and_excludes_urls() -> None:
    where = Filter(categories=("a", 'b"c\\'), options=("visual", "audio"), scope="clip",
                   urls=('u"1',), exclude_urls=("u2",))
    assert where.expression() == (
        'category in ["a", "b\\"c\\\\"] and option in ["visual", "audio"] and scope == "clip" and '
        'url in ["u\\"1"] and url not in ["u2"]'
    )
    assert Filter(options=("visual",), scope=None).expression() == 'option == "visual"'
    assert Filter(scope=None).expression() == ""


@pytest.fixture
def hostile_rows(milvus_uri: str) -> tuple[MilvusStore, str]:
    """A collection holding one row per hostile item key (pk ``pk<i>``)."""
    settings = load_settings(milvus_uri=milvus_uri, collection_prefix=f"f{uuid.uuid4().hex[:10]}")
    store = MilvusStore(settings)
    name = store.ensure_collection("marengo3.0", 4)
    store.upsert(name, [
        Segment(pk=f"pk{i}", item_key=key, job_id="job", url=f"https://v.example/{i}",
                category="news", title="", metadata="{}", model="marengo3.0", option="visual",
                scope="clip", start_s=0.0, end_s=1.0, vector=pack_vector([0.1, 0.2, 0.3, 0.4]))
        for i, key in enumerate(HOSTILE_KEYS)
    ])
    store.flush(name)
    return store, name


def _pks(store: MilvusStore, name: str, expression: str) -> list[str]:
    return sorted(row["pk"] for row in store.iter_rows(name, expression, ["pk"]))


def _matches(store: MilvusStore, name: str, key: str) -> dict[str, list[str]]:
    others = [k for k in HOSTILE_KEYS if k != key]
    return {
        "equals": _pks(store, name, equals("item_key", key)),
        "one_of": _pks(store, name, one_of("item_key", [key])),
        "all_of": _pks(store, name, all_of(equals("scope", "clip"), one_of("item_key", [key]))),
        "none_of others": _pks(store, name, none_of("item_key", others)),
    }


@pytest.mark.both_engines
def test_a_hostile_key_matches_exactly_its_own_row(hostile_rows: tuple[MilvusStore, str]) -> None:
    store, name = hostile_rows
    wrong: dict[str, object] = {}
    for i, key in enumerate(HOSTILE_KEYS):
        found, count = _matches(store, name, key), store.count(name, equals("item_key", key))
        if any(pks != [f"pk{i}"] for pks in found.values()) or count != 1:
            wrong[key] = {**found, "count": count}
    assert wrong == {}



@pytest.mark.both_engines
def test_rows_by_item_counts_hostile_keys_exactly(hostile_rows: tuple[MilvusStore, str]) -> None:
    store, name = hostile_rows
    assert store.rows_by_item(name, [*HOSTILE_KEYS, 'x"', "absent"]) == {
        **dict.fromkeys(HOSTILE_KEYS, 1), 'x"': 0, "absent": 0,
    }
