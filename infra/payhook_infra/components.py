"""The program's building blocks: one `pulumi.ComponentResource` per concern, and the default
tags every AWS resource carries.

Each concern (storage, queues, functions, events, api, secrets, monitoring) is a component of
type `payhook:<concern>:<Name>` whose AWS resources are its children, so `pulumi stack` and the
console show the stack by concern. The children keep the logical names they had when they were
children of the stack itself, and carry an alias to that old URN: an existing stack updates in
place instead of replacing its table, queues, API and keys.
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi

from .settings import Settings

#: The `managed-by` tag's value.
MANAGED_BY = "pulumi"


def default_tags(settings: Settings) -> dict[str, str]:
    """The tags every taggable resource carries: project, stage and what manages it."""
    return {**settings.tags, "managed-by": MANAGED_BY}


def takes_tags(resource: pulumi.Resource) -> bool:
    """Whether the resource's type has a `tags` map (every taggable AWS resource does)."""
    return isinstance(resource, pulumi.CustomResource) and hasattr(type(resource), "tags_all")


def tagging(settings: Settings) -> pulumi.ResourceTransformation:
    """A transformation that merges `default_tags` into the `tags` of every taggable resource
    (a resource's own tags win on a clash). Each component carries it, and Pulumi applies a
    parent's transformations to its children. A transformation rather than an explicit
    provider with `default_tags`: the resources stay on the default provider, which keeps
    reading every `aws:*` stack setting, and an existing stack's resources do not move to a
    new provider."""
    tags = default_tags(settings)

    def transformation(
        args: pulumi.ResourceTransformationArgs,
    ) -> Optional[pulumi.ResourceTransformationResult]:
        if not takes_tags(args.resource):
            return None
        props = args.props
        own = pulumi.Output.from_input(props.get("tags") or {})
        props["tags"] = own.apply(lambda t: {**tags, **(t or {})})
        return pulumi.ResourceTransformationResult(props, args.opts)

    return transformation


class Component(pulumi.ComponentResource):
    """A concern of the stack; its resources are created with `self.child(...)` options and
    carry the default tags."""

    #: `payhook:<module>:<Name>`, set by each subclass.
    TYPE: str = ""

    def __init__(self, name: str, settings: Settings) -> None:
        assert self.TYPE, f"{type(self).__name__} sets TYPE"
        super().__init__(
            self.TYPE, name, None, pulumi.ResourceOptions(transformations=[tagging(settings)])
        )
        self.settings = settings

    def child(self, **options: Any) -> pulumi.ResourceOptions:
        """Options for one of this component's resources: parented here, and aliased to the
        URN it had as a child of the stack (before the program had components)."""
        return pulumi.ResourceOptions(
            parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)], **options
        )
