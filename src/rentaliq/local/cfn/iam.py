"""IAM roles, inline policies and managed policies."""

from __future__ import annotations

from rentaliq.local.cfn.base import Named, Provider, as_json, exists, removed_tag_keys, tag_list


class Role(Named):
    type_name = "AWS::IAM::Role"

    def named_exists(self, name, ctx):
        return exists(ctx.client("iam").get_role, RoleName=name)

    def create(self, props, ctx):
        iam = ctx.client("iam")
        name = self.name(props, ctx)
        kwargs = {"RoleName": name, "AssumeRolePolicyDocument": as_json(props["AssumeRolePolicyDocument"]), "Path": props.get("Path", "/")}
        if props.get("Description"):
            kwargs["Description"] = props["Description"]
        if props.get("Tags"):
            kwargs["Tags"] = tag_list(props)
        if props.get("MaxSessionDuration"):
            kwargs["MaxSessionDuration"] = int(props["MaxSessionDuration"])
        iam.create_role(**kwargs)
        self._attach(name, {}, props, ctx)
        return name

    @staticmethod
    def _attach(name, old, new, ctx) -> None:
        iam = ctx.client("iam")
        before, after = set(old.get("ManagedPolicyArns", [])), set(new.get("ManagedPolicyArns", []))
        for arn in sorted(after - before):
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        for arn in sorted(before - after):
            iam.detach_role_policy(RoleName=name, PolicyArn=arn)
        old_inline = {p["PolicyName"] for p in old.get("Policies", [])}
        for policy in new.get("Policies", []):
            iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=as_json(policy["PolicyDocument"]))
        for policy_name in old_inline - {p["PolicyName"] for p in new.get("Policies", [])}:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)

    def update(self, physical_id, old, new, ctx):
        if any(old.get(k) != new.get(k) for k in self.replace_on_change):
            return super().update(physical_id, old, new, ctx)
        iam = ctx.client("iam")
        iam.update_assume_role_policy(RoleName=physical_id, PolicyDocument=as_json(new["AssumeRolePolicyDocument"]))
        self._attach(physical_id, old, new, ctx)
        if old.get("Description") != new.get("Description") or old.get("MaxSessionDuration") != new.get("MaxSessionDuration"):
            iam.update_role(RoleName=physical_id, Description=new.get("Description", ""), MaxSessionDuration=int(new.get("MaxSessionDuration", 3600)))
        if removed := removed_tag_keys(old, new):
            iam.untag_role(RoleName=physical_id, TagKeys=removed)
        if new.get("Tags") and new.get("Tags") != old.get("Tags"):
            iam.tag_role(RoleName=physical_id, Tags=tag_list(new))
        return physical_id

    def delete(self, physical_id, props, ctx):
        iam = ctx.client("iam")
        for policy in iam.list_attached_role_policies(RoleName=physical_id)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=physical_id, PolicyArn=policy["PolicyArn"])
        for policy_name in iam.list_role_policies(RoleName=physical_id)["PolicyNames"]:
            iam.delete_role_policy(RoleName=physical_id, PolicyName=policy_name)
        iam.delete_role(RoleName=physical_id)

    def attributes(self, physical_id, props, ctx):
        role = ctx.client("iam").get_role(RoleName=physical_id)["Role"]
        return {"Arn": role["Arn"], "RoleId": role["RoleId"]}


class Policy(Provider):
    """An inline policy put on roles (and users/groups) under one name."""

    type_name = "AWS::IAM::Policy"

    def create(self, props, ctx):
        iam = ctx.client("iam")
        document = as_json(props["PolicyDocument"])
        for role in props.get("Roles", []):
            iam.put_role_policy(RoleName=role, PolicyName=props["PolicyName"], PolicyDocument=document)
        for user in props.get("Users", []):
            iam.put_user_policy(UserName=user, PolicyName=props["PolicyName"], PolicyDocument=document)
        for group in props.get("Groups", []):
            iam.put_group_policy(GroupName=group, PolicyName=props["PolicyName"], PolicyDocument=document)
        return props["PolicyName"]

    def locate(self, props, ctx):
        return [props["PolicyName"]]

    def update(self, physical_id, old, new, ctx):
        """Every property updates in place: put the (new) document under the (new) name on the new principals,
        then take the old one off where it is no longer wanted."""
        self.create(new, ctx)
        iam, name = ctx.client("iam"), new["PolicyName"]
        for key, call, principal in (
            ("Roles", "delete_role_policy", "RoleName"),
            ("Users", "delete_user_policy", "UserName"),
            ("Groups", "delete_group_policy", "GroupName"),
        ):
            for target in old.get(key, []):
                if physical_id != name or target not in new.get(key, []):
                    getattr(iam, call)(**{principal: target, "PolicyName": physical_id})
        return name

    def delete(self, physical_id, props, ctx):
        iam = ctx.client("iam")
        for role in props.get("Roles", []):
            iam.delete_role_policy(RoleName=role, PolicyName=physical_id)
        for user in props.get("Users", []):
            iam.delete_user_policy(UserName=user, PolicyName=physical_id)
        for group in props.get("Groups", []):
            iam.delete_group_policy(GroupName=group, PolicyName=physical_id)


class ManagedPolicy(Named):
    type_name = "AWS::IAM::ManagedPolicy"
    name_max_length = 128

    def _arn(self, props, ctx) -> str:
        return f"arn:aws:iam::{ctx.account_id}:policy{props.get('Path', '/')}{self.name(props, ctx)}"

    def locate(self, props, ctx):
        """Found by its ARN (the physical id), which also holds the path."""
        arn = self._arn(props, ctx)
        return [arn] if exists(ctx.client("iam").get_policy, PolicyArn=arn) else []

    def create(self, props, ctx):
        iam = ctx.client("iam")
        kwargs = {"PolicyName": self.name(props, ctx), "PolicyDocument": as_json(props["PolicyDocument"]), "Path": props.get("Path", "/")}
        if props.get("Description"):
            kwargs["Description"] = props["Description"]
        arn = iam.create_policy(**kwargs)["Policy"]["Arn"]
        for role in props.get("Roles", []):
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        return arn

    def update(self, physical_id, old, new, ctx):
        self.in_place_only(old, new, frozenset({"PolicyDocument", "Roles"}))
        iam = ctx.client("iam")
        for role in [r for r in old.get("Roles", []) if r not in new.get("Roles", [])]:
            iam.detach_role_policy(RoleName=role, PolicyArn=physical_id)
        for role in [r for r in new.get("Roles", []) if r not in old.get("Roles", [])]:
            iam.attach_role_policy(RoleName=role, PolicyArn=physical_id)
        if old.get("PolicyDocument") == new.get("PolicyDocument"):
            return physical_id
        versions = iam.list_policy_versions(PolicyArn=physical_id)["Versions"]
        for version in versions:
            if not version["IsDefaultVersion"] and len(versions) >= 5:
                iam.delete_policy_version(PolicyArn=physical_id, VersionId=version["VersionId"])
                break
        iam.create_policy_version(PolicyArn=physical_id, PolicyDocument=as_json(new["PolicyDocument"]), SetAsDefault=True)
        return physical_id

    def delete(self, physical_id, props, ctx):
        iam = ctx.client("iam")
        for role in props.get("Roles", []):
            iam.detach_role_policy(RoleName=role, PolicyArn=physical_id)
        iam.delete_policy(PolicyArn=physical_id)

    def attributes(self, physical_id, props, ctx):
        return {"PolicyArn": physical_id}


PROVIDERS = [Role, Policy, ManagedPolicy]
