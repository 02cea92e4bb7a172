"""An AWS config profile that points every `aws` command (v1 and v2) and every SDK at the local cloud.

`AWS_ENDPOINT_URL` alone is not enough: older clients (the awscli v1 the project installs among them) do not
read it, and a shell that still holds real credentials would then act on a real account. So `rentaliq local
env` also writes `$RENTALIQ_HOME/aws/config` with a `rentaliq-local` profile carrying `endpoint_url` for the
profile and for each service our stacks use (the `services` section), test credentials, and a credentials file
of its own, and exports AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE / AWS_PROFILE with it.
"""

from __future__ import annotations

import os
from pathlib import Path

PROFILE = "rentaliq-local"
# Every service the stacks, the deployer, verify and the runtime call (botocore service ids, snake_case keys).
SERVICES = ("cloudformation", "s3", "s3api", "secretsmanager", "rds", "iam", "ec2", "cloudwatch", "logs", "kms", "sts", "sns",
            "ssm", "events")


def config_text(endpoint_url: str, region: str) -> str:
    services = "".join(f"{name} =\n  endpoint_url = {endpoint_url}\n" for name in SERVICES if name != "s3api")
    return (f"[profile {PROFILE}]\nregion = {region}\noutput = json\nendpoint_url = {endpoint_url}\nservices = {PROFILE}\n"
            f"aws_access_key_id = test\naws_secret_access_key = test\ns3 =\n  addressing_style = path\n\n"
            f"[services {PROFILE}]\n{services}")


def write(state_dir: Path, endpoint_url: str, region: str) -> tuple[Path, Path]:
    """Write (atomically) the config and credentials files; returns their paths."""
    folder = state_dir / "aws"
    folder.mkdir(parents=True, exist_ok=True)
    files = {folder / "config": config_text(endpoint_url, region),
             folder / "credentials": f"[{PROFILE}]\naws_access_key_id = test\naws_secret_access_key = test\n"}
    for path, text in files.items():
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(text)
        os.replace(partial, path)
    return folder / "config", folder / "credentials"
