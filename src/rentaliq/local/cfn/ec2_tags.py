"""EC2 tags as CloudFormation keeps them: an update (or a rollback) makes a resource's tags exactly the template's.

EC2's CreateTags only adds or overwrites, so a key the new template no longer has must be deleted explicitly;
otherwise a rolled-back update would leave the tag it added behind.
"""

from __future__ import annotations

from typing import Any

from rentaliq.local.cfn.base import Context, tag_list


def tag_specifications(ctx: Context, resource_type: str, props: dict[str, Any]) -> list[dict[str, Any]]:
    """Tags given with the create call itself: what a crash interrupts can still be found by them."""
    return [{"ResourceType": resource_type, "Tags": tag_list(props) + ctx.cloudformation_tags()}]


def retag(ctx: Context, resource_id: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Make ``resource_id``'s template tags ``new``'s: remove the keys only ``old`` had, set the others.
    CloudFormation's own aws:cloudformation:* tags are kept (they cannot be removed on AWS either)."""
    ec2 = ctx.client("ec2")
    kept = {t["Key"] for t in tag_list(new)}
    if removed := [{"Key": t["Key"]} for t in tag_list(old) if t["Key"] not in kept]:
        ec2.delete_tags(Resources=[resource_id], Tags=removed)
    if tags := tag_list(new):
        ec2.create_tags(Resources=[resource_id], Tags=tags)


class TagsInPlace:
    """For EC2 types whose only updatable property (here) is Tags: AWS updates them in place, and so do we."""

    type_name: str
    updatable: frozenset[str] = frozenset({"Tags"})

    def tag_target(self, physical_id: str, ctx: Context) -> str:
        return physical_id

    def update(self, physical_id: str, old: dict[str, Any], new: dict[str, Any], ctx: Context) -> str:
        self.in_place_only(old, new, self.updatable)  # type: ignore[attr-defined]
        self.apply_in_place(physical_id, old, new, ctx)
        retag(ctx, self.tag_target(physical_id, ctx), old, new)
        return physical_id

    def apply_in_place(self, physical_id: str, old: dict[str, Any], new: dict[str, Any], ctx: Context) -> None:
        """The updatable properties other than Tags (none by default)."""
