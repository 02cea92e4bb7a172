"""An RDS client for the local cloud that never retries and records every HTTP 5xx: a 500 is a bug."""

from __future__ import annotations

import boto3
from botocore.config import Config

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
    client = boto3.client(
        "rds",
        endpoint_url=cloud.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}),
    )
    server_errors: list[str] = []

    def record(http_response, model, **_):
        if http_response.status_code >= 500:
            server_errors.append(f"{model.name}: HTTP {http_response.status_code}")

    client.meta.events.register("after-call.rds", record)
    return client, server_errors
