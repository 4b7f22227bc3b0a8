"""``vidsearch serve``'s start decisions and ``vidsearch api-key`` (pure logic, no server)."""

from __future__ import annotations

import re
import subprocess
import sys

from pipeline.settings import load_settings
from vidsearch.api.keys import KeyRing, parse_entry
from vidsearch.api.routes_jobs import upload_label
from vidsearch.api.serve import bind_host, page_url


def test_without_keys_a_public_host_becomes_loopback_and_the_note_says_why() -> None:
    host, note = bind_host(load_settings(), "0.0.0.0")
    assert host == "127.0.0.1"
    assert "loopback clients only" in note and "binding 127.0.0.1 instead" in note
    assert bind_host(load_settings(), "127.0.0.1")[0] == "127.0.0.1"


def test_with_keys_the_host_is_kept_and_the_note_counts_roles_not_keys() -> None:
    entries = [f"a:admin:{'1' * 64}", f"r:read:{'2' * 64}", f"s:read:{'3' * 64}"]
    host, note = bind_host(load_settings(api_keys=entries), "0.0.0.0")
    assert host == "0.0.0.0"
    assert note == "3 API key(s): 1 admin, 2 read-only"
    assert page_url("0.0.0.0", 8080) == "http://127.0.0.1:8080/"


def test_api_key_prints_a_key_once_and_an_entry_holding_only_its_digest() -> None:
    proc = subprocess.run([sys.executable, "-m", "vidsearch", "api-key", "--name", "web", "--role", "admin"],
                          capture_output=True, text=True, check=True, timeout=60)
    key = re.search(r"key \(.*\): (vsk_\S+)", proc.stdout)
    entry = re.search(r"api_keys entry .*: (\S+)", proc.stdout)
    assert key and entry
    assert key[1] not in entry[1]
    ring = KeyRing([parse_entry(entry[1])])
    found = ring.authenticate(key[1])
    assert found is not None and (found.name, found.role) == ("web", "admin")


def test_an_upload_label_is_a_safe_base_name_whose_extension_follows_the_content_type() -> None:
    assert upload_label("../../etc/videos.csv", "text/plain") == "videos.csv"
    assert upload_label("batch 7", "application/x-ndjson") == "batch_7.jsonl"
    assert upload_label("upload", "text/csv") == "upload.csv"
    assert upload_label(".hidden", "") == "hidden"
    assert upload_label("", "") == "upload"
