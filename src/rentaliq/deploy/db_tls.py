"""Which CA bundle verifies a target's database servers, for the tools that connect to them (up/status, psql,
restore cutover, smoke, drill).

On the local cloud it is the cloud's own CA (found through its health endpoint when the target does not
carry its state dir). On AWS there is nothing to derive: the RDS bundle is the caller's to provide, through
``RuntimeConfig.ca_bundle`` or ``$PGSSLROOTCERT`` (README, "TLS"), so this answers None and the runtime SDK
names both when neither is set.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from rentaliq.deploy.target import Target

_HEALTH_PATH = "/_rentaliq/health"  # rentaliq.local.server.HEALTH_PATH, without importing the server


def ca_bundle(target: Target) -> str | None:
    """The PEM bundle that verifies the target's PostgreSQL servers; None on AWS (see the module)."""
    if not target.is_local:
        return None
    from rentaliq.local.postgres.ca import local_cloud_ca

    state_dir = target.state_dir
    if state_dir is None:
        with urllib.request.urlopen(f"{target.endpoint_url}{_HEALTH_PATH}", timeout=5) as response:
            state_dir = Path(json.load(response)["state_dir"])
    return str(local_cloud_ca(state_dir).path)


def libpq_tls(target: Target) -> dict[str, str]:
    """libpq TLS parameters for our own connections to the target's databases: ``verify-full`` against the
    target's CA (or ``$PGSSLROOTCERT``); only on AWS without a bundle ``require``, so that `up` and `status` still
    work for an operator who has not downloaded the RDS bundle (services must: the runtime SDK insists)."""
    bundle = ca_bundle(target) or os.environ.get("PGSSLROOTCERT")
    return {"sslmode": "verify-full", "sslrootcert": bundle} if bundle else {"sslmode": "require"}
