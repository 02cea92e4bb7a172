"""Template bodies read as CloudFormation reads them: JSON, or YAML with the short-form intrinsics.

``!Ref``, ``!Sub``, ``!GetAtt`` (``A.B`` or ``[A, B]``), ``!Join``, ``!If``, ``!Equals``, ``!Select``, ``!Split``,
``!FindInMap``, ``!Base64``, ``!Cidr``, ``!GetAZs``, ``!ImportValue``, ``!Not``, ``!And``, ``!Or``, ``!Condition``
become their long forms through cfn-lint's CloudFormation YAML decoder (``yaml.safe_load`` refuses the tags, which
made CreateStack answer an HTML 500). The result is plain dicts, lists and scalars, so it pickles with the
local cloud's state; YAML dates (``2010-09-09``) stay the strings CloudFormation sees. A body that is neither
answers AWS's ``Template format error``.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from typing import Any

from cfnlint.decode import cfn_yaml
from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from yaml import MarkedYAMLError


def plain(node: Any) -> Any:
    """cfn-lint's position-carrying nodes as plain Python values."""
    if isinstance(node, dict):
        return {str(key): plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [plain(item) for item in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, (datetime.date, datetime.datetime)):
        return node.isoformat()
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


def parse(body: str | bytes | dict) -> dict[str, Any]:
    """A template body as a dict; ``ValidationError`` ("Template format error: ...") when it is not one."""
    if isinstance(body, dict):
        return body
    text = body.decode() if isinstance(body, bytes) else (body or "")
    try:
        document = json.loads(text)
    except ValueError:
        try:
            document = plain(cfn_yaml.loads(text))
        except MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise ValidationError(message=f"Template format error: YAML not well-formed.{where}") from None
        except Exception as error:  # noqa: BLE001 - cfn-lint's CfnParseError and friends: one line, no traceback
            raise ValidationError(message=f"Template format error: {' '.join(str(error).split())[:300]}") from None
    if not isinstance(document, dict):
        raise ValidationError(message="Template format error: JSON not well-formed.")
    return document


def cidr(block: str, count: int, cidr_bits: int) -> list[str]:
    """Fn::Cidr, which moto does not evaluate: ``count`` subnets of ``cidr_bits`` host bits, in order."""
    network = ipaddress.ip_network(block, strict=False)
    prefix = network.max_prefixlen - cidr_bits
    if not 1 <= count <= 256 or prefix < network.prefixlen:
        raise ValidationError(message=f"Template error: Fn::Cidr cannot make {count} subnets of {cidr_bits} host bits in {block}")
    subnets = []
    for subnet in network.subnets(new_prefix=prefix):
        subnets.append(str(subnet))
        if len(subnets) == count:
            return subnets
    raise ValidationError(message=f"Template error: Fn::Cidr cannot make {count} subnets of {cidr_bits} host bits in {block}")


def install() -> None:
    """moto's own parsers (stacks, change sets) read YAML the same way, and Fn::Cidr evaluates."""
    cfn_models.Stack.parse_template = staticmethod(parse)  # type: ignore[assignment]

    def _parse_template(self) -> None:
        self.template_dict = parse(self.template)

    cfn_models.ChangeSet._parse_template = _parse_template

    inner_clean_json = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and list(resource_json) == ["Fn::Cidr"]:
            block, count, bits = (parsing.clean_json(v, resources_map) for v in resource_json["Fn::Cidr"])
            return cidr(str(block), int(count), int(bits))
        return inner_clean_json(resource_json, resources_map)

    parsing.clean_json = clean_json
