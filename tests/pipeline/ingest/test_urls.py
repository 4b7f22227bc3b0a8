"""normalize_url: the stable form, the hostile inputs it refuses, and its properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ingest.urls import _FAST, InvalidUrl, _normalize_full, normalize_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  https://example.com/v.mp4  ", "https://example.com/v.mp4"),
        ("HTTP://Example.COM/Path/V.mp4", "http://example.com/Path/V.mp4"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:80/a", "https://example.com:80/a"),
        ("http://example.com:8080/a?b=1", "http://example.com:8080/a?b=1"),
        ("https://example.com/a#t=10", "https://example.com/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com?q=1", "https://example.com/?q=1"),
        ("https://example.com./a", "https://example.com/a"),
        ("https://cdn.example.com/a%20b?x=%2F&y=", "https://cdn.example.com/a%20b?x=%2F&y="),
        ("https://bücher.de/v.mp4", "https://xn--bcher-kva.de/v.mp4"),
        ("https://example.com/vidéo?t=é", "https://example.com/vid%C3%A9o?t=%C3%A9"),
        ("http://8.8.8.8/v.mp4", "http://8.8.8.8/v.mp4"),
        ("http://134744072/v.mp4", "http://8.8.8.8/v.mp4"),
        ("http://[2001:4860:4860:0::8888]:8443/v", "http://[2001:4860:4860::8888]:8443/v"),
    ],
)
def test_normalize_url_produces_the_stable_form(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("file:///etc/passwd", "scheme 'file' is not http(s)"),
        ("javascript:alert(1)", "scheme 'javascript' is not http(s)"),
        ("data:text/html,<script>", "scheme 'data' is not http(s)"),
        ("ftp://example.com/v.mp4", "scheme 'ftp' is not http(s)"),
        ("example.com/v.mp4", "missing scheme"),
        ("", "empty url"),
        ("http:example.com", "missing host"),
        ("http:///v.mp4", "missing host"),
        ("http://user:pass@example.com/", "credentials in URL"),
        ("http://user@example.com/", "credentials in URL"),
        ("http://exa mple.com/", "control character or space"),
        ("http://example.com/a\tb", "control character or space"),
        ("http://example.com/\x00", "control character or space"),
        ("http://example.com:99999/", "invalid port"),
        ("http://example.com:8o/", "invalid port"),
        ("http://[::1/", "unclosed IPv6 bracket"),
        ("http://[zz::1]/", "invalid IPv6 address"),
        ("http://-bad-.com/", "invalid host name"),
        ("http://a..b.com/", "invalid host name"),
        ("http://08.1.1.1/", "invalid IPv4 address"),
        ("http://127.0.0.1/", "non-public address 127.0.0.1"),
        ("http://127.1/", "non-public address 127.0.0.1"),
        ("http://2130706433/", "non-public address 127.0.0.1"),
        ("http://0x7f000001/", "non-public address 127.0.0.1"),
        ("http://0177.0.0.1/", "non-public address 127.0.0.1"),
        ("http://[::1]/", "non-public address ::1"),
        ("http://[::ffff:127.0.0.1]/", "non-public address 127.0.0.1"),
        ("http://[::ffff:10.0.0.1]/", "non-public address 10.0.0.1"),
        ("http://[fe80::1]/", "non-public address fe80::1"),
        ("http://[::]/", "non-public address ::"),
        ("http://169.254.169.254/latest/meta-data", "non-public address 169.254.169.254"),
        ("http://10.1.2.3/", "non-public address"),
        ("http://192.168.0.1/", "non-public address"),
        ("http://172.16.0.1/", "non-public address"),
        ("http://100.64.0.1/", "non-public address"),
        ("http://224.0.0.1/", "non-public address"),
        ("http://240.0.0.1/", "non-public address"),
        ("http://0.0.0.0/", "non-public address"),
        ("http://localhost/", "local host name 'localhost'"),
        ("http://LOCALHOST:8000/", "local host name 'localhost'"),
        ("http://api.localhost/", "local host name"),
        ("http://printer.local/", "local host name"),
        ("http://metadata.google.internal/", "local host name"),
        ("http://intranet/", "has no domain"),
    ],
)
def test_normalize_url_rejects_hostile_input_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidUrl) as info:
        normalize_url(raw)
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


def test_a_100_kb_url_is_rejected_as_too_long() -> None:
    with pytest.raises(InvalidUrl, match="longer than 2048"):
        normalize_url("https://example.com/" + "a" * 100_000)


def test_length_limit_applies_to_the_normalized_form() -> None:
    raw = "https://example.com/" + "é" * 20  # 40 chars raw, 20 * 6 percent-encoded
    assert normalize_url(raw, max_length=200).endswith("%C3%A9")
    with pytest.raises(InvalidUrl, match="normalized url longer"):
        normalize_url(raw, max_length=60)


def test_adding_the_root_path_respects_the_length_limit() -> None:
    raw = "https://example.com"
    with pytest.raises(InvalidUrl, match="longer"):
        normalize_url(raw, max_length=len(raw))


@pytest.mark.parametrize(
    "raw",
    ["http://127.0.0.1:8000/v.mp4", "http://[::1]/v", "http://localhost/v", "http://media.internal/v"],
)
def test_allow_private_hosts_lets_local_hosts_through(raw: str) -> None:
    assert normalize_url(raw, allow_private_hosts=True).startswith("http://")


def test_allow_private_hosts_still_rejects_bad_schemes_and_credentials() -> None:
    with pytest.raises(InvalidUrl):
        normalize_url("file:///etc/passwd", allow_private_hosts=True)
    with pytest.raises(InvalidUrl):
        normalize_url("http://u:p@127.0.0.1/", allow_private_hosts=True)


# --- properties ------------------------------------------------------------------------------

_label = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
_host = st.one_of(
    st.lists(_label, min_size=2, max_size=4).map(".".join),
    st.sampled_from(["bücher.de", "例え.jp", "8.8.8.8", "[2001:db8::1]", "127.0.0.1", "localhost"]),
)
_url = st.builds(
    lambda scheme, host, port, path, query, fragment: f"{scheme}://{host}{port}{path}{query}{fragment}",
    st.sampled_from(["http", "https", "HTTP", "HtTpS"]),
    _host,
    st.sampled_from(["", ":80", ":443", ":8080", ":"]),
    st.text(max_size=30).map(lambda t: "/" + t),
    st.one_of(st.just(""), st.text(max_size=20).map(lambda t: "?" + t)),
    st.one_of(st.just(""), st.text(max_size=10).map(lambda t: "#" + t)),
)


def _check_normalized(url: str) -> None:
    assert url.startswith(("http://", "https://"))
    assert "#" not in url
    assert url.isascii()
    assert normalize_url(url) == url


@settings(max_examples=300, deadline=None)
@given(_url)
def test_normalize_url_is_idempotent_and_has_no_fragment(raw: str) -> None:
    try:
        url = normalize_url(raw)
    except InvalidUrl:
        return
    _check_normalized(url)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_normalize_url_on_arbitrary_text_raises_invalid_url_or_normalizes(raw: str) -> None:
    try:
        url = normalize_url(raw)
    except InvalidUrl as exc:
        assert exc.reason
        return
    _check_normalized(url)


@settings(max_examples=120, deadline=None)
@given(st.from_regex(_FAST, fullmatch=True))
def test_fast_path_agrees_with_the_full_normalization(raw: str) -> None:
    try:
        expected = _normalize_full(raw, 2048, False)
    except InvalidUrl:
        with pytest.raises(InvalidUrl):
            normalize_url(raw)
        return
    assert normalize_url(raw) == expected
