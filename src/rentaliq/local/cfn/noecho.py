"""NoEcho parameters answer ``****``, as on AWS: in DescribeStacks and in DescribeChangeSet.

moto masks by comparing each *value* with the list of NoEcho *keys* (so nothing is masked) and never masks a
change set's parameters. The real values still reach the resources: only what the API answers is masked.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult

MASK = "****"


def no_echo_keys(template: Any) -> set[str]:
    parameters = (template or {}).get("Parameters") or {} if isinstance(template, dict) else {}
    return {name for name, spec in parameters.items() if str((spec or {}).get("NoEcho", "false")).lower() == "true"}


def masked(values: dict[str, Any], template: Any) -> dict[str, Any]:
    hidden = no_echo_keys(template)
    return {key: MASK if key in hidden else value for key, value in values.items()}


class _MaskedChangeSet:
    """A change set as DescribeChangeSet shows it: the same, with its NoEcho parameters masked."""

    def __init__(self, change_set: Any) -> None:
        self._change_set = change_set
        self.parameters = masked(change_set.parameters or {}, change_set.template_dict)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._change_set, name)


def install() -> None:
    def parameter_list(self) -> list[dict[str, Any]]:
        values = {k: v for k, v in self.resource_map.resolved_parameters.items() if not k.startswith("AWS::")}
        shown = masked(values, self.template_dict)
        return [{"ParameterKey": k, "ParameterValue": ",".join(map(str, v)) if isinstance(v, list) else v} for k, v in shown.items()]

    cfn_models.Stack.parameter_list = property(parameter_list)  # type: ignore[assignment]

    def describe_change_set(self) -> ActionResult:
        change_set = self.cloudformation_backend.describe_change_set(change_set_name=self._get_param("ChangeSetName"))
        return ActionResult(_MaskedChangeSet(change_set))

    CloudFormationResponse.describe_change_set = describe_change_set
