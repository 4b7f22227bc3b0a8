"""docker-compose.sentinel.yml, the Sentinel variant, checked without Docker: valid against the
Compose Specification schema; two replicas of the base file's primary and three Sentinels that
watch it under the service name every vidsearch service's ``redis+sentinel://`` URL names; no
vidsearch service of the base file left on the plain URL; its variables are in the env example."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml

from pipeline.settings import parse_redis_url
from tests.test_compose import ROOT, SCHEMA, VARIABLE, app_services
from tests.test_config_examples import env_example

OVERRIDE = ROOT / "docker-compose.sentinel.yml"


@pytest.fixture(scope="module")
def override() -> dict[str, Any]:
    loaded = yaml.safe_load(OVERRIDE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _interpolated(value: str) -> str:
    return VARIABLE.sub(lambda m: f"x{m[1].lower()}x", value)


def test_the_sentinel_variant_is_valid_against_the_compose_specification(override: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(override), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_every_vidsearch_service_is_pointed_at_the_sentinels(
    base: dict[str, Any], override: dict[str, Any]
) -> None:
    services = override["services"]
    for name in app_services(base):
        if name == "sandbox":  # the Twelve Labs stand-in uses no Redis
            continue
        env = services[name]["environment"]
        target = parse_redis_url(_interpolated(env["VIDSEARCH_REDIS_URL"]))
        assert target.is_sentinel, name
        assert "VIDSEARCH_REDIS_SENTINEL_PASSWORD" in env, name
        for host, port in target.sentinels:
            assert host in services and port == 26379, (name, host)
            assert services[name]["depends_on"][host]["condition"] == "service_healthy"


def test_the_sentinels_watch_the_primary_under_the_urls_service_name(override: dict[str, Any]) -> None:
    services = override["services"]
    url = services["writer"]["environment"]["VIDSEARCH_REDIS_URL"]
    target = parse_redis_url(_interpolated(url))
    for host, _ in target.sentinels:
        script = services[host]["command"][0]
        assert f"sentinel monitor {target.service_name} redis 6379 2" in script
        assert "requirepass" in script and "--sentinel" in script


def test_two_replicas_follow_the_primary_with_its_password_and_no_eviction(override: dict[str, Any]) -> None:
    services = override["services"]
    replicas = [n for n in services if n.startswith("redis-replica-")]
    assert len(replicas) == 2
    for name in replicas:
        command = services[name]["command"]
        assert command[command.index("--replicaof") + 1:command.index("--replicaof") + 3] == ["redis", "6379"]
        assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
        assert "--masterauth" in command and "--requirepass" in command
    assert "--masterauth" in services["redis"]["command"]  # it may come back as a replica


def test_every_variable_the_sentinel_variant_requires_is_in_the_env_example() -> None:
    text = OVERRIDE.read_text(encoding="utf-8")
    required = {m[1] for m in VARIABLE.finditer(text) if (m[2] or "").startswith(":?")}
    assert required == {"REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD"}
    assert required <= set(env_example())
