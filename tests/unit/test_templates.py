"""Every row of the comparison table and every named resource, asserted on the synthesized templates."""

from __future__ import annotations

import json

import pytest

from tests.unit.templates import is_taggable, of_type, one, ref, tags

ENVS = ("lab", "qa", "prod")
BASE_TAGS = {"Project": "RentalIQ", "ManagedBy": "CDK", "Owner": "Keith Perez", "Application": "rentaliq"}

# Logical ids of stateful resources are API: a change here replaces a database, a bucket or a secret.
PINNED_IDS = {
    "AWS::RDS::DBInstance": {"DatabaseInstanceAA8A5FDE"},
    "AWS::S3::Bucket": {"StorageFilesBucket28699C44"},
    "AWS::SecretsManager::Secret": {
        "DatabaseCredentialsSecret24A37061",
        "SecretsConnectionStringSecretB9D5B431",
        "SecretsApiKeysSecretF72A6A7A",
        "SecretsS3ConfigSecret8AA96BB2",
    },
}

ABSENT = None  # the property is not in the template at all
LOGS = ["postgresql", "upgrade"]
# The comparison table's database rows, one column per environment: (lab, qa, prod).
DB_TABLE: dict[str, tuple[object, object, object]] = {
    "DBInstanceClass": ("db.t3.micro", "db.t3.small", "db.t3.medium"),
    "AllocatedStorage": ("20", "50", "100"),
    "MaxAllocatedStorage": (50, 100, 500),
    "MultiAZ": (False, False, True),
    "BackupRetentionPeriod": (3, 7, 30),
    "EnablePerformanceInsights": (False, True, True),
    "PerformanceInsightsRetentionPeriod": (ABSENT, 7, 7),
    "DeletionProtection": (False, False, True),
    "ApplyImmediately": (True, False, False),
    "MonitoringInterval": (ABSENT, ABSENT, 60),
    "EnableCloudwatchLogsExports": (ABSENT, LOGS, LOGS),
}


@pytest.mark.parametrize("env", ENVS)
def test_stateful_logical_ids_are_pinned(synthesized, env):
    template = synthesized[env]
    assert set(of_type(template, "AWS::RDS::DBInstance")) == PINNED_IDS["AWS::RDS::DBInstance"]
    assert set(of_type(template, "AWS::SecretsManager::Secret")) == PINNED_IDS["AWS::SecretsManager::Secret"]
    buckets = set(of_type(template, "AWS::S3::Bucket"))
    assert buckets == PINNED_IDS["AWS::S3::Bucket"] | ({"StorageAccessLogsBucketFEE4D6FB", "AuditLogsBucketAE41007E"} if env == "prod" else set())


@pytest.mark.parametrize("env", ENVS)
def test_database_carries_the_comparison_table(synthesized, env):
    lid, db = one(synthesized[env], "AWS::RDS::DBInstance", DBInstanceIdentifier=f"rentaliq-{env}-db")
    props = db["Properties"]
    for key, row in DB_TABLE.items():
        expected = row[ENVS.index(env)]
        assert (props[key] == expected) if expected is not ABSENT else (key not in props), key
    assert props["Engine"] == "postgres" and props["EngineVersion"] == "15"
    assert props["PreferredBackupWindow"] == ("03:00-04:00" if env == "prod" else "12:30-13:30")  # LAB/QA: while running
    assert props["PreferredMaintenanceWindow"] == "sun:04:00-sun:05:00"
    assert props["AutoMinorVersionUpgrade"] is True
    assert props["StorageEncrypted"] is True and props["PubliclyAccessible"] is False
    assert props["CopyTagsToSnapshot"] is True and props["DBName"] == "rentaliq" and props["Port"] == "5432"
    assert "{{resolve:secretsmanager:" in json.dumps(props["MasterUserPassword"])
    # Final snapshot in PROD only, through CloudFormation's own mechanism: nothing time-stamped in the template.
    assert db["DeletionPolicy"] == ("Snapshot" if env == "prod" else "Delete")
    assert tags(db) == BASE_TAGS | {"Environment": env, "Backup": "true"} | ({"Critical": "true"} if env == "prod" else {})


@pytest.mark.parametrize("env", ENVS)
def test_database_parameter_group_and_subnets(synthesized, env):
    template = synthesized[env]
    lid, pg = one(template, "AWS::RDS::DBParameterGroup")
    assert pg["Properties"]["Parameters"] == {"rds.force_ssl": "1", "shared_preload_libraries": "pg_stat_statements"}
    assert pg["Properties"]["Family"] == "postgres15"
    _, db = one(template, "AWS::RDS::DBInstance")
    assert db["Properties"]["DBParameterGroupName"] == ref(lid)
    sg_lid, subnet_group = one(template, "AWS::RDS::DBSubnetGroup")
    db_subnets = {lid for lid, s in of_type(template, "AWS::EC2::Subnet").items() if "dbSubnet" in lid}
    assert {s["Ref"] for s in subnet_group["Properties"]["SubnetIds"]} == db_subnets and len(db_subnets) == 2


def test_prod_enhanced_monitoring_role(synthesized):
    lid, role = one(synthesized["prod"], "AWS::IAM::Role", RoleName="rentaliq-rds-monitoring-role")
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    _, db = one(synthesized["prod"], "AWS::RDS::DBInstance")
    assert db["Properties"]["MonitoringRoleArn"] == {"Fn::GetAtt": [lid, "Arn"]}
    for env in ("lab", "qa"):
        named = [r["Properties"].get("RoleName") for r in of_type(synthesized[env], "AWS::IAM::Role").values() if r["Properties"].get("RoleName")]
        assert named == [f"rentaliq-{env}-scheduler-role"]  # the off-hours schedules' role (test_schedule_stack.py), no monitoring role


@pytest.mark.parametrize("env", ENVS)
def test_network_two_azs_private_subnets_nat_and_s3_endpoint(synthesized, env):
    template = synthesized[env]
    _, vpc = one(template, "AWS::EC2::VPC")
    assert tags(vpc)["Name"] == f"rentaliq-{env}-vpc"
    subnets = of_type(template, "AWS::EC2::Subnet")
    groups = {kind: [s for lid, s in subnets.items() if f"{kind}Subnet" in lid] for kind in ("public", "app", "db")}
    # LAB: nat = "none", no public subnets; QA and PROD: NAT instances (1 and 2) in the public subnets.
    assert {k: len(v) for k, v in groups.items()} == {"public": 0 if env == "lab" else 2, "app": 2, "db": 2}
    for subnet in groups["db"] + groups["app"]:
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    assert len({json.dumps(s["Properties"]["AvailabilityZone"]) for s in groups["db"]}) == 2
    assert not of_type(template, "AWS::EC2::NatGateway")
    assert len(of_type(template, "AWS::EC2::Instance")) == {"lab": 0, "qa": 1, "prod": 2}[env]
    # App subnets route to the internet through the NAT instances (LAB: not at all); DB subnets have no default route.
    routes = of_type(template, "AWS::EC2::Route")
    assert sum("InstanceId" in r["Properties"] for r in routes.values()) == (0 if env == "lab" else 2)
    assert not [lid for lid in routes if "dbSubnet" in lid]
    _, endpoint = one(template, "AWS::EC2::VPCEndpoint")
    assert endpoint["Properties"]["VpcEndpointType"] == "Gateway" and ".s3" in json.dumps(endpoint["Properties"]["ServiceName"])
    assert len(of_type(template, "AWS::EC2::FlowLog")) == 1


@pytest.mark.parametrize("env", ENVS)
def test_security_groups(synthesized, env):
    template = synthesized[env]
    rds_lid, rds_sg = one(template, "AWS::EC2::SecurityGroup", GroupName=f"rentaliq-{env}-rds-sg")
    app_lid, app_sg = one(template, "AWS::EC2::SecurityGroup", GroupName=f"rentaliq-{env}-app-sg")
    app_in = {(r["FromPort"], r["CidrIp"]) for r in app_sg["Properties"]["SecurityGroupIngress"]}
    assert app_in == {(443, "0.0.0.0/0"), (80, "0.0.0.0/0")}
    app_out = {(r["FromPort"], r.get("CidrIp")) for r in app_sg["Properties"]["SecurityGroupEgress"]}
    assert app_out == {(443, "0.0.0.0/0"), (80, "0.0.0.0/0")}
    _, egress = one(template, "AWS::EC2::SecurityGroupEgress")
    assert egress["Properties"]["FromPort"] == 5432 and egress["Properties"]["DestinationSecurityGroupId"] == {"Fn::GetAtt": [rds_lid, "GroupId"]}
    _, ingress = one(template, "AWS::EC2::SecurityGroupIngress")
    assert ingress["Properties"]["FromPort"] == 5432 and ingress["Properties"]["SourceSecurityGroupId"] == {"Fn::GetAtt": [app_lid, "GroupId"]}
    cidr_in = [(r["FromPort"], r["CidrIp"]) for r in rds_sg["Properties"]["SecurityGroupIngress"]]
    assert cidr_in == [(5432, {"lab": "10.10.0.0/16", "qa": "10.20.0.0/16", "prod": "10.30.0.0/16"}[env])]
    assert rds_sg["Properties"]["SecurityGroupEgress"] == [{"CidrIp": "0.0.0.0/0", "Description": "Allow all outbound traffic by default", "IpProtocol": "-1"}]
    _, db = one(template, "AWS::RDS::DBInstance")
    assert db["Properties"]["VPCSecurityGroups"] == [{"Fn::GetAtt": [rds_lid, "GroupId"]}]


@pytest.mark.parametrize("env", ENVS)
def test_files_bucket(synthesized, env):
    template = synthesized[env]
    lid, bucket = one(template, "AWS::S3::Bucket", BucketName=f"rentaliq-{env}-files")
    props = bucket["Properties"]
    # PROD: SSE-KMS under the environment's key (tests/unit/test_keys_template.py checks the key); LAB, QA: SSE-S3.
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert sse == ("aws:kms" if env == "prod" else "AES256")
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert ("VersioningConfiguration" in props) is (env != "lab")
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    transitions = [(t["StorageClass"], t["TransitionInDays"]) for t in rules["transition-current"]["Transitions"]]
    assert (
        transitions
        == {
            "lab": [("STANDARD_IA", 90), ("GLACIER", 180)],
            "qa": [("STANDARD_IA", 90), ("GLACIER", 180)],
            "prod": [("STANDARD_IA", 90), ("INTELLIGENT_TIERING", 180), ("GLACIER", 365)],
        }[env]
    )
    assert rules["transition-current"].get("ExpirationInDays") == (365 if env == "lab" else None)
    assert rules["abort-incomplete-multipart"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert ("expire-noncurrent" in rules) is (env != "lab")
    if env != "lab":
        assert rules["expire-noncurrent"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
    _, policy = one(template, "AWS::S3::BucketPolicy", Bucket=ref(lid))
    deny = policy["Properties"]["PolicyDocument"]["Statement"][0]
    assert (deny["Effect"], deny["Action"], deny["Condition"]) == ("Deny", "s3:*", {"Bool": {"aws:SecureTransport": "false"}})
    assert bucket["DeletionPolicy"] == ("Retain" if env == "prod" else "Delete")
    assert tags(bucket)["Backup"] == "true" and tags(bucket)["Environment"] == env


def test_prod_intelligent_tiering_and_access_logs(synthesized):
    template = synthesized["prod"]
    _, files = one(template, "AWS::S3::Bucket", BucketName="rentaliq-prod-files")
    tiering = files["Properties"]["IntelligentTieringConfigurations"][0]
    assert tiering["Status"] == "Enabled"
    assert tiering["Tierings"] == [{"AccessTier": "ARCHIVE_ACCESS", "Days": 90}, {"AccessTier": "DEEP_ARCHIVE_ACCESS", "Days": 180}]
    logs_lid, logs = one(template, "AWS::S3::Bucket", BucketName="rentaliq-access-logs")
    assert files["Properties"]["LoggingConfiguration"] == {"DestinationBucketName": ref(logs_lid), "LogFilePrefix": "rentaliq-prod-files/"}
    _, policy = one(template, "AWS::S3::BucketPolicy", Bucket=ref(logs_lid))
    delivery = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert delivery[0]["Principal"] == {"Service": "logging.s3.amazonaws.com"} and delivery[0]["Action"] == "s3:PutObject"
    assert logs["DeletionPolicy"] == "Retain"
    for env in ("lab", "qa"):
        _, bucket = one(synthesized[env], "AWS::S3::Bucket", BucketName=f"rentaliq-{env}-files")
        assert "LoggingConfiguration" not in bucket["Properties"] and "IntelligentTieringConfigurations" not in bucket["Properties"]


@pytest.mark.parametrize("env", ENVS)
def test_four_secrets_with_their_keys(synthesized, env):
    template = synthesized[env]
    secrets = {r["Properties"]["Name"]: (lid, r) for lid, r in of_type(template, "AWS::SecretsManager::Secret").items()}
    assert set(secrets) == {f"rentaliq/{env}/{n}" for n in ("db/credentials", "db/connection-string", "api/keys", "s3/config")}
    cred_lid, cred = secrets[f"rentaliq/{env}/db/credentials"]
    generate = cred["Properties"]["GenerateSecretString"]
    assert json.loads(generate["SecretStringTemplate"]) == {"username": "rentaliq_admin", "dbname": "rentaliq"}
    assert generate["GenerateStringKey"] == "password"
    assert all(c in generate["ExcludeCharacters"] for c in "@:/?#[]%")
    _, attachment = one(template, "AWS::SecretsManager::SecretTargetAttachment")
    assert attachment["Properties"] == {"SecretId": ref(cred_lid), "TargetId": ref("DatabaseInstanceAA8A5FDE"), "TargetType": "AWS::RDS::DBInstance"}
    conn = json.dumps(secrets[f"rentaliq/{env}/db/connection-string"][1]["Properties"]["SecretString"])
    for fragment in ("DATABASE_URL", "postgresql://rentaliq_admin:", "sslmode=verify-full", "JDBC_URL", "jdbc:postgresql://", '"Endpoint.Address"'):
        assert fragment in conn
    api = json.dumps(secrets[f"rentaliq/{env}/api/keys"][1]["Properties"]["SecretString"])
    assert all(k in api for k in ("api_key", "jwt_secret", "encryption_key")) and all(k in api for k in ('"Ref": "ApiKey"', '"Ref": "JwtSecret"'))
    for name in ("ApiKey", "JwtSecret", "EncryptionKey"):
        assert template["Parameters"][name]["NoEcho"] is True
    s3 = json.dumps(secrets[f"rentaliq/{env}/s3/config"][1]["Properties"]["SecretString"])
    assert all(k in s3 for k in ("bucket_name", "bucket_arn", "region"))
    for _, secret in secrets.values():
        assert secret["DeletionPolicy"] == "Retain"  # the deployer schedules their deletion after the stack
        assert tags(secret)["Environment"] == env


@pytest.mark.parametrize("env", ENVS)
def test_read_secrets_policy_covers_only_this_environment(synthesized, env):
    _, policy = one(synthesized[env], "AWS::IAM::ManagedPolicy", ManagedPolicyName=f"rentaliq-{env}-read-secrets-policy")
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    resource = json.dumps(statement["Resource"])
    assert f":secret:rentaliq/{env}/*" in resource and resource.count("secret:") == 1


@pytest.mark.parametrize("env", ENVS)
def test_alarms(synthesized, env):
    template = synthesized[env]
    _, cpu = one(template, "AWS::CloudWatch::Alarm", AlarmName=f"rentaliq-{env}-db-high-cpu")
    p = cpu["Properties"]
    assert (p["MetricName"], p["Namespace"], p["Statistic"], p["Period"], p["Threshold"], p["ComparisonOperator"], p["EvaluationPeriods"]) == (
        "CPUUtilization",
        "AWS/RDS",
        "Average",
        300,
        80,
        "GreaterThanThreshold",
        1,
    )
    assert p["Dimensions"] == [{"Name": "DBInstanceIdentifier", "Value": ref("DatabaseInstanceAA8A5FDE")}]
    one(template, "AWS::CloudWatch::Alarm", AlarmName=f"rentaliq-{env}-db-low-free-storage")
    one(template, "AWS::CloudWatch::Alarm", AlarmName=f"rentaliq-{env}-db-high-connections")


@pytest.mark.parametrize("env", ENVS)
def test_outputs(synthesized, env):
    outputs = set(synthesized[env]["Outputs"])
    # Grouped by what they describe: the database, the files bucket, the secrets, access, the network, alerts.
    expected = {
        *("DbEndpoint", "DbPort", "DbInstanceIdentifier"),
        *("FilesBucketName", "FilesBucketArn"),
        *("DbCredentialsSecretArn", "DbConnectionStringSecretArn", "ApiKeysSecretArn", "S3ConfigSecretArn"),
        *("RdsSecurityGroupId", "AppSecurityGroupId", "ReadSecretsPolicyArn"),
        *("VpcId", "AlertsTopicArn"),
    }
    assert outputs == expected | ({"AccessLogsBucketName", "AccessLogsBucketArn"} if env == "prod" else set())


@pytest.mark.parametrize("env", ENVS)
def test_every_taggable_resource_carries_the_base_tags(synthesized, env):
    resources = synthesized[env]["Resources"]
    taggable = {lid for lid, r in resources.items() if is_taggable(r["Type"])}
    # Types the registry calls taggable: every one of them, not only those that already have a Tags property.
    assert {"AWS::RDS::DBInstance", "AWS::S3::Bucket", "AWS::SecretsManager::Secret", "AWS::EC2::VPC"} <= {resources[lid]["Type"] for lid in taggable}
    untagged = sorted(f"{lid} ({resources[lid]['Type']})" for lid in taggable if not (BASE_TAGS | {"Environment": env}).items() <= tags(resources[lid]).items())
    assert untagged == []
    assert ("Critical" in tags(one(synthesized[env], "AWS::S3::Bucket", BucketName=f"rentaliq-{env}-files")[1])) is (env == "prod")
