"""`status`, `diff`, `destroy` and `up` on stacks in the states a bad day leaves, through the real CLI."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from rentaliq.deploy import stacks
from rentaliq.deploy.changesets import DeployError, deploy
from rentaliq.environments import load_spec
from rentaliq.infra.cache import templates
from tests.cli_runs import one_line_error, rentaliq
from tests.clouds import own_cloud_fixtures
from tests.functional.throwaway import template_file

BROKEN = {
    "Resources": {
        "Probe": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "rentaliq-states-probe"}},
        "Broken": {
            "Type": "AWS::RDS::DBSubnetGroup",
            "DependsOn": "Probe",
            "Properties": {"DBSubnetGroupDescription": "x", "SubnetIds": ["subnet-doesnotexist"]},
        },
    }
}


cloud, cloud_env, target = own_cloud_fixtures(
    "states", "A cloud of this module's own: these tests break and destroy environments the session's deployed ones must keep."
)


def _no_stack(target, name: str) -> None:
    """Each test of QA's states starts from no stack; deletes run asynchronously, so wait until it is gone."""
    if stacks.describe(target, name):
        cfn = target.client("cloudformation")
        cfn.delete_stack(StackName=name)
        cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    assert stacks.describe(target, name) is None


@pytest.fixture
def qa_rolled_back(target, tmp_path):
    """rentaliq-qa whose creation failed and was rolled back (ROLLBACK_COMPLETE), as after a failed first `up`."""
    template = tmp_path / "broken.json"
    template.write_text(json.dumps(BROKEN))
    with pytest.raises(DeployError):
        deploy(target, load_spec("qa"), template)
    assert stacks.describe(target, "rentaliq-qa")["StackStatus"] == "ROLLBACK_COMPLETE"
    return target


def test_status_diff_and_destroy_explain_a_rolled_back_stack(qa_rolled_back, cloud_env, outdir):
    result = rentaliq(cloud_env, "status", "qa")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "rentaliq-qa: ROLLBACK_COMPLETE (the creation failed and was rolled back" in result.stdout
    assert "the next `up` deletes it and creates it anew" in result.stdout
    assert "Broken: The subnet ID 'subnet-doesnotexist' does not exist" in result.stdout
    result = rentaliq(cloud_env, "diff", "qa", "--outdir", str(outdir))
    assert result.returncode == 0, result.stderr
    assert "+ AWS::RDS::DBInstance" in result.stdout  # `up` would create everything anew
    assert stacks.describe(qa_rolled_back, "rentaliq-qa")["StackStatus"] == "ROLLBACK_COMPLETE"  # diff changed nothing
    result = rentaliq(cloud_env, "destroy", "qa")
    assert result.returncode == 0, result.stderr
    assert "rentaliq-qa deleted" in result.stdout
    assert stacks.describe(qa_rolled_back, "rentaliq-qa") is None


def test_up_cleans_a_rolled_back_stack_and_creates_it_anew(qa_rolled_back, cloud_env, outdir):
    result = rentaliq(cloud_env, "up", "qa", "--outdir", str(outdir))
    assert result.returncode == 0, result.stderr
    assert "rentaliq-qa is ROLLBACK_COMPLETE (the creation failed and was rolled back; nothing of it runs); deleting it" in result.stderr
    assert stacks.describe(qa_rolled_back, "rentaliq-qa")["StackStatus"] == "CREATE_COMPLETE"
    creds = qa_rolled_back.client("secretsmanager").get_secret_value(SecretId="rentaliq/qa/db/credentials")
    assert json.loads(creds["SecretString"])["host"] == "127.0.0.1"
    # The secrets of a stack are scheduled for deletion only once the stack is gone.
    result = rentaliq(cloud_env, "destroy", "qa")
    assert result.returncode == 0, result.stderr
    described = qa_rolled_back.client("secretsmanager").describe_secret(SecretId="rentaliq/qa/api/keys")
    assert "DeletedDate" in described
    # and with the stack and its secrets gone, `up` says what the destroy left and how to choose
    result = rentaliq(cloud_env, "up", "qa", "--outdir", str(outdir))
    line = one_line_error(result)
    assert "rentaliq-qa does not exist, but resources it would create exist outside any stack" in line and "--restore-retained" in line
    assert "rentaliq aws secretsmanager delete-secret --secret-id rentaliq/qa/api/keys --force-delete-without-recovery" in line  # never plain aws
    assert stacks.describe(qa_rolled_back, "rentaliq-qa") is None  # nothing was created
    for secret in ("db/credentials", "db/connection-string", "api/keys", "s3/config"):
        try:
            qa_rolled_back.client("secretsmanager").delete_secret(SecretId=f"rentaliq/qa/{secret}", ForceDeleteWithoutRecovery=True)
        except ClientError:
            pass


def test_a_change_set_never_executed_is_cleaned_by_the_next_deploy(target, cloud_env, tmp_path):
    """REVIEW_IN_PROGRESS (a crash between CreateChangeSet and ExecuteChangeSet) does not block the next deploy."""
    spec = load_spec("qa")
    cfn = target.client("cloudformation")
    _no_stack(target, "rentaliq-qa")
    small = {"Resources": {"Probe": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "rentaliq-review-probe"}}}}
    cfn.create_change_set(StackName="rentaliq-qa", ChangeSetName="abandoned", ChangeSetType="CREATE", TemplateBody=json.dumps(small))
    assert stacks.describe(target, "rentaliq-qa")["StackStatus"] == "REVIEW_IN_PROGRESS"
    result = rentaliq(cloud_env, "status", "qa")
    assert "REVIEW_IN_PROGRESS (a change set was made but never executed; nothing runs)" in result.stdout, result.stdout
    template = tmp_path / "small.json"
    template.write_text(json.dumps(small))
    steps: list[str] = []
    assert deploy(target, spec, template, on_step=steps.append).status == "CREATE_COMPLETE"
    assert any("REVIEW_IN_PROGRESS" in s and "deleting it" in s for s in steps)
    result = rentaliq(cloud_env, "destroy", "qa")
    assert result.returncode == 0, result.stderr
    assert "rentaliq-review-probe" not in [b["Name"] for b in target.client("s3").list_buckets()["Buckets"]]


def test_a_stack_busy_with_another_operation_is_refused_with_one_line(target, cloud_env, tmp_path):
    """On AWS the stack status is the lock: CloudFormation's "is in X_IN_PROGRESS state" becomes one clear line."""
    from rentaliq.deploy.changesets import client_error

    error = ClientError(
        {
            "Error": {
                "Code": "ValidationError",
                "Message": "Stack:arn:aws:cloudformation:us-east-1:1:stack/rentaliq-lab/x is in UPDATE_IN_PROGRESS state and can not be updated.",
            }
        },
        "CreateChangeSet",
    )
    message = str(client_error(error, load_spec("lab")))
    assert message.startswith("rentaliq-lab is UPDATE_IN_PROGRESS: another operation is running on it")
    assert "status lab`" in message


@pytest.fixture(scope="module")
def prod_destroyed(target, cloud_env, outdir):
    """PROD deployed, given two versions of an object, then destroyed as the runbook says: buckets and secrets retained."""
    result = rentaliq(cloud_env, "up", "prod", "--outdir", str(outdir))
    assert result.returncode == 0, result.stderr
    s3, sm = target.client("s3"), target.client("secretsmanager")
    versions = [s3.put_object(Bucket="rentaliq-prod-files", Key="lease.pdf", Body=body)["VersionId"] for body in (b"v1", b"v2")]
    keys = json.loads(sm.get_secret_value(SecretId="rentaliq/prod/api/keys")["SecretString"])
    with _prod_database(target) as db:
        db.execute("CREATE TABLE leases (id int PRIMARY KEY, tenant text NOT NULL)")
        db.execute("INSERT INTO leases VALUES (1, 'before the destroy')")
    for args in (("protection", "off", "prod", "--confirm-prod"), ("destroy", "prod", "--confirm-prod")):
        result = rentaliq(cloud_env, *args)
        assert result.returncode == 0, result.stderr
    assert stacks.describe(target, "rentaliq-prod") is None
    assert "DeletedDate" in sm.describe_secret(SecretId="rentaliq/prod/api/keys")
    return versions, keys


def _prod_database(target):
    from rentaliq.deploy.db_tls import ca_bundle
    from rentaliq.runtime import Database, RuntimeConfig, Secrets

    config = RuntimeConfig(env="prod", ca_bundle=ca_bundle(target), connect_timeout_s=5, pool_timeout_s=5, pool_min_size=0, pool_max_size=1)
    return Database(Secrets(config, client=target.client("secretsmanager")))


def _objects(target) -> list[tuple[str, bytes]]:
    s3 = target.client("s3")
    listed = s3.list_object_versions(Bucket="rentaliq-prod-files", Prefix="lease.pdf")["Versions"]
    return sorted((v["VersionId"], s3.get_object(Bucket="rentaliq-prod-files", Key="lease.pdf", VersionId=v["VersionId"])["Body"].read()) for v in listed)


@pytest.mark.slow
def test_up_after_a_destroy_names_what_was_retained_and_the_choices(prod_destroyed, target, cloud_env, outdir):
    versions, _ = prod_destroyed
    result = rentaliq(cloud_env, "up", "prod", "--outdir", str(outdir))
    assert result.returncode == 1
    line = one_line_error(result)
    for what in (
        "bucket rentaliq-prod-files",
        "bucket rentaliq-access-logs",
        "secret rentaliq/prod/api/keys (scheduled for deletion",
        "up prod --restore-retained",
        "rentaliq aws secretsmanager delete-secret --secret-id rentaliq/prod/db/credentials --force-delete-without-recovery",
    ):
        assert what in line, line
    assert stacks.describe(target, "rentaliq-prod") is None  # nothing created, nothing touched
    assert _objects(target) == sorted(zip(versions, (b"v1", b"v2"), strict=True))


@pytest.mark.slow
def test_restore_retained_brings_back_buckets_secrets_and_the_database(prod_destroyed, target, cloud_env, outdir):
    versions, keys = prod_destroyed
    snapshots = target.client("rds").describe_db_snapshots(DBInstanceIdentifier="rentaliq-prod-db", SnapshotType="manual")["DBSnapshots"]
    result = rentaliq(cloud_env, "up", "prod", "--restore-retained", "--outdir", str(outdir))
    assert result.returncode == 0, result.stderr
    assert _objects(target) == sorted(zip(versions, (b"v1", b"v2"), strict=True))  # every version kept
    sm = target.client("secretsmanager")
    assert json.loads(sm.get_secret_value(SecretId="rentaliq/prod/api/keys")["SecretString"]) == keys
    stack = stacks.describe(target, "rentaliq-prod")
    params = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    newest = max(snapshots, key=lambda s: s["SnapshotCreateTime"])["DBSnapshotIdentifier"]  # PROD: DeletionPolicy Snapshot
    assert params["RestoreDbSnapshot"] == newest
    resources = target.client("cloudformation").describe_stack_resources(StackName="rentaliq-prod")["StackResources"]
    assert {"rentaliq-prod-files", "rentaliq-access-logs"} <= {r["PhysicalResourceId"] for r in resources}
    outputs = stacks.outputs(stack)
    assert outputs["FilesBucketName"] == "rentaliq-prod-files" and outputs["DbEndpoint"]  # the full template's outputs, not the import's
    with _prod_database(target) as db:  # the final snapshot held the data: the restored database has it
        assert db.query("SELECT id, tenant FROM leases") == [(1, "before the destroy")]
    result = rentaliq(cloud_env, "diff", "prod", "--outdir", str(outdir))
    assert result.returncode == 0 and "rentaliq-prod: no changes" in result.stdout, result.stdout + result.stderr


@pytest.mark.slow
def test_a_restore_cut_off_after_its_import_is_finished_never_replaced_by_an_empty_database(prod_destroyed, target, cloud_env, outdir):
    """A restore interrupted between the IMPORT and the update: a plain `up` must not create an empty database."""
    from rentaliq.deploy.lifecycle import _restore

    spec = load_spec("prod")
    if stacks.describe(target, "rentaliq-prod"):  # restored by the test before: destroy it again, as the runbook says
        for args in (("protection", "off", "prod", "--confirm-prod"), ("destroy", "prod", "--confirm-prod")):
            assert rentaliq(cloud_env, *args).returncode == 0
    snapshot, _ = _restore(target, spec, templates([spec], outdir)[spec.stack_name], True, None, lambda message: None)
    assert snapshot and stacks.describe(target, "rentaliq-prod")["StackStatus"] == "IMPORT_COMPLETE"
    result = rentaliq(cloud_env, "up", "prod", "--outdir", str(outdir))
    assert result.returncode == 1
    line = one_line_error(result)
    assert "a restore was interrupted" in line and "up prod --restore-retained" in line and snapshot in line, line
    resources = target.client("cloudformation").describe_stack_resources(StackName="rentaliq-prod")["StackResources"]
    assert not [r for r in resources if r["ResourceType"] == "AWS::RDS::DBInstance"]  # nothing was created
    result = rentaliq(cloud_env, "up", "prod", "--restore-retained", "--outdir", str(outdir))
    assert result.returncode == 0, result.stderr
    params = {p["ParameterKey"]: p.get("ParameterValue") for p in stacks.describe(target, "rentaliq-prod")["Parameters"]}
    assert params["RestoreDbSnapshot"] == snapshot


def test_a_deploy_that_would_replace_a_bucket_is_refused_and_executes_nothing(target, tmp_path):
    """BucketName is create-only: changing it replaces the bucket, and the old one goes with every object version."""
    spec = load_spec("qa")
    _no_stack(target, "rentaliq-qa")
    template = tmp_path / "bucket.json"
    bucket = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "rentaliq-qa-files"}}
    template.write_text(json.dumps({"Resources": {"FilesBucket": bucket}}))
    deploy(target, spec, template)
    target.client("s3").put_object(Bucket="rentaliq-qa-files", Key="keep.txt", Body=b"kept")
    try:
        bucket["Properties"]["BucketName"] = "rentaliq-qa-files-renamed"
        template.write_text(json.dumps({"Resources": {"FilesBucket": bucket}}))
        with pytest.raises(DeployError, match=r"would replace qa-files .*--allow-replacement qa-files"):
            deploy(target, spec, template)
        assert stacks.describe(target, "rentaliq-qa")["StackStatus"] == "CREATE_COMPLETE"  # nothing executed
        assert target.client("s3").get_object(Bucket="rentaliq-qa-files", Key="keep.txt")["Body"].read() == b"kept"
        change_sets = target.client("cloudformation").list_change_sets(StackName="rentaliq-qa")["Summaries"]
        assert [c["ExecutionStatus"] for c in change_sets] == ["EXECUTE_COMPLETE"]  # the create's; the refused one was deleted
    finally:
        target.client("s3").delete_object(Bucket="rentaliq-qa-files", Key="keep.txt")
        _no_stack(target, "rentaliq-qa")


def test_a_failed_destroy_leaves_the_secrets_readable_and_says_what_to_run(target, cloud_env, tmp_path):
    """Secrets are scheduled for deletion only once the stack is gone: a DELETE_FAILED environment still works."""
    from rentaliq.deploy import destroy

    spec = load_spec("qa")
    _no_stack(target, "rentaliq-qa")
    files = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "rentaliq-qa-files"}}
    retained = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    keys = {"Type": "AWS::SecretsManager::Secret", **retained, "Properties": {"Name": "rentaliq/qa/api/keys", "SecretString": '{"api_key": "k"}'}}
    deploy(target, spec, template_file(tmp_path / "qa.json", {"FilesBucket": files, "ApiKeys": keys}))
    s3, sm = target.client("s3"), target.client("secretsmanager")
    s3.put_object(Bucket="rentaliq-qa-files", Key="late.txt", Body=b"written after the plan")
    stale_plan = destroy.DestroyPlan("rentaliq-qa", True, "CREATE_COMPLETE", secrets={"rentaliq/qa/api/keys": 7})
    with pytest.raises(DeployError, match="delete failed, stack is DELETE_FAILED; its secrets were left in place"):
        destroy.destroy(target, spec, stale_plan)
    assert json.loads(sm.get_secret_value(SecretId="rentaliq/qa/api/keys")["SecretString"]) == {"api_key": "k"}
    result = rentaliq(cloud_env, "up", "qa")
    assert "rentaliq-qa is DELETE_FAILED" in one_line_error(result) and "destroy qa`" in result.stderr
    result = rentaliq(cloud_env, "destroy", "qa", "--empty-buckets")
    assert result.returncode == 0, result.stderr
    assert stacks.describe(target, "rentaliq-qa") is None
    assert "DeletedDate" in sm.describe_secret(SecretId="rentaliq/qa/api/keys")  # scheduled now, with QA's window
    sm.delete_secret(SecretId="rentaliq/qa/api/keys", ForceDeleteWithoutRecovery=True)
