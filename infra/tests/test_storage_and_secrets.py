"""DynamoDB status table, the quarantine bucket and the SSM SecureString parameters."""

from __future__ import annotations

from mocks import api_key_value

import json
import re

from conftest import REPO_ROOT
from rust_source import ssm_parameter_root

SECRET_SIG = "4dabf18193072939515e22adb298388d"


def test_status_table(deployment) -> None:
    (table,) = deployment.of_type("aws:dynamodb/table:Table")
    assert table.inputs["name"] == "webhook-processing"
    assert table.inputs["hashKey"] == "webhook_id"
    index, partition, sort = (
        _rust_str("functions/aws/src/status_store.rs", name)
        for name in ("OPEN_STATUS_INDEX", "OPEN_STATUS_ATTRIBUTE", "OPEN_STATUS_SORT_KEY")
    )
    assert table.inputs["attributes"] == [
        {"name": "webhook_id", "type": "S"},
        {"name": partition, "type": "S"},
        {"name": sort, "type": "S"},
    ]
    # The sparse index the sweeper and `payhook quarantine list` query, as the code names it.
    assert table.inputs["globalSecondaryIndexes"] == [
        {"name": index, "hashKey": partition, "rangeKey": sort, "projectionType": "KEYS_ONLY"}
    ]
    assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
    assert table.inputs["pointInTimeRecovery"] == {"enabled": True}
    assert table.inputs["ttl"] == {"attributeName": "expires_at", "enabled": True}
    assert table.inputs["deletionProtectionEnabled"] is True


def _value(parameter) -> str:
    value = parameter.inputs["value"]
    assert isinstance(value, dict) and SECRET_SIG in value, "the value must stay a Pulumi secret"
    return value["value"]


def test_provider_secrets_are_secure_strings_from_secret_config(deployment) -> None:
    parameters = {p.inputs["name"]: p for p in deployment.of_type("aws:ssm/parameter:Parameter")}
    assert {name: p.inputs["type"] for name, p in parameters.items()} == {
        "/payhook/prod/stripe/signing-secrets": "SecureString",
        "/payhook/prod/square/signing-secrets": "SecureString",
        "/payhook/prod/square/notification-url": "SecureString",
        "/payhook/prod/paypal/webhook-id": "SecureString",
    }
    assert _value(parameters["/payhook/prod/stripe/signing-secrets"]) == "whsec_current,whsec_previous"
    assert _value(parameters["/payhook/prod/square/signing-secrets"]) == "square-signature-key"
    # The configured URL (a custom domain) gets Square's key: Square signs the URL with it.
    assert _value(parameters["/payhook/prod/square/notification-url"]) == (
        f"https://hooks.example.com/prod/webhooks/square?key={api_key_value('square-api-key')}"
    )
    assert _value(parameters["/payhook/prod/paypal/webhook-id"]) == "WH-12345"


def test_secret_parameters_live_where_the_validator_reads_them(deployment) -> None:
    validator = deployment.one("aws:lambda/function:Function", "webhook-validator")
    stage = validator.inputs["environment"]["variables"]["PAYHOOK_STAGE"]
    prefix = f"{ssm_parameter_root()}/{stage}"
    for parameter in deployment.of_type("aws:ssm/parameter:Parameter"):
        assert parameter.inputs["name"].startswith(prefix + "/")


def _rust_str(path: str, name: str) -> str:
    """The value of `const NAME: &str = "…";` in a Rust file."""
    match = re.search(rf'const {name}: &str = "([^"]+)";', (REPO_ROOT / path).read_text())
    assert match, f"no `const {name}: &str` in {path}"
    return match.group(1)


def test_quarantine_bucket_is_encrypted_private_tls_only_and_expires_after_the_items(
    deployment,
) -> None:
    bucket = deployment.one("aws:s3/bucket:Bucket", "quarantine")
    assert bucket.inputs["bucketPrefix"] == "payhook-prod-quarantine-"
    (sse,) = deployment.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    assert sse.inputs["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
    ]
    (block,) = deployment.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    for setting in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block.inputs[setting] is True, setting
    (ownership,) = deployment.of_type("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    for resource in (sse, block, ownership):
        assert resource.inputs["bucket"] == bucket.outputs["bucket"]

    (lifecycle,) = deployment.of_type(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )
    (rule,) = lifecycle.inputs["rules"]
    validator = deployment.one("aws:lambda/function:Function", "webhook-validator")
    retention_days = int(
        validator.inputs["environment"]["variables"]["IDEMPOTENCY_RETENTION_SECONDS"]
    ) // 86_400
    # Where the validator writes (payhook-core's key prefix), kept past the items' retention.
    assert rule["filter"] == {"prefix": _rust_str("functions/core/src/blob.rs", "QUARANTINE_KEY_PREFIX")}
    assert rule["status"] == "Enabled"
    assert rule["expiration"]["days"] > retention_days
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}

    (policy,) = deployment.of_type("aws:s3/bucketPolicy:BucketPolicy")
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [bucket.outputs["arn"], f"{bucket.outputs['arn']}/*"]


def test_the_validator_keeps_large_quarantined_bodies_in_the_bucket(deployment) -> None:
    bucket = deployment.one("aws:s3/bucket:Bucket", "quarantine")
    validator = deployment.one("aws:lambda/function:Function", "webhook-validator")
    assert validator.inputs["environment"]["variables"]["QUARANTINE_BUCKET"] == bucket.outputs["bucket"]
