"""The local CloudFormation's KMS key: it has no name, so after a crash an interrupted create finds its key by the
CloudFormation tags the key carries from its create on (and rolls it back), instead of leaving it behind."""

from __future__ import annotations

from rentaliq.local.cfn.base import Context
from rentaliq.local.cfn.notifications import KmsKey


def test_the_alerts_key_is_found_by_its_cloudformation_tags(deployed, target, cloud, monkeypatch):
    kms = target.client("kms")
    [key] = [a["TargetKeyId"] for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/rentaliq-lab-alerts"]
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key)["Tags"]}
    assert (tags["aws:cloudformation:stack-name"], tags["aws:cloudformation:logical-id"]) == ("rentaliq-lab", "AlertsKey9E1197AF")
    assert tags["Environment"] == "lab"  # the template's tags too
    monkeypatch.setenv("RENTALIQ_LOCAL_ENDPOINT", cloud.endpoint_url)
    context = Context("123456789012", "us-east-1", "rentaliq-lab", "AlertsKey9E1197AF", stack_id=tags["aws:cloudformation:stack-id"])
    assert KmsKey().locate({}, context) == [key]
    elsewhere = Context("123456789012", "us-east-1", "rentaliq-lab", "SomeOtherKey", stack_id=tags["aws:cloudformation:stack-id"])
    assert KmsKey().locate({}, elsewhere) == []
