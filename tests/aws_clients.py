"""boto3 clients for a local cloud of the tests' (or a benchmark's) own that try every call once.

One attempt, because a retried create would be a second create and a retry would hide an HTTP 500, which is a
bug of the local cloud, not something to ride over. Fake credentials: the local cloud accepts any.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from rentaliq.local.cloud import LocalCloud


def one_try_client(cloud: LocalCloud, service: str, read_timeout: float = 60) -> Any:
    """A client for ``service``; ``read_timeout`` (botocore's default 60 s) for calls that answer when a server is up."""
    return boto3.client(
        service,
        endpoint_url=cloud.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=read_timeout),
    )
