"""The `webhook-processing` table: one item per webhook, its status machine and TTL."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from .settings import Settings

HASH_KEY = "webhook_id"
TTL_ATTRIBUTE = "expires_at"


def create(settings: Settings) -> aws.dynamodb.Table:
    """On-demand, point-in-time recovery, TTL on `expires_at`; deletion protection on by
    default because the table holds the idempotency records (`tableDeletionProtection`)."""
    return aws.dynamodb.Table(
        "webhook-processing",
        name=settings.table_name,
        billing_mode="PAY_PER_REQUEST",
        hash_key=HASH_KEY,
        attributes=[{"name": HASH_KEY, "type": "S"}],
        point_in_time_recovery={"enabled": True},
        ttl={"attribute_name": TTL_ATTRIBUTE, "enabled": True},
        deletion_protection_enabled=settings.table_deletion_protection,
        tags=settings.tags,
        # Pulumi refuses to delete it (`protectData`), on top of DynamoDB's own protection.
        opts=pulumi.ResourceOptions(protect=settings.protect_data),
    )
