"""Query: parsing from strings and JSON, and a QueryError naming the field for every bad input."""

from __future__ import annotations

import pytest

from pipeline.errors import BadInputError, QueryError
from pipeline.search.query import Query, parse_weights


def test_from_mapping_parses_strings_as_the_cli_and_an_http_api_send_them() -> None:
    q = Query.from_mapping({
        "text": "  A Surfing   DOG ", "clip": "https://c.example/q.mp4", "clip_start": "5",
        "clip_end": "35.5", "weights": "text=1, clip=2.5", "modality_weights": '{"audio": 0.2}',
        "category": "sports,pets", "top_k": "7", "moments": "true", "max_moments": "2",
    })
    assert q.text == "a surfing dog" and (q.clip_start_s, q.clip_end_s) == (5.0, 35.5)
    assert q.weights == {"text": 1.0, "clip": 2.5} and q.modality_weights == {"audio": 0.2}
    assert q.categories == ("sports", "pets") and q.top_k == 7 and q.moments and q.max_moments == 2
    assert q.part_kinds() == ("text", "clip")


def test_weights_as_a_mapping_and_defaults_of_one() -> None:
    q = Query(text="dog", image_url="https://i.example/p.jpg", weights={"image": 3})
    assert (q.part_weight("text"), q.part_weight("image")) == (1.0, 3.0)
    assert q.modalities(("visual", "audio")) == {"visual": 1.0, "audio": 1.0}
    assert Query(text="x", option="audio").modalities(("visual", "audio")) == {"audio": 1.0}
    assert Query(text="x", modality_weights={"visual": 1, "audio": 0}).modalities(
        ("visual", "audio")) == {"visual": 1.0}


def test_text_image_is_one_part() -> None:
    q = Query(text="dog", image_url="https://i.example/p.jpg", text_image=True)
    assert q.part_kinds() == ("text_image",)
    assert q.parts()[0].url == "https://i.example/p.jpg" and q.parts()[0].text == "dog"


def test_canonical_is_the_same_for_equal_queries_written_differently() -> None:
    a = Query.from_mapping({"text": "Dog  run", "category": "b,a", "weights": "text=1"})
    b = Query(text="dog run", categories=("a", "b"), weights={"text": 1.0})
    assert a.canonical() == b.canonical()


@pytest.mark.parametrize(("data", "message"), [
    ({}, "nothing to search for"),
    ({"text": "dog", "colour": "red"}, "unknown query field"),
    ({"text": "dog", "top_k": "ten"}, "top_k must be a number"),
    ({"text": "dog", "top_k": "2.5"}, "whole number"),
    ({"text": "dog", "moments": "maybe"}, "true or false"),
    ({"text": "dog", "weights": "text=nan"}, "finite"),
    ({"text": "dog", "weights": "{bad json"}, "not valid JSON"),
    ({"text": "dog", "weights": "text=0"}, "all zero"),
    ({"text": "dog", "modality_weights": "visual=0,audio=0"}, "all zero"),
    ({"text": "dog", "option": "audio", "modality_weights": "audio=1"}, "exclude each other"),
    ({"text": "dog", "image": "https://i.example/x.jpg", "text_image": "0", "max_moments": "99"},
     "max_moments"),
    ({"text_image": "true", "text": "dog"}, "text_image needs both"),
    ({"like": "https://v.example/a.mp4", "at": "-1"}, "--at must be >= 0"),
    ({"clip": "https://v.example/a.mp4", "clip_start": "-3"}, "clip start must be >= 0"),
    ({"text": "dog", "category": 5}, "category must be a string or a list"),
    ({"text": 5}, "text must be a string"),
])
def test_every_bad_input_is_a_query_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        Query.from_mapping(data)


def test_query_error_is_the_bad_input_error() -> None:
    assert issubclass(QueryError, BadInputError)
    with pytest.raises(QueryError, match="unknown weights smell"):
        parse_weights("smell=1", ("text",), "weights")


def test_collapse_duplicates_is_unset_unless_given() -> None:
    assert Query(text="dog").collapse_duplicates is None
    assert Query.from_mapping({"text": "dog", "collapse_duplicates": "true"}).collapse_duplicates is True
    assert Query.from_mapping({"text": "dog", "collapse_duplicates": "0"}).collapse_duplicates is False
    with pytest.raises(QueryError, match="collapse_duplicates must be true or false"):
        Query.from_mapping({"text": "dog", "collapse_duplicates": "sometimes"})


def test_the_floor_is_checked_and_no_part_of_the_cache_key() -> None:
    assert Query.from_mapping({"text": "dog", "min_score": "-1"}).min_score == -1.0
    assert Query(text="dog", min_score=0.5).canonical() == Query(text="dog").canonical()
    for bad in ("1.01", "-1.5"):
        with pytest.raises(QueryError, match="min_score must be between -1 and 1"):
            Query.from_mapping({"text": "dog", "min_score": bad})
