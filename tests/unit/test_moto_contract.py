"""The local cloud patches moto's internals; this fails loudly when a moto upgrade moves what we patch."""

from __future__ import annotations

import inspect
from importlib import metadata

import pytest

PINNED_MOTO = "5.2.5"


def test_moto_is_the_pinned_version():
    assert metadata.version("moto") == PINNED_MOTO, "rentaliq.local patches moto internals: re-run this contract after an upgrade"


@pytest.mark.parametrize(
    "module,attribute",
    [
        ("moto.cloudformation.parsing", "resource_class_from_type"),
        ("moto.cloudformation.parsing", "clean_json"),
        ("moto.cloudformation.parsing", "ResourceMap._ResourceMap__get_resources_in_dependency_order"),
        ("moto.cloudformation.parsing", "ResourceMap.delete"),
        ("moto.cloudformation.parsing", "ResourceMap.update"),
        ("moto.cloudformation.models", "CloudFormationBackend.create_change_set"),
        ("moto.cloudformation.models", "CloudFormationBackend.execute_change_set"),
        ("moto.cloudformation.models", "CloudFormationBackend.delete_stack"),
        ("moto.cloudformation.models", "ChangeSet.apply"),
        ("moto.cloudformation.models", "Event"),
        ("moto.rds.models", "DBInstance.endpoint"),
        ("moto.rds.models", "RDSBackend.create_db_instance"),
        ("moto.rds.models", "RDSBackend.modify_db_instance"),
        ("moto.rds.models", "RDSBackend.stop_db_instance"),
        ("moto.rds.models", "RDSBackend.start_db_instance"),
        ("moto.rds.models", "RDSBackend.reboot_db_instance"),
        ("moto.rds.models", "RDSBackend.delete_db_instance"),
        ("moto.rds.utils", "get_overlap_between_two_date_ranges"),
        ("moto.s3.models", "FakeBucket.get_permission"),
        ("moto.s3.models", "FakeBucket._log_permissions_enabled_policy"),
        ("moto.iam.models", "IAMBackend._init_aws_policies"),
        ("moto.s3.responses", "S3Response._bucket_response_get"),
        ("moto.s3.responses", "S3Response._bucket_response_put"),
        ("moto.s3.responses", "S3Response._bucket_response_delete"),
        ("moto.rds.models", "RDSBackend.modify_db_parameter_group"),
        ("moto.rds.models", "RDSBackend.describe_db_instances"),
        ("moto.rds.models", "RDSBackend.databases"),  # read by the PostgreSQL supervisor (instance attribute)
        ("moto.rds.models", "RDSBackend.add_event"),
        ("moto.rds.models", "RDSBackend.describe_events"),
        ("moto.rds.models", "DBInstance.address"),
        ("moto.rds.models", "DBInstance.add_event"),
        ("moto.rds.models", "DBInstance.__init__"),
        ("moto.rds.models", "Event.EVENT_MAP"),
        ("moto.rds.models", "MasterUserSecret._generate_secret_string"),
        ("moto.rds.models", "MasterUserSecret.secret"),  # instance attribute: the FakeSecret holding the password
        ("moto.rds.models", "rds_backends"),
        ("moto.iam.models", "AWSManagedPolicy.from_data"),
        ("moto.iam.aws_managed_policies", "aws_managed_policies_data"),
        ("moto.settings", "load_iam_aws_managed_policies"),
    ],
)
def test_patched_moto_attributes_exist(module, attribute):
    obj = __import__(module, fromlist=["_"])
    if attribute in INSTANCE_ATTRIBUTES:
        owner, name = attribute.split(".")
        assert name in inspect.getsource(getattr(obj, owner).__init__), f"{attribute} is no longer set in __init__"
        return
    for part in attribute.split("."):
        obj = getattr(obj, part)
    assert obj is not None


INSTANCE_ATTRIBUTES = {"RDSBackend.databases", "MasterUserSecret.secret"}


def test_rds_instance_calls_keep_the_identifier_where_the_lowercasing_wrapper_finds_it():
    from moto.rds.models import RDSBackend

    for name in ("describe_db_instances", "reboot_db_instance", "stop_db_instance", "start_db_instance", "delete_db_instance"):
        assert list(inspect.signature(getattr(RDSBackend, name)).parameters)[1] == "db_instance_identifier", name
    assert list(inspect.signature(RDSBackend.add_event).parameters) == ["self", "event_type", "resource"]


def test_moto_events_store_is_what_describe_events_reads():
    from moto.rds.models import RDSBackend

    assert "self.events" in inspect.getsource(RDSBackend.describe_events)
    assert "EVENT_MAP[event_type]" in inspect.getsource(__import__("moto.rds.models", fromlist=["_"]).Event.__init__)


def test_patched_signatures_are_the_ones_the_extensions_wrap():
    from moto.cloudformation.models import CloudFormationBackend
    from moto.rds.models import RDSBackend

    assert list(inspect.signature(CloudFormationBackend.create_change_set).parameters)[:7] == [
        "self",
        "stack_name",
        "change_set_name",
        "template",
        "parameters",
        "description",
        "change_set_type",
    ]
    assert list(inspect.signature(RDSBackend.create_db_instance).parameters) == ["self", "db_kwargs"]
    assert list(inspect.signature(RDSBackend.modify_db_instance).parameters) == ["self", "db_instance_identifier", "db_kwargs"]
