"""The synth cache's key covers every module the stacks run: editing any of them re-synthesizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rentaliq.infra.cache import stack_sources


def test_the_key_covers_every_rentaliq_module_the_cdk_app_imports() -> None:
    # What Python really loads for a synth (in a fresh interpreter), against what the key reads.
    probe = (
        "import json, sys, rentaliq.infra.app; print(json.dumps(sorted(m.__file__ for n, m in sys.modules.items() "
        "if (n == 'rentaliq' or n.startswith('rentaliq.')) and getattr(m, '__file__', None))))"
    )
    loaded = {Path(p).resolve() for p in json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout)}
    covered = {p.resolve() for p in stack_sources()}
    assert loaded - covered == set()
    assert any(p.name == "contract.py" for p in covered)  # the module whose omission deployed stale templates
