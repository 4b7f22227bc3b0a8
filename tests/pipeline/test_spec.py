"""EmbeddingSpec, item keys, segment primary keys and collection names."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.settings import Settings
from pipeline.spec import EmbeddingSpec, collection_name, item_key, segment_pk

SPEC = EmbeddingSpec("marengo3.0", None, "fixed", 6, 4, ("visual", "audio"), ("clip", "asset"))
URL = "https://example.com/v.mp4"
HEX32 = re.compile(r"[0-9a-f]{32}")


def test_spec_from_settings_copies_the_embedding_fields() -> None:
    spec = EmbeddingSpec.from_settings(
        Settings(model="marengo3.5", embedding_dimension=256, segmentation="dynamic")
    )
    assert spec == EmbeddingSpec("marengo3.5", 256, "dynamic", 6, 4, ("visual", "audio"), ("clip", "asset"))


def test_canonical_json_is_sorted_compact_and_order_independent() -> None:
    reordered = dataclasses.replace(SPEC, options=("audio", "visual"), scopes=("asset", "clip"))
    assert SPEC.canonical() == reordered.canonical()
    assert SPEC.canonical() == (
        '{"dimension":null,"model":"marengo3.0","options":["audio","visual"],'
        '"scopes":["asset","clip"],"segment_duration_s":6,"segmentation":"fixed"}'
    )


def test_canonical_json_omits_the_segmentation_field_that_does_not_apply() -> None:
    fixed = json.loads(SPEC.canonical())
    dynamic = json.loads(dataclasses.replace(SPEC, segmentation="dynamic").canonical())
    assert "min_segment_duration_s" not in fixed
    assert dynamic["min_segment_duration_s"] == 4
    assert "segment_duration_s" not in dynamic
    assert item_key(URL, SPEC) == item_key(URL, dataclasses.replace(SPEC, min_segment_duration_s=5))


def test_spec_json_round_trips() -> None:
    spec = dataclasses.replace(SPEC, model="marengo3.5", dimension=128)
    assert EmbeddingSpec.from_json(spec.to_json()) == spec
    assert EmbeddingSpec.from_json(spec.to_json().encode()) == spec


@pytest.mark.parametrize(
    "text",
    [
        "nope",
        "[]",
        '{"model": "m"}',
        SPEC.to_json().replace('"fixed"', "7"),
        SPEC.to_json().replace('["visual","audio"]', '"visual"'),
        SPEC.to_json().replace('"dimension":null', '"dimension":true'),
    ],
)
def test_spec_from_json_rejects_malformed_text_with_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="embedding spec"):
        EmbeddingSpec.from_json(text)


def test_item_key_is_blake2b_128_of_url_and_canonical_spec() -> None:
    from hashlib import blake2b

    expected = blake2b(f"{URL}\n{SPEC.canonical()}".encode(), digest_size=16).hexdigest()
    assert item_key(URL, SPEC) == expected
    assert HEX32.fullmatch(expected)


def test_segment_pk_rounds_times_to_milliseconds() -> None:
    key = item_key(URL, SPEC)
    assert segment_pk(key, "visual", "clip", 4.2, 10.0) == segment_pk(
        key, "visual", "clip", 4.2000000001, 9.9999999
    )
    assert segment_pk(key, "visual", "clip", 4.2, 10.0) != segment_pk(key, "visual", "clip", 4.201, 10.0)
    assert HEX32.fullmatch(segment_pk(key, "visual", "clip", 0.0, 6.0))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_segment_pk_rejects_non_finite_times(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        segment_pk("k", "visual", "clip", bad, 1.0)


@pytest.mark.parametrize(
    ("prefix", "model", "dim", "expected"),
    [
        ("vidsearch", "marengo3.0", 512, "vidsearch_marengo3_0_d512"),
        ("vidsearch", "marengo3.5", 256, "vidsearch_marengo3_5_d256"),
        ("my-app", "Marengo-retrieval-2.7", 1024, "my_app_Marengo_retrieval_2_7_d1024"),
        ("1st", "marengo3.0", 512, "_1st_marengo3_0_d512"),
    ],
)
def test_collection_name_is_a_valid_milvus_name(prefix: str, model: str, dim: int, expected: str) -> None:
    name = collection_name(prefix, model, dim)
    assert name == expected
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)


@pytest.mark.parametrize("dim", [0, -1, True])
def test_collection_name_rejects_bad_dimensions(dim: int) -> None:
    with pytest.raises(ValueError, match="dimension"):
        collection_name("vidsearch", "marengo3.0", dim)


def test_collection_name_rejects_names_longer_than_milvus_allows() -> None:
    with pytest.raises(ValueError, match="longer"):
        collection_name("p" * 300, "marengo3.0", 512)


# --- properties ------------------------------------------------------------------------------

_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.", min_size=1, max_size=12)
_specs = st.builds(
    EmbeddingSpec,
    model=_words,
    dimension=st.one_of(st.none(), st.sampled_from([128, 256, 512])),
    segmentation=st.sampled_from(["fixed", "dynamic"]),
    segment_duration_s=st.integers(2, 10),
    min_segment_duration_s=st.integers(2, 5),
    options=st.lists(st.sampled_from(["visual", "audio", "transcription"]), min_size=1, unique=True).map(
        tuple
    ),
    scopes=st.lists(st.sampled_from(["clip", "asset"]), min_size=1, unique=True).map(tuple),
)
_changes = st.sampled_from(["url", "model", "dimension", "segmentation", "duration", "options", "scopes"])


def _changed(url: str, spec: EmbeddingSpec, what: str) -> tuple[str, EmbeddingSpec]:
    relevant = "segment_duration_s" if spec.segmentation == "fixed" else "min_segment_duration_s"
    edits: dict[str, tuple[str, EmbeddingSpec]] = {
        "url": (url + "x", spec),
        "model": (url, dataclasses.replace(spec, model=spec.model + "x")),
        "dimension": (url, dataclasses.replace(spec, dimension=(spec.dimension or 0) + 1)),
        "segmentation": (
            url,
            dataclasses.replace(spec, segmentation="dynamic" if spec.segmentation == "fixed" else "fixed"),
        ),
        "duration": (url, dataclasses.replace(spec, **{relevant: getattr(spec, relevant) + 1})),
        "options": (url, dataclasses.replace(spec, options=(*spec.options, "extra"))),
        "scopes": (url, dataclasses.replace(spec, scopes=(*spec.scopes, "extra"))),
    }
    return edits[what]


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=40), _specs, _changes)
def test_item_key_is_stable_and_changes_with_url_or_any_spec_field(
    url: str, spec: EmbeddingSpec, what: str
) -> None:
    key = item_key(url, spec)
    assert HEX32.fullmatch(key)
    assert key == item_key(url, EmbeddingSpec.from_json(spec.to_json()))
    assert key != item_key(*_changed(url, spec, what))


_times = st.integers(0, 10_000_000).map(lambda ms: ms / 1000)


@settings(max_examples=150, deadline=None)
@given(
    st.tuples(
        st.sampled_from(["a" * 32, "b" * 32]),
        st.sampled_from(["visual", "audio"]),
        st.sampled_from(["clip", "asset"]),
        _times,
        _times,
    ),
    st.tuples(
        st.sampled_from(["a" * 32, "b" * 32]),
        st.sampled_from(["visual", "audio"]),
        st.sampled_from(["clip", "asset"]),
        _times,
        _times,
    ),
)
def test_segment_pk_is_distinct_for_distinct_rounded_inputs(
    first: tuple[str, str, str, float, float], second: tuple[str, str, str, float, float]
) -> None:
    same = first[:3] == second[:3] and all(
        round(a * 1000) == round(b * 1000) for a, b in zip(first[3:], second[3:], strict=True)
    )
    assert (segment_pk(*first) == segment_pk(*second)) == same
    assert segment_pk(*first) == segment_pk(*first[:3], first[3] + 1e-7, first[4] - 1e-7)
