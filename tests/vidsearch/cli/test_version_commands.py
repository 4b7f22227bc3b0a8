"""``vidsearch versions|reembed|promote|rollback``: every bad input is one clear line and exit 2.

Real redis-server and Milvus Lite; the live version's ledger is seeded in Redis (no workers run,
so a re-embed's items stay waiting: an incomplete version).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
import redis

from pipeline.ledger.store import Admission, JobStore, SubmitMode
from pipeline.settings import Settings
from pipeline.spec import EmbeddingSpec, item_key
from pipeline.state.keys import Keys

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEC = EmbeddingSpec.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
URLS = [f"https://cdn.example.com/v/kayak-{i}.mp4" for i in range(3)]


class Cli:
    def __init__(self, redis_url: str, milvus_uri: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.prefix = f"t{tag}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDSEARCH_", "TWELVE"))}
        self.env.update({"VIDSEARCH_REDIS_URL": redis_url, "VIDSEARCH_MILVUS_URI": milvus_uri,
                         "VIDSEARCH_REDIS_PREFIX": self.prefix,
                         "VIDSEARCH_COLLECTION_PREFIX": f"c{tag}"})

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vidsearch", *args], env=self.env,
                              capture_output=True, text=True, timeout=120, check=False,
                              stdin=subprocess.DEVNULL)


@pytest.fixture
def cli(redis_url: str, milvus_uri: str, redis_client: redis.Redis) -> Cli:
    cli = Cli(redis_url, milvus_uri)
    jobs = JobStore(redis_client, Keys(cli.prefix))
    job_id = jobs.create_job(["seed.csv"], SPEC)
    jobs.submit_batch(job_id, [Admission(item_key(u, SPEC), "outdoor", u) for u in URLS], SubmitMode())
    jobs.seal(job_id)
    for key in jobs.admit(len(URLS), 1e12):
        jobs.r.hset(jobs.keys.item(key), "s", "done")
    jobs.add_counts(job_id, done=len(URLS))
    return cli


def _bad(proc: subprocess.CompletedProcess[str], *says: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for text in says:
        assert text in proc.stderr, proc.stderr


def test_the_first_versions_call_adopts_the_existing_collection_as_live(cli: Cli) -> None:
    proc = cli("versions", "--json")
    assert proc.returncode == 0, proc.stderr
    (version,) = json.loads(proc.stdout)
    assert (version["id"], version["state"], version["done"]) == ("marengo3.0-512", "live", 3)
    assert version["collection"].endswith("_marengo3_0_d512")
    table = cli("versions")
    assert table.returncode == 0 and "marengo3.0-512" in table.stdout and "live" in table.stdout


@pytest.mark.parametrize(("args", "says"), [
    (("--model", "marengo9"), "unknown model"),
    (("--model", "marengo3.5", "--dimension", "300"), "not 300"),
    (("--model", "marengo3.5", "--options", "visual,transcription"), "transcription"),
    (("--model", "marengo3.0"), "is the live version"),
])
def test_an_impossible_reembed_is_exit_2(cli: Cli, args: tuple[str, ...], says: str) -> None:
    _bad(cli("reembed", *args), says)


def test_a_dry_run_of_an_impossible_reembed_is_exit_2(cli: Cli) -> None:
    """The plan is checked before ``--dry-run`` branches off (``run_reembed``): one case shows it."""
    _bad(cli("reembed", "--model", "marengo3.5", "--dimension", "300", "--dry-run"), "not 300")


def test_a_dry_run_counts_the_live_items_and_creates_nothing(cli: Cli) -> None:
    proc = cli("reembed", "--model", "marengo3.5", "--dimension", "256", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert (plan["from"], plan["to"], plan["items"], plan["tasks"]) == (
        "marengo3.0-512", "marengo3.5-256", 3, 3)
    assert plan["quota_s"] == 3.0  # 3 tasks at the default 60 a minute
    assert [v["id"] for v in json.loads(cli("versions", "--json").stdout)] == ["marengo3.0-512"]


def test_promotion_checks_completeness_and_drop_refuses_the_live_version(
    cli: Cli, redis_client: redis.Redis
) -> None:
    started = cli("reembed", "--model", "marengo3.5", "--dimension", "256", "--json")
    assert started.returncode == 0, started.stderr
    job_id = json.loads(started.stdout)["job_id"]
    _bad(cli("reembed", "--model", "marengo3.5", "--dimension", "256"), "exists already")
    _bad(cli("promote", "marengo3.5-256"), "incomplete", "0 of 3", "--allow-partial")
    _bad(cli("promote", "marengo3.5-256", "--allow-partial", "lots"), "percentage")
    _bad(cli("promote", "marengo3.5-512"), "no such version", "marengo3.5-256")
    _bad(cli("versions", "drop", "marengo3.0-512", "--yes"), "is live")
    _bad(cli("versions", "drop", "marengo3.5-256", "--yes"), "running jobs", job_id)
    _bad(cli("rollback"), "nothing to roll back")

    assert cli("promote", "marengo3.5-256", "--allow-partial", "0%").returncode == 0
    _bad(cli("versions", "drop", "marengo3.5-256", "--yes"), "is live")
    assert cli("rollback").returncode == 0
    live = {v["id"]: v["state"] for v in json.loads(cli("versions", "--json").stdout)}
    assert live == {"marengo3.0-512": "live", "marengo3.5-256": "previous"}

    jobs = JobStore(redis_client, Keys(cli.prefix))
    for key in redis_client.lrange(jobs.keys.wait, 0, -1):
        jobs.fail(key.decode().split("\x1f")[0], "test: given up")
    for key in jobs.admit(10, 1e12):
        jobs.fail(key, "test: given up")
    _bad(cli("versions", "drop", "marengo3.5-256"), "--yes")  # no terminal to confirm on
    dropped = cli("versions", "drop", "marengo3.5-256", "--yes")
    assert dropped.returncode == 0, dropped.stderr
    assert [v["id"] for v in json.loads(cli("versions", "--json").stdout)] == ["marengo3.0-512"]
