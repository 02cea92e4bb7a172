"""Where a deploy goes: the local cloud (default) or a real AWS account. Everything else is shared."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import boto3
from botocore.config import Config

TargetName = Literal["local", "aws"]


@dataclass
class Target:
    """A boto3 session plus, for the local cloud, its endpoint. Clients are cached per service."""

    name: TargetName
    region: str
    endpoint_url: str | None = None
    _session: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def local(cls, endpoint_url: str, region: str = "us-east-1") -> "Target":
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=region)
        return cls("local", region, endpoint_url, session)

    @classmethod
    def aws(cls, region: str, profile: str | None = None) -> "Target":
        return cls("aws", region, None, boto3.Session(profile_name=profile, region_name=region))

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service, endpoint_url=self.endpoint_url, config=Config(retries={"max_attempts": 5, "mode": "standard"})
            )
        return self._clients[service]

    @property
    def is_local(self) -> bool:
        return self.name == "local"
