"""The `webhook-processing` table: one item per webhook, its status machine and TTL, with the
sparse index of items still moving; and the quarantine bucket, for verified bodies too large
for an item."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from .components import Component
from .settings import Settings

HASH_KEY = "webhook_id"
TTL_ATTRIBUTE = "expires_at"

#: The sparse index the sweeper and `payhook quarantine list` query
#: (`functions/aws/src/status_store.rs`: `OPEN_STATUS_INDEX`, `OPEN_STATUS_ATTRIBUTE`,
#: `OPEN_STATUS_SORT_KEY`): an item is in it only while its status is not final.
OPEN_STATUS_INDEX = "open-status-updated-at"
OPEN_STATUS_ATTRIBUTE = "open_status"
OPEN_STATUS_SORT_KEY = "updated_at"

#: Where the validator keeps quarantined bodies in the bucket (`payhook_core::blob`'s
#: `QUARANTINE_KEY_PREFIX`).
QUARANTINE_KEY_PREFIX = "quarantine/"

#: How much longer than the status items a quarantined body is kept: a replay near the end of
#: the item's life still finds its body.
QUARANTINE_MARGIN_DAYS = 7


class Storage(Component):
    """The status table. On demand, point-in-time recovery, TTL on `expires_at`, the
    keys-only index `open-status-updated-at`; deletion protection on by default because the
    table holds the idempotency records (`tableDeletionProtection`), and Pulumi's `protect` on
    top (`protectData`). The quarantine bucket: encrypted (SSE-S3), public access blocked,
    ACLs off, TLS only, objects expired after the items' retention and a margin, protected with
    the table."""

    TYPE = "payhook:storage:Storage"

    def __init__(self, settings: Settings) -> None:
        super().__init__("storage", settings)
        self.table = aws.dynamodb.Table(
            "webhook-processing",
            name=settings.table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=HASH_KEY,
            attributes=[
                {"name": HASH_KEY, "type": "S"},
                {"name": OPEN_STATUS_ATTRIBUTE, "type": "S"},
                {"name": OPEN_STATUS_SORT_KEY, "type": "S"},
            ],
            global_secondary_indexes=[
                {
                    "name": OPEN_STATUS_INDEX,
                    "hash_key": OPEN_STATUS_ATTRIBUTE,
                    "range_key": OPEN_STATUS_SORT_KEY,
                    # Keys only: the items' bodies are not copied on every write; the reader
                    # gets each listed item with a consistent GetItem.
                    "projection_type": "KEYS_ONLY",
                }
            ],
            point_in_time_recovery={"enabled": True},
            ttl={"attribute_name": TTL_ATTRIBUTE, "enabled": True},
            deletion_protection_enabled=settings.table_deletion_protection,
            opts=self.child(protect=settings.protect_data),
        )
        self.quarantine_bucket = self._quarantine_bucket(settings)
        self.register_outputs(
            {
                "table_name": self.table.name,
                "table_arn": self.table.arn,
                "quarantine_bucket": self.quarantine_bucket.bucket,
            }
        )

    @property
    def open_status_index_arn(self) -> pulumi.Output[str]:
        return self.table.arn.apply(lambda arn: f"{arn}/index/{OPEN_STATUS_INDEX}")

    def _quarantine_bucket(self, settings: Settings) -> aws.s3.Bucket:
        bucket = aws.s3.Bucket(
            "quarantine",
            # Bucket names are global: Pulumi adds a suffix; the validator gets the name.
            bucket_prefix=f"{settings.prefix}-quarantine-",
            opts=self.child(protect=settings.protect_data),
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            "quarantine-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=self.child(),
        )
        aws.s3.BucketPublicAccessBlock(
            "quarantine-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self.child(),
        )
        aws.s3.BucketOwnershipControls(
            "quarantine-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=self.child(),
        )
        aws.s3.BucketLifecycleConfiguration(
            "quarantine-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-quarantined-bodies",
                    "status": "Enabled",
                    "filter": {"prefix": QUARANTINE_KEY_PREFIX},
                    "expiration": {
                        "days": settings.idempotency_retention_days + QUARANTINE_MARGIN_DAYS
                    },
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            opts=self.child(),
        )
        aws.s3.BucketPolicy(
            "quarantine-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(tls_only_policy(arn))),
            opts=self.child(),
        )
        return bucket


def tls_only_policy(bucket_arn: str) -> dict:
    """Deny every request to the bucket that is not over TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
