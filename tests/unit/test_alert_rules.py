"""The shipped Prometheus rules pass ``promtool``: the config loads them, and the audit alert
fires on a drifting instance, not on a clean one nor on a window too small to judge
(``deploy/prometheus/alerts_test.yml``)."""

from __future__ import annotations

import shutil
import subprocess

from ebjr.core.layout import PROJECT_ROOT

PROMETHEUS = PROJECT_ROOT / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make monitoring-deps` installs Debian's prometheus"
    # a fixed tool on the project's own files, no shell
    return subprocess.run(  # nosec B603
        [binary, *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False
    )


def test_the_config_and_its_rules_load():
    found = promtool("check", "config", "prometheus.yml")
    assert found.returncode == 0, found.stdout + found.stderr
    assert "1 rules found" in found.stdout + found.stderr


def test_the_audit_alert_fires_only_where_the_window_has_drifted():
    found = promtool("test", "rules", "alerts_test.yml")
    assert found.returncode == 0, found.stdout + found.stderr
    assert "SUCCESS" in found.stdout
