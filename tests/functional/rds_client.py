"""An RDS client for the local cloud that never retries and records every HTTP 5xx: a 500 is a bug."""

from __future__ import annotations

from tests.aws_clients import one_try_client

# The small PostgreSQL 15 instance the RDS tests make through the API; each module adds its own password.
SMALL_POSTGRES = {
    "DBInstanceClass": "db.t3.micro",
    "Engine": "postgres",
    "EngineVersion": "15",
    "MasterUsername": "appadmin",
    "DBName": "appdb",
    "AllocatedStorage": 20,
}


def recording_client(cloud):
    """(client, server_errors): the list fills with "Operation: HTTP 5xx" for every server error answered."""
    client = one_try_client(cloud, "rds")
    server_errors: list[str] = []

    def record(http_response, model, **_):
        if http_response.status_code >= 500:
            server_errors.append(f"{model.name}: HTTP {http_response.status_code}")

    client.meta.events.register("after-call.rds", record)
    return client, server_errors
