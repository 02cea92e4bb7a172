"""`rentaliq synth` and `rentaliq envs` through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def rentaliq(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "rentaliq.cli", *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=300
    )


def test_envs_prints_the_comparison_table():
    result = rentaliq("envs")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    row = lambda label: next(line for line in lines if label in line)  # noqa: E731
    assert all(v in row("RDS Instance Class") for v in ("db.t3.micro", "db.t3.small", "db.t3.medium"))
    assert all(v in row("Enhanced Monitoring") for v in ("No", "Yes (60s)"))
    assert all(v in row("Estimated Cost/Month") for v in ("~$16-18", "~$32-36", "~$123-131"))
    assert [c.strip() for c in row("Secret Recovery").split("│")[1:-1]] == ["Secret Recovery", "0 days", "7 days", "30 days"]


def test_envs_json_holds_every_spec():
    data = json.loads(rentaliq("envs", "--json").stdout)
    assert set(data) == {"lab", "qa", "prod"}
    assert data["prod"]["database"]["backup_retention_days"] == 30


def test_synth_writes_three_templates_and_summarizes(tmp_path):
    result = rentaliq("synth", "--outdir", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for env in ("lab", "qa", "prod"):
        assert (tmp_path / "out" / f"rentaliq-{env}.template.json").is_file()
        assert f"rentaliq-{env}:" in result.stdout
    assert "HIPAA.Security clean" in result.stdout


def test_synth_rejects_an_unknown_environment_in_one_line(tmp_path):
    result = rentaliq("synth", "staging", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: unknown environment 'staging'; allowed: lab, qa, prod"
    assert not (tmp_path / "cdk.out").exists()


def test_synth_reports_every_bad_override(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "qa.toml").write_text("[database]\nallocated_storage_gib = 500\nbackup_retention_days = 50\n")
    result = rentaliq("synth", "qa", cwd=tmp_path)
    assert result.returncode == 1
    assert "allocated_storage_gib=500" in result.stderr and "backup_retention_days=50" in result.stderr
