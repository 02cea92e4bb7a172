"""Issue 11 section 2 on the bill: what each egress choice costs, written out by hand from the price table
(rentaliq/cost/prices.toml, us-east-1, 730 hours a month), never by re-running the builders' formulas."""

from __future__ import annotations

import copy

import pytest

from rentaliq.cost import compute_bill, load_prices
from rentaliq.spec.loader import load_spec


def _lines(bill, resource_type):
    return [line for line in bill.lines if line.resource_type == resource_type]


def test_a_nat_instance_costs_its_hours_root_volume_and_public_address(synthesized):
    bill = compute_bill(synthesized["qa"], load_spec("qa"), load_prices())
    lines = _lines(bill, "AWS::EC2::Instance")
    assert [line.component for line in lines] == [
        "Instance hours (t4g.nano, Linux)",
        "EBS volume (8 GB gp3)",
        "Public IPv4 address hours",
        "Data processed (1/1 of nat_gb; no charge)",
    ]
    # t4g.nano at $0.0042 an hour, 730 h; 8 GB gp3 at $0.08; one public IPv4 address at $0.005 an hour;
    # QA's nat_gb = 10 GB through the instance, which has no per-GB charge.
    assert sum(line.monthly_usd for line in lines) == pytest.approx(0.0042 * 730 + 8 * 0.08 + 0.005 * 730 + 10 * 0.0)  # $7.356
    (alarm,) = [line for line in _lines(bill, "AWS::CloudWatch::Alarm") if line.name == "rentaliq-qa-nat-1-health"]
    assert alarm.monthly_usd == pytest.approx(0.10)  # one standard-resolution alarm
    assert not [item for item in bill.free if item.resource_type == "AWS::EC2::Instance"]
    assert "AWS::IAM::InstanceProfile" in {item.resource_type for item in bill.free}


def test_prods_two_nat_instances_against_two_nat_gateways(synthesized):
    """PROD's egress: two NAT instances with their alarms, $14.91 a month, where two NAT gateways cost $75.25."""
    bill = compute_bill(synthesized["prod"], load_spec("prod"), load_prices())
    egress = sum(line.monthly_usd for line in _lines(bill, "AWS::EC2::Instance"))
    egress += sum(line.monthly_usd for line in _lines(bill, "AWS::CloudWatch::Alarm") if "-nat-" in line.name)
    assert egress == pytest.approx(2 * (0.0042 * 730 + 8 * 0.08 + 0.005 * 730) + 2 * 0.10)  # 14.912
    gateways = 2 * 0.045 * 730 + 50 * 0.045 + 2 * 0.005 * 730  # hours, PROD's 50 GB processed, two EIPs
    assert round(gateways, 2) == 75.25 and round(egress, 2) == 14.91


def test_an_instance_without_a_root_mapping_is_billed_the_images_8_gb_and_a_private_one_no_address(synthesized):
    template = copy.deepcopy(synthesized["qa"])
    (instance,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::Instance"]
    del instance["Properties"]["BlockDeviceMappings"]
    instance["Properties"]["InstanceType"] = "t3.micro"
    instance["Properties"]["NetworkInterfaces"] = [{"DeviceIndex": "0", "AssociatePublicIpAddress": False}]
    bill = compute_bill(template, load_spec("qa"), load_prices())
    lines = _lines(bill, "AWS::EC2::Instance")
    assert [(line.component, line.note) for line in lines][:2] == [
        ("Instance hours (t3.micro, Linux)", ""),
        ("EBS root volume (8 GB gp3, the image's)", "size assumed"),
    ]
    assert not [line for line in lines if "IPv4" in line.component]
    assert sum(line.monthly_usd for line in lines) == pytest.approx(0.0104 * 730 + 8 * 0.08)
