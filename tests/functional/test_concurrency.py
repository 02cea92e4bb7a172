"""Two operations on one environment: the second is refused at once, naming the first, which finishes intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rentaliq.deploy import stacks
from rentaliq.deploy.locks import lock_path
from tests.clouds import own_cloud_fixtures
from tests.lock_holder import held_elsewhere

cloud, cloud_env, target = own_cloud_fixtures(
    "concurrency", "A cloud of this module's own, where lab does not exist yet: the first `up` has a real create to do."
)


def start(env, *args):
    return subprocess.Popen([sys.executable, "-m", "rentaliq.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_a_second_up_is_refused_while_the_first_runs_and_the_first_is_intact(cloud, cloud_env, target, outdir):
    assert stacks.describe(target, "rentaliq-lab") is None  # a create: the first holds the lock for seconds
    first = start(cloud_env, "up", "lab", "--outdir", str(outdir))
    lock = lock_path(cloud.state_dir, "lab")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the first holds the lock once it has resolved the target
        try:
            if json.loads(lock.read_text() or "{}").get("pid") == first.pid:
                break
        except (OSError, ValueError):
            pass
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    started = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "rentaliq.cli", "up", "lab", "--outdir", str(outdir)], capture_output=True, text=True, env=cloud_env, timeout=120
    )
    refused_in = time.monotonic() - started
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert f"environment lab is busy: pid {first.pid} (`" in second.stderr and " up lab`, since " in second.stderr
    assert refused_in < 10  # at once: no waiting on the first (the CLI's start-up is most of it)
    assert stacks.describe(target, "rentaliq-lab")["StackStatus"] == "CREATE_COMPLETE"
    assert "✓ rentaliq-lab" in out
    # destroy is locked the same way, and the lock is free again once the first has finished
    with held_elsewhere(cloud.state_dir, "lab", "rentaliq deploy lab") as holder:
        refused = subprocess.run([sys.executable, "-m", "rentaliq.cli", "destroy", "lab"], capture_output=True, text=True, env=cloud_env, timeout=120)
        assert refused.returncode == 1 and f"pid {holder.pid} (`rentaliq deploy lab`" in refused.stderr
        assert stacks.describe(target, "rentaliq-lab") is not None


def test_concurrent_syntheses_with_different_configs_each_deploy_their_own_template(tmp_path):
    """Each run synthesizes in its own directory and publishes atomically: no run reads the other's template."""
    outdir = tmp_path / "cdk.out"
    runs = {}
    for instance_class in ("db.t3.small", "db.t3.large"):
        config = tmp_path / instance_class
        config.mkdir()
        (config / "lab.toml").write_text(f'[database]\ninstance_class = "{instance_class}"\n')
        code = (
            "import sys; from pathlib import Path; from rentaliq.environments import load_spec; from rentaliq.infra.cache import templates\n"
            f"print(templates([load_spec('lab')], Path({str(outdir)!r}))['rentaliq-lab'])"
        )
        runs[instance_class] = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "RENTALIQ_CONFIG_DIR": str(config)}
        )
    for instance_class, run in runs.items():
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
        template = json.loads(Path(out.strip()).read_text())
        [db] = [r for r in template["Resources"].values() if r["Type"] == "AWS::RDS::DBInstance"]
        assert db["Properties"]["DBInstanceClass"] == instance_class
    assert not list((outdir / ".runs").iterdir())  # run directories are removed
    assert (outdir / "rentaliq-lab.template.json").is_file()  # the CDK's usual name holds the last published
