"""docker-compose.yml and the Dockerfile, checked without Docker: the compose file is valid against
the Compose Specification schema, and every application service runs a real ``vidsearch`` command."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.test_config_examples import env_example
from vidsearch.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "data" / "compose-spec" / "compose-spec.schema.json"  # vendored, see its README
APP_IMAGE = "vidsearch:latest"
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services built from our Dockerfile (their image is the app image)."""
    services: dict[str, dict[str, Any]] = compose["services"]
    return {n: s for n, s in services.items() if s.get("image") == APP_IMAGE or "build" in s}


def subcommands() -> set[str]:
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(subs.choices)


def test_the_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_every_application_service_runs_a_command_of_our_cli(compose: dict[str, Any]) -> None:
    apps = app_services(compose)
    known = subcommands()
    assert {"worker-embedding", "worker-polling", "writer", "metrics", "sandbox", "api"} <= set(apps)
    for name, service in apps.items():
        if service.get("entrypoint") is not None:
            continue
        command = service["command"]
        assert command[0] in known, f"{name}: `vidsearch {command[0]}` does not exist"
        try:
            build_parser().parse_args(command)
        except SystemExit:
            pytest.fail(f"{name}: `vidsearch {' '.join(command)}` is rejected by the CLI")


def test_every_application_service_runs_our_entrypoint(compose: dict[str, Any]) -> None:
    overridden = [n for n, s in app_services(compose).items() if s.get("entrypoint") is not None]
    assert overridden == []


def test_flower_takes_its_password_from_the_environment_not_the_command_line(
    compose: dict[str, Any],
) -> None:
    flower = compose["services"]["flower"]
    assert flower["command"][0] == "flower"
    assert "VIDSEARCH_FLOWER_BASIC_AUTH" in flower["environment"]
    assert not any("basic" in part.lower() for part in flower["command"]), "credentials on a command line"


def test_the_workers_cover_every_queue_and_no_beat_runs(compose: dict[str, Any]) -> None:
    apps = app_services(compose)
    commands = [s["command"] for s in apps.values() if "profiles" not in s]
    queues = {q for c in commands if c[0] == "worker" for q in c[c.index("--queues") + 1].split(",")}
    writers = [c for c in commands if c[0] == "writer"]
    beats = [c for c in commands if c[0] == "beat"]
    assert {"embedding", "polling"} <= queues and writers
    assert beats == []  # every worker runs the tick; beat only for a schedule file's rare entries


def test_the_api_serves_on_all_interfaces_with_keys_from_the_environment(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert api["command"][:3] == ["serve", "--host", "0.0.0.0"]
    assert api["environment"]["VIDSEARCH_API_KEYS"].startswith("${VIDSEARCH_API_KEYS:?")
    assert api["ports"] == ["127.0.0.1:${API_HOST_PORT:-8080}:8080"]
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    assert not any("vsk_" in part for part in api["command"]), "a key on a command line"


def test_redis_keeps_an_append_only_file_and_requires_a_password(compose: dict[str, Any]) -> None:
    command = " ".join(compose["services"]["redis"]["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert "--requirepass ${REDIS_PASSWORD" in command
    url = compose["services"]["writer"]["environment"]["VIDSEARCH_REDIS_URL"]
    assert "${REDIS_PASSWORD" in url and "@redis:6379" in url


def test_images_are_pinned_and_dependencies_wait_for_health_checks(compose: dict[str, Any]) -> None:
    services: dict[str, dict[str, Any]] = compose["services"]
    for name, service in services.items():
        image = service["image"]
        if service.get("image") != APP_IMAGE:
            assert ":" in image and not image.endswith(":latest"), f"{name}: unpinned image {image}"
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert rule["condition"] == "service_healthy", f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency], f"{dependency} has no health check"


def test_named_volumes_are_declared_and_the_sandbox_is_optional(compose: dict[str, Any]) -> None:
    used = {
        v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", [])
        if not v.startswith(("$", ".", "/"))
    }
    assert used <= set(compose["volumes"])
    assert compose["services"]["sandbox"]["profiles"] == ["sandbox"]
    assert "--host" in compose["services"]["sandbox"]["command"]


def test_every_variable_the_compose_file_requires_is_in_the_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    required = {m[1] for m in VARIABLE.finditer(text) if not (m[2] or "").lstrip(":").startswith("-")}
    assert required
    assert required <= set(env_example())


def test_the_image_runs_vidsearch_as_a_non_root_user_on_python_3_11_slim() -> None:
    lines = [x.strip() for x in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()]
    froms = [x for x in lines if x.startswith("FROM ")]
    assert froms and all(x.split()[1] == "python:3.11-slim" for x in froms)
    assert any(re.fullmatch(r"RUN pip install .*\.", x) for x in lines)
    users = [x for x in lines if x.startswith("USER ")]
    assert users and not users[-1].split()[1].startswith(("root", "0"))
    assert 'ENTRYPOINT ["vidsearch"]' in lines
