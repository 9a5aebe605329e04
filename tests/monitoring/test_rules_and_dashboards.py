"""The alert rules (``promtool check`` / ``promtool test``), the dashboards' JSON and the local scrape config.

None of these need the desk; they need Debian's ``prometheus`` package (``promtool``) and fail without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from quorum_common.paths import REPO_ROOT
from quorum_desk import local
from quorum_desk.composition import CONSUMERS, SOURCE

PROM_DIR = REPO_ROOT / "deploy" / "prometheus"
ALERTS = REPO_ROOT / "deploy" / "helm" / "quorum" / "alerts" / "quorum-alerts.yaml"
DASHBOARDS_DIR = REPO_ROOT / "deploy" / "helm" / "quorum" / "dashboards"
RULES_TEST = PROM_DIR / "alerts-test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    """Path of promtool; fails (never skips) when the package is missing."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: apt-get install -y prometheus (Debian package)", pytrace=False)
    return found


def run_promtool(promtool: str, *args: str | Path) -> subprocess.CompletedProcess:
    """Run promtool; stdout and stderr together in ``.stdout``."""
    return subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_alert_rules_are_valid(promtool: str) -> None:
    out = run_promtool(promtool, "check", "rules", ALERTS)
    assert out.returncode == 0, out.stdout + out.stderr


def test_alert_rules_pass_their_unit_tests(promtool: str) -> None:
    out = run_promtool(promtool, "test", "rules", RULES_TEST)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("mutant", ["vector(1) == 0", "vector(1)"], ids=["never-fires", "always-fires"])
def test_unit_tests_catch_a_broken_alert(promtool: str, tmp_path: Path, alert_rule: dict, mutant: str) -> None:
    """Each alert has a case where it must fire and one where it must not: breaking it fails promtool test."""
    doc = yaml.safe_load(ALERTS.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule["alert"] == alert_rule["alert"]:
                rule["expr"] = mutant
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "quorum-alerts.yaml").write_text(yaml.safe_dump(doc))
    tests = yaml.safe_load(RULES_TEST.read_text())
    tests["rule_files"] = [str(tmp_path / "alerts" / "quorum-alerts.yaml")]
    (tmp_path / "alerts-test.yaml").write_text(yaml.safe_dump(tests))
    out = run_promtool(promtool, "test", "rules", tmp_path / "alerts-test.yaml")
    assert out.returncode != 0, f"{alert_rule['alert']} = {mutant!r} still passes the unit tests"


def test_every_alert_has_a_severity_summary_and_description(alert_rule: dict) -> None:
    assert alert_rule["labels"]["severity"] in {"warning", "critical"}
    assert alert_rule["annotations"]["summary"] and alert_rule["annotations"]["description"]


def test_local_scrape_config_matches_the_local_desk(promtool: str) -> None:
    config = PROM_DIR / "prometheus.yml"
    out = run_promtool(promtool, "check", "config", config)
    assert out.returncode == 0, out.stdout + out.stderr
    scrape = yaml.safe_load(config.read_text())["scrape_configs"]
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in scrape}
    names = [s.name for s in CONSUMERS] + [SOURCE.name, "admin"]
    assert jobs == {n: [f"127.0.0.1:{local.port_of(n)}"] for n in names}


def test_dashboards_are_up_to_date(dashboards: ModuleType) -> None:
    rendered = dashboards.render()
    assert {p.name for p in DASHBOARDS_DIR.glob("*.json")} == set(rendered), "run deploy/prometheus/dashboards.py"
    for name, text in rendered.items():
        assert (DASHBOARDS_DIR / name).read_text() == text, f"{name} is stale: run deploy/prometheus/dashboards.py"


def test_dashboards_are_well_formed(dashboards: ModuleType) -> None:
    uids = set()
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        board = json.loads(path.read_text())
        assert board["uid"] == path.stem and board["uid"] not in uids and len(board["uid"]) <= 40
        uids.add(board["uid"])
        assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"]), panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
            if panel["title"].startswith(dashboards.PENDING):
                assert panel["description"].startswith("PENDING:"), panel["title"]
    assert uids == {"quorum-overview", "quorum-risk", "quorum-execution", "quorum-pipeline", "quorum-models"}
