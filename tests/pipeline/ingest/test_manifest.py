"""read_manifest: CSV and JSONL realities, per-line rejects, streaming memory, and properties."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import ManifestError
from pipeline.ingest.manifest import (
    MAX_LINE_BYTES,
    LineRules,
    ManifestLine,
    Rejected,
    count_records,
    read_manifest,
)
from pipeline.settings import Settings

RULES = LineRules.from_settings(Settings())
URL = "https://example.com/v{}.mp4"


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _read(path: Path, rules: LineRules = RULES) -> list[ManifestLine | Rejected]:
    return list(read_manifest(path, rules))


def _accepted(records: list[ManifestLine | Rejected]) -> list[ManifestLine]:
    return [r for r in records if isinstance(r, ManifestLine)]


def _rejected(records: list[ManifestLine | Rejected]) -> list[Rejected]:
    return [r for r in records if isinstance(r, Rejected)]


# --- CSV realities ---------------------------------------------------------------------------


def test_csv_lines_become_manifest_lines_with_normalized_urls(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.csv", "url,category,title\nHTTPS://Example.com/a.mp4#x,news, A \n")
    [line] = _read(path)
    assert line == ManifestLine(str(path), 2, "https://example.com/a.mp4", "news", "A", {})


def test_csv_with_utf8_bom_and_crlf_is_read(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbfurl,category\r\n" + f"{URL.format(1)},news\r\n".encode()
    [line] = _read(_write(tmp_path, "m.csv", data))
    assert isinstance(line, ManifestLine)
    assert (line.url, line.category, line.line) == (URL.format(1), "news", 2)


def test_csv_quoted_fields_keep_commas_and_newlines_and_line_numbers_stay_physical(
    tmp_path: Path,
) -> None:
    text = (
        "url,category,title\n"
        f'{URL.format(1)},news,"Hello, world"\n'
        f'{URL.format(2)},news,"two\nline title"\n'
        f"{URL.format(3)},news,third\n"
    )
    records = _accepted(_read(_write(tmp_path, "m.csv", text)))
    assert [(r.line, r.title) for r in records] == [
        (2, "Hello, world"),
        (3, "two\nline title"),
        (5, "third"),
    ]


def test_csv_blank_lines_are_skipped_without_rejects(tmp_path: Path) -> None:
    text = f"\nurl,category\n\n{URL.format(1)},news\n   \n\r\n{URL.format(2)},news\n\n"
    records = _read(_write(tmp_path, "m.csv", text))
    assert [r.line for r in records] == [4, 7]
    assert not _rejected(records)


def test_csv_invalid_utf8_line_is_rejected_with_its_line_number_and_others_pass(
    tmp_path: Path,
) -> None:
    data = (
        b"url,category\n"
        + f"{URL.format(1)},news\n".encode()
        + b"https://example.com/\xff\xfe.mp4,news\n"
        + f"{URL.format(3)},news\n".encode()
    )
    records = _read(_write(tmp_path, "m.csv", data))
    assert records[1] == Rejected(records[1].file, 3, "invalid UTF-8")
    assert [r.line for r in _accepted(records)] == [2, 4]


def test_csv_extra_columns_go_to_metadata_with_original_names(tmp_path: Path) -> None:
    text = f"url,category,Source , Lang\n{URL.format(1)},news, feed-1 ,en\n"
    [line] = _accepted(_read(_write(tmp_path, "m.csv", text)))
    assert line.metadata == {"Source": "feed-1", "Lang": "en"}


def test_csv_headers_are_case_insensitive_and_stripped(tmp_path: Path) -> None:
    text = f" URL ,Category,TITLE\n{URL.format(1)},news,T\n"
    [line] = _accepted(_read(_write(tmp_path, "m.csv", text)))
    assert (line.url, line.category, line.title, line.metadata) == (URL.format(1), "news", "T", {})


def test_csv_default_category_fills_missing_column_and_empty_cells(tmp_path: Path) -> None:
    rules = LineRules.from_settings(Settings(), default_category="misc")
    no_column = _write(tmp_path, "a.csv", f"url\n{URL.format(1)}\n")
    empty_cell = _write(tmp_path, "b.csv", f"url,category\n{URL.format(1)},\n{URL.format(2)},news\n")
    assert [r.category for r in _accepted(_read(no_column, rules))] == ["misc"]
    assert [r.category for r in _accepted(_read(empty_cell, rules))] == ["misc", "news"]


def test_csv_without_url_column_raises_manifest_error_at_call(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.csv", "link,category\nhttps://example.com/a,news\n")
    with pytest.raises(ManifestError, match="no 'url' column"):
        read_manifest(path, RULES)


def test_csv_without_category_column_or_default_raises_manifest_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.csv", f"url\n{URL.format(1)}\n")
    with pytest.raises(ManifestError, match="category"):
        read_manifest(path, RULES)


@pytest.mark.parametrize("data", [b"", b"\n\n  \n", b"\xff\xfeurl,category\n"])
def test_csv_without_a_readable_header_raises_manifest_error(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(ManifestError):
        read_manifest(_write(tmp_path, "m.csv", data), RULES)


def test_missing_file_and_directory_raise_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read manifest"):
        read_manifest(tmp_path / "nope.csv", RULES)
    with pytest.raises(ManifestError, match="cannot read manifest"):
        read_manifest(tmp_path, RULES)


def test_csv_short_and_long_rows_are_handled(tmp_path: Path) -> None:
    text = f"url,category,title\n{URL.format(1)},news,t,extra,more\n{URL.format(2)}\n,\n"
    records = _read(_write(tmp_path, "m.csv", text))
    assert isinstance(records[0], ManifestLine)
    assert records[0].title == "t"
    assert records[1] == Rejected(str(tmp_path / "m.csv"), 3, "missing category")
    assert records[2] == Rejected(str(tmp_path / "m.csv"), 4, "missing url")


def test_csv_huge_line_is_rejected_and_reading_continues(tmp_path: Path) -> None:
    huge = "https://example.com/" + "a" * (MAX_LINE_BYTES + 10) + ",news\n"
    text = f"url,category\n{URL.format(1)},news\n{huge}{URL.format(3)},news\n"
    records = _read(_write(tmp_path, "m.csv", text))
    assert [type(r).__name__ for r in records] == ["ManifestLine", "Rejected", "ManifestLine"]
    assert records[1].line == 3
    assert "longer than" in records[1].reason  # type: ignore[union-attr]
    assert records[2].line == 4


def test_csv_quoted_field_over_the_csv_field_limit_is_rejected_and_reading_continues(
    tmp_path: Path,
) -> None:
    chunk = "b" * 60_000
    big = '"' + "\n".join([chunk] * 4) + '",news\n'  # > 128 KiB across lines shorter than the cap
    text = f"url,category\n{big}{URL.format(9)},news\n"
    records = _read(_write(tmp_path, "m.csv", text))
    assert isinstance(records[0], Rejected)
    assert records[0].line == 2
    assert "malformed CSV" in records[0].reason
    assert any(isinstance(r, ManifestLine) and r.url == URL.format(9) for r in records)


def test_csv_bare_carriage_return_rejects_only_that_line(tmp_path: Path) -> None:
    text = f"url,category\n{URL.format(1)},ne\rws\n{URL.format(2)},news\n"
    records = _read(_write(tmp_path, "m.csv", text))
    assert isinstance(records[0], Rejected)
    assert records[0].line == 2
    assert _accepted(records)[0].line == 3


# --- per-line validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("ftp://example.com/a,news", "invalid url: scheme 'ftp' is not http(s)"),
        ("http://127.0.0.1/a,news", "invalid url: non-public address 127.0.0.1"),
        (" ,news", "missing url"),
        (f"{URL.format(1)},", "missing category"),
        (f"{URL.format(1)},News", "invalid category 'News'"),
        (f"{URL.format(1)},bad category", "invalid category 'bad category'"),
    ],
)
def test_invalid_values_are_rejected_with_file_line_and_reason(tmp_path: Path, row: str, reason: str) -> None:
    path = _write(tmp_path, "m.csv", f"url,category\n{row}\n")
    assert _read(path) == [Rejected(str(path), 2, reason)]


def test_category_is_validated_as_given_not_lowercased(tmp_path: Path) -> None:
    rules = LineRules("^[A-Z]+$", 2048, False, None)
    path = _write(tmp_path, "m.csv", f"url,category\n{URL.format(1)}, NEWS \n{URL.format(2)},news\n")
    records = _read(path, rules)
    assert isinstance(records[0], ManifestLine)
    assert records[0].category == "NEWS"
    assert isinstance(records[1], Rejected)


def test_long_title_is_truncated_to_512_characters(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.csv", f"url,category,title\n{URL.format(1)},news,{'t' * 2000}\n")
    [line] = _accepted(_read(path))
    assert line.title == "t" * 512


def test_allow_private_hosts_rule_accepts_loopback_urls(tmp_path: Path) -> None:
    rules = LineRules.from_settings(Settings(allow_private_hosts=True))
    path = _write(tmp_path, "m.csv", "url,category\nhttp://127.0.0.1:9000/v.mp4,news\n")
    assert _accepted(_read(path, rules))[0].url == "http://127.0.0.1:9000/v.mp4"


def test_duplicates_are_kept_for_the_producer_to_dedupe(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.csv", f"url,category\n{URL.format(1)},news\n{URL.format(1)},news\n")
    assert [r.line for r in _accepted(_read(path))] == [2, 3]


# --- JSONL -----------------------------------------------------------------------------------


def test_jsonl_objects_become_lines_and_other_keys_go_to_metadata(tmp_path: Path) -> None:
    lines = [
        {"URL": URL.format(1), "Category": "news", "Title": " T ", "n": 3, "tags": ["a"], "s": " x "},
        {"url": URL.format(2), "category": "news", "title": 2024},
    ]
    path = _write(tmp_path, "m.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    first, second = _accepted(_read(path))
    assert (first.url, first.category, first.title) == (URL.format(1), "news", "T")
    assert first.metadata == {"n": "3", "tags": '["a"]', "s": "x"}
    assert second.title == "2024"


def test_jsonl_bad_lines_are_rejected_with_reasons_and_blank_lines_skipped(tmp_path: Path) -> None:
    data = (
        b"\xef\xbb\xbf" + json.dumps({"url": URL.format(1), "category": "news"}).encode() + b"\n"
        b"\n"
        b"{not json\n"
        b"[1, 2]\n"
        b'{"url": "\xff", "category": "news"}\n'
        b'{"url": 5, "category": "news"}\n'
        b'{"category": "news"}\n'
        b"   \r\n" + b"[" * 5000 + b"\n" + json.dumps({"url": URL.format(9), "category": "news"}).encode()
    )
    records = _read(_write(tmp_path, "m.ndjson", data))
    summary = [(r.line, r.reason if isinstance(r, Rejected) else "ok") for r in records]
    assert summary[0] == (1, "ok")
    assert summary[1][0] == 3
    assert summary[1][1].startswith("invalid JSON")
    assert summary[2:6] == [
        (4, "not a JSON object"),
        (5, "invalid UTF-8"),
        (6, "url is not a string"),
        (7, "missing url"),
    ]
    assert summary[6][0] == 9
    assert summary[6][1].startswith("invalid JSON")
    assert summary[7] == (10, "ok")


def test_json_extension_is_read_as_json_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.json", json.dumps({"url": URL.format(1), "category": "news"}))
    assert len(_accepted(_read(path))) == 1


@pytest.mark.parametrize(
    "text",
    [
        f'\n  {{"url": "{URL.format(1)}", "category": "news"}}\n',
        f"url,category\n{URL.format(1)},news\n",
    ],
)
def test_unknown_extension_is_sniffed_from_the_first_non_blank_line(tmp_path: Path, text: str) -> None:
    [line] = _read(_write(tmp_path, "manifest.txt", text))
    assert isinstance(line, ManifestLine)
    assert line.line == 2
    assert line.url == URL.format(1)


def test_count_records_counts_accepted_and_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.csv", f"url,category\n{URL.format(1)},news\nftp://x,news\n")
    assert count_records(read_manifest(path, RULES)) == (1, 1)


# --- streaming -------------------------------------------------------------------------------


def test_reading_a_200k_line_manifest_keeps_memory_small(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as out:
        out.write("url,category,title\n")
        for block in range(200):
            out.write(
                "".join(f"https://cdn.example.com/v/{block}/{i}.mp4,news,title {i}\n" for i in range(1000))
            )
    tracemalloc.start()
    try:
        accepted, rejected = count_records(read_manifest(path, RULES))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (accepted, rejected) == (200_000, 0)
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.1f} MiB"


# --- properties ------------------------------------------------------------------------------

_SAFE_LINE_BYTES = st.binary(max_size=40).filter(
    lambda b: b"\n" not in b and b"\r" not in b and b'"' not in b
)
_GOOD_LINE = st.sampled_from(
    [f"{URL.format(1)},news".encode(), b"ftp://x.org,news", b",", b"  ", b"", b"\xff,news"]
)


def _is_blank_line(raw: bytes, first: bool = False) -> bool:
    if first:
        raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return not raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(_SAFE_LINE_BYTES, _GOOD_LINE), max_size=25))
def test_csv_counts_hold_for_arbitrary_unquoted_lines(tmp_path: Path, lines: list[bytes]) -> None:
    path = _write(tmp_path, "p.csv", b"url,category,title\n" + b"\n".join(lines))
    records = _read(path)
    expected = [i + 2 for i, raw in enumerate(lines) if not _is_blank_line(raw)]
    assert [r.line for r in records] == expected


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.binary(max_size=40).filter(lambda b: b"\n" not in b), _GOOD_LINE)))
def test_jsonl_counts_hold_for_arbitrary_lines(tmp_path: Path, lines: list[bytes]) -> None:
    path = _write(tmp_path, "p.jsonl", b"\n".join(lines))
    records = _read(path)
    expected = [i + 1 for i, raw in enumerate(lines) if not _is_blank_line(raw, first=i == 0)]
    assert [r.line for r in records] == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.sampled_from(["p.csv", "p.jsonl", "p.txt"]))
def test_arbitrary_bytes_never_crash_the_reader(tmp_path: Path, data: bytes, name: str) -> None:
    path = _write(tmp_path, name, b"url,category\n" + data if name == "p.csv" else data)
    physical = data.count(b"\n") + 3
    try:
        records = _read(path)
    except ManifestError:
        return
    lines = [r.line for r in records]
    assert lines == sorted(lines)
    assert all(1 <= n <= physical for n in lines)
    assert len(records) <= physical


# --- labels (uploads) ------------------------------------------------------------------------


def test_a_label_names_the_manifest_in_records_and_its_extension_picks_the_format(tmp_path: Path) -> None:
    path = _write(tmp_path, "upload-3f2a", '{"url": "https://example.com/a.mp4", "category": "news"}\nnope\n')
    records = list(read_manifest(path, RULES, label="videos.jsonl"))
    assert [r.file for r in records] == ["videos.jsonl", "videos.jsonl"]
    assert _accepted(records)[0].url == "https://example.com/a.mp4"
    assert _rejected(records)[0].line == 2


def test_a_labelled_csv_without_a_url_column_is_refused_under_its_label(tmp_path: Path) -> None:
    path = _write(tmp_path, "upload-9c1d", "link,category\nhttps://example.com/a.mp4,news\n")
    with pytest.raises(ManifestError, match=r"^videos\.csv: the CSV header has no 'url' column"):
        read_manifest(path, RULES, label="videos.csv")
