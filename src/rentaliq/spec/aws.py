"""AWS's own rules for values a spec holds: region codes, private address ranges and tag values.

Each function answers ``None`` when the value is fine, else what is allowed (the text after "allowed:" in
a spec problem), so the rules can name the value and the fix in one line.
"""

from __future__ import annotations

import ipaddress
import json
import re
import unicodedata
from functools import cache, lru_cache
from importlib import resources

# RFC 1918 and RFC 6598 (carrier-grade NAT, which VPCs may use): the only ranges the database may admit.
PRIVATE_RANGES = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"))

_CIDR_ALLOWED = "IPv4 CIDR blocks such as 10.0.0.0/16 (network address, no host bits)"
_PRIVATE_ALLOWED = "a private IPv4 range inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918) or 100.64.0.0/10 (RFC 6598)"


def private_cidr_problem(cidr: str) -> str | None:
    """Why ``cidr`` may not be a database ingress range, or None when it is a private IPv4 block."""
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        return _CIDR_ALLOWED
    if network.version == 6:
        return "an IPv4 CIDR block; IPv6 is not supported: the RDS security group rules are IPv4"
    if not any(network.subnet_of(private) for private in PRIVATE_RANGES):
        return f"{_PRIVATE_ALLOWED}; {cidr} is not private and the database is never open to the internet"
    return None


@lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every region of every AWS partition, from botocore's bundled endpoint data (offline).

    ``partitions.json`` also lists pseudo-regions such as ``aws-global``; each partition's ``regionRegex``
    keeps only real region codes. Read as a file so that validating a spec does not import botocore's
    session machinery (a quarter of a second).
    """
    data = json.loads((resources.files("botocore") / "data" / "partitions.json").read_text())
    return frozenset(region for partition in data["partitions"] for region in partition["regions"] if re.match(partition["regionRegex"], region))


def region_problem(region: str) -> str | None:
    """What is allowed when ``region`` is not a real AWS region code, else None."""
    if region in known_regions():
        return None
    return "an AWS region code such as us-east-1, eu-west-2 or ap-southeast-1 (`aws ec2 describe-regions` lists them)"


BUDGET_TYPE = "AWS::Budgets::Budget"


@cache
def cloudformation_has(resource_type: str, region: str) -> bool | None:
    """Whether CloudFormation offers ``resource_type`` in ``region``, from the registry lists cfn-lint ships (offline);
    None for a region those lists do not know (the region rule speaks for it)."""
    path = resources.files("cfnlint") / "data" / "schemas" / "providers" / f"{region}.json"
    if not path.is_file():
        return None
    return resource_type in json.loads(path.read_text())


def budget_region_problem(region: str) -> str | None:
    """What is allowed when the environment's budget cannot be deployed in ``region``, else None."""
    if cloudformation_has(BUDGET_TYPE, region) is False:
        return f"false in {region}: CloudFormation has no {BUDGET_TYPE} there (us-east-1, us-west-2, eu-west-1... have it)"
    return None


TAG_VALUE_MAX = 256
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_TAG_RULE = f"AWS tag values: up to {TAG_VALUE_MAX} characters, letters, digits, spaces and _ . : / = + - @"


def _tag_character(char: str) -> bool:
    # AWS's pattern is ^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$: Unicode letters, separators (spaces) and numbers.
    return char in _TAG_PUNCTUATION or unicodedata.category(char)[0] in "LZN"


def tag_value_problem(value: str, *, required: bool) -> str | None:
    """What is allowed when ``value`` breaks AWS's tag-value rules (or is blank but ``required``), else None."""
    if required and not value.strip():
        return f"a non-empty tag value ({_TAG_RULE})"
    if len(value) > TAG_VALUE_MAX or not all(map(_tag_character, value)):
        return _TAG_RULE
    return None
