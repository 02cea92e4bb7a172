"""The deploy engine's rules without a cloud: stack states, the replacement guard, restore planning, locks, hints."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from rentaliq.deploy import locks, replacements, retained, states
from tests.lock_holder import held_elsewhere

ALL_STATUSES = [
    "CREATE_IN_PROGRESS",
    "CREATE_FAILED",
    "CREATE_COMPLETE",
    "ROLLBACK_IN_PROGRESS",
    "ROLLBACK_FAILED",
    "ROLLBACK_COMPLETE",
    "DELETE_IN_PROGRESS",
    "DELETE_FAILED",
    "DELETE_COMPLETE",
    "UPDATE_IN_PROGRESS",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_COMPLETE",
    "UPDATE_FAILED",
    "UPDATE_ROLLBACK_IN_PROGRESS",
    "UPDATE_ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_ROLLBACK_COMPLETE",
    "REVIEW_IN_PROGRESS",
    "IMPORT_IN_PROGRESS",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_IN_PROGRESS",
    "IMPORT_ROLLBACK_FAILED",
    "IMPORT_ROLLBACK_COMPLETE",
]


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_every_status_has_a_rule_for_every_action(status):
    for action in ("deploy", "diff", "destroy"):
        reason = states.blocker(status, action, "rentaliq-qa", "qa")
        assert reason is None or ("rentaliq-qa" in reason and " status qa" in reason or " destroy qa" in reason)
    assert states.meaning(status)


@pytest.mark.parametrize("status", ["CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS"])
def test_an_operation_in_progress_blocks_everything_and_says_what_to_run(status):
    for action in ("deploy", "diff", "destroy"):
        reason = states.blocker(status, action, "rentaliq-qa", "qa")
        assert f"is {status}" in reason and "another operation is running" in reason and "status qa`" in reason


def test_update_rollback_failed_points_at_continue_update_rollback_but_may_be_destroyed():
    reason = states.blocker("UPDATE_ROLLBACK_FAILED", "deploy", "rentaliq-qa", "qa")
    assert "aws cloudformation continue-update-rollback --stack-name rentaliq-qa" in reason
    assert states.blocker("UPDATE_ROLLBACK_FAILED", "destroy", "rentaliq-qa", "qa") is None


def test_delete_failed_can_only_be_destroyed():
    assert "destroy qa`" in states.blocker("DELETE_FAILED", "deploy", "rentaliq-qa", "qa")
    assert states.blocker("DELETE_FAILED", "destroy", "rentaliq-qa", "qa") is None


@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "REVIEW_IN_PROGRESS"])
def test_a_stack_that_was_never_created_is_cleaned_by_the_next_up(status):
    assert states.clean_before_create(status)
    assert states.blocker(status, "deploy", "rentaliq-qa", "qa") is None


@pytest.mark.parametrize("status", ["CREATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", None])
def test_a_working_or_absent_stack_is_never_cleaned(status):
    assert not states.clean_before_create(status)


def _change_set(action, logical_id, kind, replacement, *details):
    return {
        "Changes": [
            {
                "Type": "Resource",
                "ResourceChange": {
                    "Action": action,
                    "LogicalResourceId": logical_id,
                    "ResourceType": kind,
                    "Replacement": replacement,
                    "Details": [{"Target": {"Attribute": "Properties", "Name": name, "RequiresRecreation": rec}} for name, rec in details],
                },
            }
        ]
    }


TEMPLATE = {
    "Resources": {
        "Database": {"Type": "AWS::RDS::DBInstance", "Properties": {"DBInstanceIdentifier": "rentaliq-prod-db"}},
        "FilesBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "rentaliq-prod-files"}},
        "AccessLogs": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "rentaliq-access-logs"}},
        "ApiKeys": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "rentaliq/prod/api/keys", "SecretString": {"Fn::Sub": "${ApiKey}"}}},
        "Sg": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "x"}},
    }
}


def test_replacement_details_name_the_property_that_causes_it():
    [change] = replacements.from_change_set(
        _change_set("Modify", "Database", "AWS::RDS::DBInstance", "True", ("DBName", "Always"), ("AllocatedStorage", "Never"))
    )
    assert change.replaces and change.causes == ("Properties.DBName (always)",)


def test_stateful_replacements_are_refused_unless_named():
    changes = replacements.from_change_set(_change_set("Modify", "Database", "AWS::RDS::DBInstance", "True", ("DBName", "Always")))
    changes += replacements.from_change_set(_change_set("Modify", "AccessLogs", "AWS::S3::Bucket", "Conditional", ("BucketName", "Conditionally")))
    changes += replacements.from_change_set(_change_set("Modify", "Sg", "AWS::EC2::SecurityGroup", "True", ("GroupDescription", "Always")))
    changes += replacements.from_change_set(_change_set("Modify", "FilesBucket", "AWS::S3::Bucket", "False"))
    blocked = replacements.guarded("prod", changes, TEMPLATE, set())
    assert [name for name, _ in blocked] == ["prod-database", "prod-access-logs"]
    message = replacements.refusal("rentaliq-prod", blocked)
    assert "would replace prod-database" in message and "may replace prod-access-logs" in message
    assert "Properties.DBName (always)" in message and "--allow-replacement prod-database --allow-replacement prod-access-logs" in message
    assert [n for n, _ in replacements.guarded("prod", changes, TEMPLATE, {"prod-database"})] == ["prod-access-logs"]


def test_short_names_cover_every_secret():
    names = set(replacements.short_names("qa").values())
    assert {"qa-database", "qa-files", "qa-db-credentials", "qa-db-connection-string", "qa-api-keys", "qa-s3-config"} <= names


def test_import_plan_keeps_only_retained_resources_and_drops_dangling_references():
    found = retained.Retained(buckets=["rentaliq-prod-files"], secrets_deleted={"rentaliq/prod/api/keys": "arn:aws:secretsmanager:x"})
    template, to_import = retained.import_plan(TEMPLATE, found)
    assert set(template["Resources"]) == {"FilesBucket", "ApiKeys"}
    assert all(r["DeletionPolicy"] == "Retain" for r in template["Resources"].values())
    assert "SecretString" not in template["Resources"]["ApiKeys"]["Properties"]  # refers to a parameter not in the import
    assert {
        "ResourceType": "AWS::SecretsManager::Secret",
        "LogicalResourceId": "ApiKeys",
        "ResourceIdentifier": {"Id": "arn:aws:secretsmanager:x"},
    } in to_import
    assert {"ResourceType": "AWS::S3::Bucket", "LogicalResourceId": "FilesBucket", "ResourceIdentifier": {"BucketName": "rentaliq-prod-files"}} in to_import


def test_snapshot_parameter_is_wired_and_kept_on_later_updates():
    template = retained.with_snapshot_parameter({"Resources": {"Db": {"Type": "AWS::RDS::DBInstance", "Properties": {"MasterUsername": "u"}}}})
    props = template["Resources"]["Db"]["Properties"]
    assert props["DBSnapshotIdentifier"]["Fn::If"][1] == {"Ref": retained.SNAPSHOT_PARAMETER}
    assert props["MasterUsername"]["Fn::If"][1] == {"Ref": "AWS::NoValue"}
    assert retained.snapshot_parameters(None, "snap-1") == [{"ParameterKey": "RestoreDbSnapshot", "ParameterValue": "snap-1"}]
    restored = {"Parameters": [{"ParameterKey": "RestoreDbSnapshot", "ParameterValue": "snap-1"}]}
    assert retained.snapshot_parameters(restored, None) == [{"ParameterKey": "RestoreDbSnapshot", "UsePreviousValue": True}]
    assert retained.snapshot_parameters({"Parameters": []}, None) is None


def test_refusal_names_both_choices():
    from rentaliq.environments import load_spec

    found = retained.Retained(buckets=["rentaliq-access-logs"], secrets_deleted={"rentaliq/prod/api/keys": "arn"}, snapshot="snap")
    message = retained.refusal(load_spec("prod"), found)
    assert "up prod --restore-retained" in message
    assert "aws secretsmanager delete-secret --secret-id rentaliq/prod/api/keys --force-delete-without-recovery" in message
    assert "database snapshot snap" in message


def test_a_second_holder_is_refused_at_once_with_the_holders_name(tmp_path):
    with held_elsewhere(tmp_path, "lab", "rentaliq up lab", seconds=30) as holder:
        started = time.monotonic()
        with pytest.raises(locks.EnvironmentLocked, match=rf"pid {holder.pid} \(`rentaliq up lab`, since"):
            with locks.hold(tmp_path, ["qa", "lab"], "rentaliq up --all"):
                pass
        assert time.monotonic() - started < 1
        with locks.hold(tmp_path, ["qa"], "rentaliq up qa"):  # another environment is free
            pass
    with locks.hold(tmp_path, ["lab"], "rentaliq up lab"):  # a killed holder leaves no lock behind
        pass


def test_loopback_guard():
    from rentaliq.deploy.target import NotLoopback, require_loopback

    require_loopback("http://127.0.0.1:4566")
    require_loopback("http://localhost:4566")
    with pytest.raises(NotLoopback, match="10.1.2.3, not loopback"):
        require_loopback("http://10.1.2.3:4566")


def test_hints_use_the_path_the_user_ran_when_rentaliq_is_not_on_path(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "rentaliq")
    code = "from rentaliq.deploy.commands import command; print(command('psql', 'lab'))"
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.argv = [{script!r}]; {code}"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == f"{script} psql lab"  # outside the project: the absolute path
    env["PATH"] = os.path.dirname(sys.executable) + ":/usr/bin:/bin"
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.argv = [{script!r}]; {code}"], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "rentaliq psql lab"


def test_diff_shows_replacements_prominently_with_their_cause():
    from rich.console import Console

    from rentaliq.cli.deploy_cmds import change_lines

    changes = replacements.from_change_set(_change_set("Modify", "Database", "AWS::RDS::DBInstance", "True", ("DBName", "Always")))
    changes += replacements.from_change_set(_change_set("Modify", "Files", "AWS::S3::Bucket", "Conditional", ("BucketName", "Conditionally")))
    changes += replacements.from_change_set(_change_set("Modify", "Alarm", "AWS::CloudWatch::Alarm", "False", ("Threshold", "Never")))
    console = Console(width=400, record=True, color_system=None)
    for line in change_lines(changes, "rentaliq-qa"):
        console.print(line, highlight=False)
    text = console.export_text().splitlines()
    assert text[0].startswith("± AWS::RDS::DBInstance") and text[0].endswith("Database  REPLACE because of Properties.DBName (always)")
    assert text[1].endswith("Files  MAY REPLACE because of Properties.BucketName (conditionally)")
    assert text[2].startswith("~ AWS::CloudWatch::Alarm") and "REPLACE" not in text[2]
    assert text[3] == "rentaliq-qa: 3 change(s), 2 replacement(s): the old resource and its data are deleted"


def test_a_snapshot_alone_does_not_block_a_create_but_buckets_and_secrets_do():
    assert not retained.Retained(snapshot="snap").blocks_create
    assert retained.Retained(buckets=["rentaliq-qa-files"]).blocks_create
    assert retained.Retained(secrets_live={"rentaliq/qa/api/keys": "arn"}).blocks_create


def test_refusal_for_buckets_only_offers_deleting_them():
    from rentaliq.environments import load_spec

    message = retained.refusal(load_spec("prod"), retained.Retained(buckets=["rentaliq-prod-files", "rentaliq-access-logs"]))
    assert "or start empty: delete the buckets rentaliq-prod-files, rentaliq-access-logs (with every object version)" in message


def test_restored_api_keys_are_passed_where_the_imported_stack_has_no_parameters():
    from rentaliq.deploy.parameters import api_key_parameters

    after_import = api_key_parameters(True, set(), {"ApiKey": "kept", "JwtSecret": "kept-too"})
    assert {"ParameterKey": "ApiKey", "ParameterValue": "kept"} in after_import
    assert {"ParameterKey": "JwtSecret", "ParameterValue": "kept-too"} in after_import
    fresh = next(p for p in after_import if p["ParameterKey"] == "EncryptionKey")["ParameterValue"]
    assert len(fresh) >= 48  # not in the restored secret: generated once
    assert all(p.get("UsePreviousValue") for p in api_key_parameters(True, {"ApiKey", "JwtSecret", "EncryptionKey"}, {"ApiKey": "x"}))


def test_hints_for_the_local_cloud_spell_aws_so_it_cannot_reach_a_real_account():
    from rentaliq.deploy.target import Target

    local = Target.local("http://127.0.0.1:4566")
    assert local.aws_cli.endswith("rentaliq aws") or local.aws_cli.endswith("-m rentaliq.cli aws")
    reason = states.blocker("UPDATE_ROLLBACK_FAILED", "deploy", "rentaliq-qa", "qa", local.aws_cli)
    assert f"`{local.aws_cli} cloudformation continue-update-rollback --stack-name rentaliq-qa`" in reason
