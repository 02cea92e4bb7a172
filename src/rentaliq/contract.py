"""What the stacks promise to the code that deploys, audits and uses them.

The deployer, `verify` and the runtime read these names; the CDK constructs build from them. Kept free of
aws_cdk so that reading a constant never starts jsii (a no-op `up` or a `verify` should not pay for it).
"""

from __future__ import annotations

# CloudFormation can generate one value per secret; the API keys secret needs three, so `rentaliq deploy`
# generates them on first deploy and passes them as NoEcho parameters (UsePreviousValue afterwards).
API_KEY_PARAMETERS = {"api_key": "ApiKey", "jwt_secret": "JwtSecret", "encryption_key": "EncryptionKey"}

# Parameters the spec requires of every environment's database; security-relevant, so never left to defaults.
DB_PARAMETERS = {"rds.force_ssl": "1", "shared_preload_libraries": "pg_stat_statements"}

READ_SECRET_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")

GIB = 1024**3

# Stack output keys; the deploy engine, `status`, `verify` and the tests read outputs by these names.
OUTPUT_KEYS = (
    "DbEndpoint",
    "DbPort",
    "DbInstanceIdentifier",
    "FilesBucketName",
    "FilesBucketArn",
    "AccessLogsBucketName",
    "AccessLogsBucketArn",
    "DbCredentialsSecretArn",
    "DbConnectionStringSecretArn",
    "ApiKeysSecretArn",
    "S3ConfigSecretArn",
    "RdsSecurityGroupId",
    "AppSecurityGroupId",
    "ReadSecretsPolicyArn",
    "VpcId",
)
SECRET_OUTPUTS = {
    "db/credentials": "DbCredentialsSecretArn",
    "db/connection-string": "DbConnectionStringSecretArn",
    "api/keys": "ApiKeysSecretArn",
    "s3/config": "S3ConfigSecretArn",
}
