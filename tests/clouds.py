"""Local clouds the tests start for themselves: each in its own temp dir on a free port, removed afterwards.

/tmp, because the PostgreSQL servers run as the postgres user when the tests run as root, and that user must
be able to traverse the state dir.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rentaliq.local.cloud import LocalCloud
from tests.ports import free_port


@contextlib.contextmanager
def private_cloud(name: str) -> Iterator[LocalCloud]:
    home = Path(tempfile.mkdtemp(prefix=f"rentaliq-{name}-", dir="/tmp"))
    home.chmod(0o755)
    instance = LocalCloud(state_dir=home / "state", port=free_port())
    try:
        instance.start(timeout=60)
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(home, ignore_errors=True)
