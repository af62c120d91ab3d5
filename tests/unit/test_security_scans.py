"""The security scanners find nothing: checkov on ``deploy/kubernetes/`` (each waived check
carries its reason in the manifest) and bandit on ``ebjr/`` (each ``nosec`` names its test).
Both run from ``.venv-scan`` (``make scan-deps``, which ``make test`` runs first)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from ebjr.core.layout import PROJECT_ROOT

SCAN_BIN = PROJECT_ROOT / ".venv-scan" / "bin"


def scanner(name: str) -> str:
    path = SCAN_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make scan-deps`")
    return str(path)


def test_checkov_finds_no_failed_check_in_the_manifests():
    result = subprocess.run(
        [scanner("checkov"), "-d", "deploy/kubernetes", "--framework", "kubernetes"]
        + ["--quiet", "--compact", "-o", "json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['resource']}" for r in reports for c in r["results"]["failed_checks"]
    ]
    assert failed == []
    assert sum(r["summary"]["passed"] for r in reports) > 200  # it did check the manifests


def test_every_checkov_waiver_says_why():
    for path in sorted((PROJECT_ROOT / "deploy" / "kubernetes").glob("*.yaml")):
        for waiver in re.findall(r"checkov\.io/skip\d+: (.*)", path.read_text()):
            check, _, reason = waiver.partition("=")
            assert re.fullmatch(r"CKV2?_K8S_\d+", check) and len(reason) > 10, (path, waiver)


def test_bandit_finds_nothing_in_the_package():
    result = subprocess.run(
        [scanner("bandit"), "-q", "-r", "ebjr", "-c", "pyproject.toml", "-f", "json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    found = json.loads(result.stdout)
    issues = [f"{i['test_id']} {i['filename']}:{i['line_number']}" for i in found["results"]]
    assert issues == [] and result.returncode == 0
    assert found["metrics"]["_totals"]["loc"] > 5000  # it did read the package


def test_every_nosec_names_the_check_it_silences():
    for path in sorted((PROJECT_ROOT / "ebjr").rglob("*.py")):
        for line in path.read_text().splitlines():
            if "# nosec" in line:
                assert re.search(r"# nosec B\d{3}", line), (path, line)
