"""The alert and recording rules (config/prometheus/) and the Grafana dashboard (config/grafana/):
``promtool check rules`` and ``promtool test rules`` pass (Debian's ``prometheus`` package, installed
here as the browser tests install Chromium), the unit tests cover every rule firing and not firing,
and the dashboard is valid JSON whose queries parse and name only our series. That every name is in
the exporter's real output after a real job: tests/workers/test_flower.py."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "config" / "prometheus"
RULE_FILES = (PROMETHEUS / "recording.yml", PROMETHEUS / "alerts.yml")
RULES_TEST = PROMETHEUS / "rules_test.yml"
DASHBOARD = ROOT / "config" / "grafana" / "vidsearch-dashboard.json"
SERIES = re.compile(r"\bvidsearch_[a-z0-9_]+\b")
RECORDED = re.compile(r"\bvidsearch:[a-z0-9_:]+\b")


def rules() -> list[dict[str, Any]]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def metric_names_used() -> set[str]:
    """Every exporter series the rules and the dashboard read (recording rules' names excluded)."""
    exprs = [rule["expr"] for rule in rules()] + dashboard_exprs()
    return {name for expr in exprs for name in SERIES.findall(expr)}


def _install_promtool() -> None:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("promtool is missing and cannot be installed here (needs root and apt-get): "
                    "apt-get install -y prometheus, then run these tests again")
    with Path("/tmp/vidsearch-prometheus-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test processes (pytest-xdist) install it once
        if shutil.which("promtool") is not None:
            return
        for command in (["apt-get", "update", "-qq"],
                        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"]):
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=900)


@pytest.fixture(scope="module")
def promtool() -> str:
    if shutil.which("promtool") is None:
        _install_promtool()
    path = shutil.which("promtool")
    assert path is not None, "apt-get installed prometheus but promtool is not on PATH"
    return path


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules_accepts_the_rule_files(promtool: str) -> None:
    proc = _run(promtool, "check", "rules", *map(str, RULE_FILES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(RULE_FILES)


def test_promtool_unit_tests_of_every_rule_pass(promtool: str) -> None:
    proc = _run(promtool, "test", "rules", str(RULES_TEST))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_test_rules_fails_when_a_rule_misbehaves(promtool: str, tmp_path: Path) -> None:
    for path in RULE_FILES:  # the memory alert at 95% no longer fires at the tests' 90%
        (tmp_path / path.name).write_text(path.read_text().replace("> 0.85", "> 0.95"))
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    proc = _run(promtool, "test", "rules", str(tmp_path / RULES_TEST.name))
    assert proc.returncode != 0
    assert "VidsearchRedisMemoryNearLimit" in proc.stdout + proc.stderr


def test_the_unit_tests_cover_every_alert_firing_and_not_firing_and_every_recording_rule() -> None:
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    exprs = " ".join(case["expr"] for test in tests for case in test.get("promql_expr_test", []))
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert len(alerts) >= 8
    assert alerts - fired == set(), "alerts never seen firing"
    assert alerts - quiet == set(), "alerts never seen staying quiet"
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    assert recorded - set(RECORDED.findall(exprs)) == set(), "recording rules never evaluated"


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section_in_operations_md() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    for rule in (r for r in rules() if "alert" in r):
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"
        assert f"### {rule['alert']}\n" in operations, f"{rule['alert']}: no section in operations.md"


def test_the_dashboard_is_json_whose_queries_parse_and_read_only_our_series(
    promtool: str, tmp_path: Path,
) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = dashboard_exprs()
    assert dashboard["uid"] and len(exprs) >= 15
    as_rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr_{i}", "expr": expr} for i, expr in enumerate(exprs)]}]}
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(as_rules))
    proc = _run(promtool, "check", "rules", str(tmp_path / "dashboard.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr  # every query is valid PromQL
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    used = {name for expr in exprs for name in RECORDED.findall(expr)}
    assert used <= recorded, "the dashboard reads a recording rule that recording.yml lacks"
    assert all(SERIES.search(expr) or RECORDED.search(expr) for expr in exprs)
