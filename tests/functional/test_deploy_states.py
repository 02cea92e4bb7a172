"""`status`, `diff`, `destroy` and `up` on stacks in the states a bad day leaves, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from rentaliq.deploy import stacks
from rentaliq.deploy.changesets import DeployError, deploy
from rentaliq.environments import load_spec

BROKEN = {"Resources": {
    "Probe": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "rentaliq-states-probe"}},
    "Broken": {"Type": "AWS::RDS::DBSubnetGroup", "DependsOn": "Probe",
               "Properties": {"DBSubnetGroupDescription": "x", "SubnetIds": ["subnet-doesnotexist"]}},
}}


def rentaliq(env, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "rentaliq.cli", *args], capture_output=True, text=True, env=env, timeout=timeout)


def one_line_error(result) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


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


@pytest.mark.slow
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
    assert "rentaliq-qa does not exist but a previous destroy left" in line and "--restore-retained" in line
    assert "aws secretsmanager delete-secret --secret-id rentaliq/qa/api/keys --force-delete-without-recovery" in line
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
    if stacks.describe(target, "rentaliq-qa"):
        pytest.skip("rentaliq-qa exists in this session")
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

    error = ClientError({"Error": {"Code": "ValidationError", "Message":
                                   "Stack:arn:aws:cloudformation:us-east-1:1:stack/rentaliq-lab/x is in UPDATE_IN_PROGRESS state and can not be updated."}},
                        "CreateChangeSet")
    message = str(client_error(error, load_spec("lab")))
    assert message.startswith("rentaliq-lab is UPDATE_IN_PROGRESS: another operation is running on it")
    assert "status lab`" in message
