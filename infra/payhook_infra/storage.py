"""The `webhook-processing` table: one item per webhook, its status machine and TTL."""

from __future__ import annotations

import pulumi_aws as aws

from .components import Component
from .settings import Settings

HASH_KEY = "webhook_id"
TTL_ATTRIBUTE = "expires_at"


class Storage(Component):
    """The status table. On demand, point-in-time recovery, TTL on `expires_at`; deletion
    protection on by default because the table holds the idempotency records
    (`tableDeletionProtection`), and Pulumi's `protect` on top (`protectData`)."""

    TYPE = "payhook:storage:Storage"

    def __init__(self, settings: Settings) -> None:
        super().__init__("storage", settings)
        self.table = aws.dynamodb.Table(
            "webhook-processing",
            name=settings.table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=HASH_KEY,
            attributes=[{"name": HASH_KEY, "type": "S"}],
            point_in_time_recovery={"enabled": True},
            ttl={"attribute_name": TTL_ATTRIBUTE, "enabled": True},
            deletion_protection_enabled=settings.table_deletion_protection,
            opts=self.child(protect=settings.protect_data),
        )
        self.register_outputs({"table_name": self.table.name, "table_arn": self.table.arn})
