"""Where a deploy goes: the local cloud (default) or a real AWS account. Everything else is shared."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

TargetName = Literal["local", "aws"]


class NotLoopback(ValueError):
    """A `--target local` endpoint that would leave this machine: refused before any request."""


def require_loopback(endpoint_url: str) -> None:
    """Every address the endpoint's host resolves to must be loopback, or nothing is sent."""
    host = urlsplit(endpoint_url).hostname or ""
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError as error:
        raise NotLoopback(f"local cloud endpoint {endpoint_url}: cannot resolve {host!r} ({error.strerror}); it must be loopback") from None
    outside = sorted(a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback)
    if outside or not addresses:
        raise NotLoopback(
            f"refusing --target local: endpoint {endpoint_url} resolves to {', '.join(outside) or 'nothing'}, "
            f"not loopback; the local cloud only listens on 127.0.0.1"
        )


@dataclass
class Target:
    """A boto3 session plus, for the local cloud, its endpoint. Clients are cached per service."""

    name: TargetName
    region: str
    endpoint_url: str | None = None
    _session: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)
    state_dir: Path | None = None  # the local cloud's, where environment locks live; None on AWS

    @classmethod
    def local(cls, endpoint_url: str, region: str = "us-east-1", state_dir: Path | None = None) -> Target:
        require_loopback(endpoint_url)
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=region)
        return cls("local", region, endpoint_url, session, state_dir=state_dir)

    @classmethod
    def aws(cls, region: str, profile: str | None = None) -> Target:
        return cls("aws", region, None, boto3.Session(profile_name=profile, region_name=region))

    def client(self, service: str) -> Any:
        """The boto3 client for ``service``: typed as Any, since its type depends on the service's name."""
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service, endpoint_url=self.endpoint_url, config=Config(retries={"max_attempts": 5, "mode": "standard"})
            )
        return self._clients[service]

    @property
    def is_local(self) -> bool:
        return self.name == "local"

    @property
    def aws_cli(self) -> str:
        """The aws CLI as a hint should spell it: on the local cloud, `rentaliq aws`, which cannot reach a real account."""
        from rentaliq.deploy.commands import command

        return command("aws") if self.is_local else "aws"
