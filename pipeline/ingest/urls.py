"""URL normalization and safety checks for manifest lines.

``normalize_url`` turns a raw manifest value into the one stable form used for item keys, or raises
``InvalidUrl`` with a short human reason. Only http(s) URLs with a public host pass: loopback,
private, link-local, multicast, reserved and unspecified addresses (in any notation that a resolver
would accept, such as ``2130706433`` or ``0177.0.0.1``) and local-only names are refused unless
``allow_private_hosts`` is set. Path and query are kept as given; only non-ASCII characters are
percent-encoded (UTF-8) so that the result is plain ASCII and normalizing it again changes nothing.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import quote

__all__ = ["InvalidUrl", "normalize_url"]

DEFAULT_PORTS = {"http": 80, "https": 443}
LOCAL_SUFFIXES = (".localhost", ".local", ".internal")
MAX_HOST_LENGTH = 253

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f\u3000\ufeff]")
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
# The common case (lower-case scheme and host name, no port, printable ASCII, no fragment) in one
# match; anything else takes the full path. Both give the same result for the URLs this matches.
_FAST = re.compile(rf"https?://((?:{_LABEL}\.)+(?![0-9])(?!-)[a-z0-9_-]{{1,63}}(?<!-))(/[!\"$-~]*)?")
_AUTHORITY_END = re.compile(r"[/?#]")
_HOST_NAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9_-]{1,63}(?<!-))*")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
_PORT = re.compile(r"[0-9]{1,5}")
# Characters kept as they are in path and query: every printable ASCII character.
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class InvalidUrl(ValueError):  # noqa: N818 - the name the contract uses
    """A URL that cannot be accepted; ``reason`` is short and meant for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalize_url(raw: str, *, max_length: int = 2048, allow_private_hosts: bool = False) -> str:
    """Return the normalized form of ``raw`` or raise ``InvalidUrl``."""
    text = raw.strip()
    if len(text) > max_length:
        raise InvalidUrl(f"url longer than {max_length} characters")
    fast = _FAST.fullmatch(text)
    if fast is not None and _fast_ok(fast, max_length, allow_private_hosts):
        return text if fast.group(2) else text + "/"
    return _normalize_full(text, max_length, allow_private_hosts)


def _normalize_full(text: str, max_length: int, allow_private: bool) -> str:
    """The complete normalization of a stripped URL (the fast path is a shortcut of this)."""
    if not text:
        raise InvalidUrl("empty url")
    if len(text) > max_length:
        raise InvalidUrl(f"url longer than {max_length} characters")
    if _BAD_CHARS.search(text):
        raise InvalidUrl("control character or space in url")
    scheme, rest = _split_scheme(text)
    authority, tail = _split_authority(rest)
    host, port = _split_host_port(authority)
    host = _check_host(host, allow_private)
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    result = f"{scheme}://{host}{_path_and_query(tail)}"
    if len(result) > max_length:
        raise InvalidUrl(f"normalized url longer than {max_length} characters")
    return result


def _fast_ok(match: re.Match[str], max_length: int, allow_private: bool) -> bool:
    host = match.group(1)
    if len(host) > MAX_HOST_LENGTH or (match.group(2) is None and len(match.string) >= max_length):
        return False
    return allow_private or not (host == "localhost" or host.endswith(LOCAL_SUFFIXES))


def _split_scheme(text: str) -> tuple[str, str]:
    match = _SCHEME.match(text)
    if match is None:
        raise InvalidUrl("missing scheme (expected http or https)")
    scheme = match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidUrl(f"scheme {scheme!r} is not http(s)")
    rest = text[match.end() :]
    if not rest.startswith("//"):
        raise InvalidUrl("missing host")
    return scheme, rest[2:]


def _split_authority(rest: str) -> tuple[str, str]:
    match = _AUTHORITY_END.search(rest)
    if match is None:
        return rest, ""
    return rest[: match.start()], rest[match.start() :]


def _split_host_port(authority: str) -> tuple[str, int | None]:
    if "@" in authority:
        raise InvalidUrl("credentials in URL")
    if "\\" in authority:
        raise InvalidUrl("backslash in host")
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise InvalidUrl("unclosed IPv6 bracket")
        host, after = authority[: end + 1], authority[end + 1 :]
    else:
        host, sep, port_text = authority.partition(":")
        after = sep + port_text
    return host, _parse_port(after)


def _parse_port(after: str) -> int | None:
    if not after:
        return None
    if after[0] != ":":
        raise InvalidUrl("malformed host")
    digits = after[1:]
    if not digits:
        return None
    if not _PORT.fullmatch(digits) or int(digits) > 65535:
        raise InvalidUrl(f"invalid port {digits[:10]!r}")
    return int(digits)


def _check_host(host: str, allow_private: bool) -> str:
    """Return the normalized host (brackets kept for IPv6) after the safety checks."""
    if not host or host == "[]":
        raise InvalidUrl("missing host")
    if host.startswith("["):
        address: IPAddress = _parse_ipv6(host[1:-1])
        _check_address(address, allow_private)
        return f"[{address.compressed}]"
    name = _encode_name(host)
    ipv4 = _parse_ipv4(name)
    if ipv4 is not None:
        _check_address(ipv4, allow_private)
        return str(ipv4)
    if not allow_private:
        _check_name(name)
    return name


def _parse_ipv6(text: str) -> ipaddress.IPv6Address:
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        raise InvalidUrl("invalid IPv6 address") from None


def _encode_name(host: str) -> str:
    name = host.lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise InvalidUrl("invalid international host name") from None
    name = name.removesuffix(".")
    if len(name) > MAX_HOST_LENGTH or not _HOST_NAME.fullmatch(name):
        raise InvalidUrl("invalid host name")
    return name


def _parse_ipv4(name: str) -> ipaddress.IPv4Address | None:
    """An IPv4 literal in any notation ``inet_aton`` accepts; ``None`` for a host name."""
    last = name.rpartition(".")[2]
    if not _NUMERIC_LABEL.fullmatch(last):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        raise InvalidUrl("invalid IPv4 address") from None


def _check_address(address: IPAddress, allow_private: bool) -> None:
    if allow_private:
        return
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or _nat64(address)
        if embedded is not None:
            _check_address(embedded, allow_private)
    if _is_non_public(address):
        raise InvalidUrl(f"non-public address {address.compressed}")


def _is_non_public(address: IPAddress) -> bool:
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _nat64(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _check_name(name: str) -> None:
    if name == "localhost" or name.endswith(LOCAL_SUFFIXES):
        raise InvalidUrl(f"local host name {name!r}")
    if "." not in name:
        raise InvalidUrl(f"host {name!r} has no domain")


def _path_and_query(tail: str) -> str:
    path_query = tail.partition("#")[0]
    if not path_query.isascii():
        path_query = quote(path_query, safe=_SAFE)
    if not path_query.startswith("/"):
        path_query = "/" + path_query
    return path_query
