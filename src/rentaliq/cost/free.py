"""Resource types that cost nothing by themselves, each with the reason: the other half of "every type is accounted for".

A type here shows on the bill's "no charge" list, never silently. A type that is billed through another resource
says which (a subscription through its topic's deliveries, a target attachment through its secret).
"""

from __future__ import annotations

FREE_TYPES: dict[str, str] = {
    "AWS::CDK::Metadata": "CDK bookkeeping, not an AWS resource",
    "AWS::EC2::VPC": "VPCs are free",
    "AWS::EC2::Subnet": "subnets are free",
    "AWS::EC2::RouteTable": "route tables are free",
    "AWS::EC2::Route": "routes are free",
    "AWS::EC2::SubnetRouteTableAssociation": "free",
    "AWS::EC2::InternetGateway": "internet gateways are free (data transfer out is billed per GB, not modelled)",
    "AWS::EC2::VPCGatewayAttachment": "free",
    "AWS::EC2::SecurityGroup": "security groups are free",
    "AWS::EC2::SecurityGroupIngress": "free",
    "AWS::EC2::SecurityGroupEgress": "free",
    "AWS::IAM::Role": "IAM is free",
    "AWS::IAM::Policy": "IAM is free",
    "AWS::IAM::ManagedPolicy": "IAM is free",
    "AWS::IAM::InstanceProfile": "IAM is free",
    "AWS::KMS::Alias": "aliases are free (the key is billed)",
    "AWS::RDS::DBParameterGroup": "free",
    "AWS::RDS::DBSubnetGroup": "free",
    "AWS::S3::BucketPolicy": "free",
    "AWS::Config::DeliveryChannel": "free (Config bills per configuration item recorded and per rule evaluation)",
    "AWS::SNS::TopicPolicy": "free",
    "AWS::SNS::Subscription": "billed on its topic, per notification delivered",
    "AWS::SecretsManager::SecretTargetAttachment": "free (the secret is billed)",
    "AWS::SecretsManager::RotationSchedule": "the hosted rotation Lambda runs seconds per rotation_days: inside Lambda's free tier",
    "AWS::SecretsManager::ResourcePolicy": "free",
}
