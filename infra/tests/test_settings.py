"""Stack configuration: defaults, overrides and the errors a wrong value gives."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pulumi
import pytest
import yaml

from conftest import CONFIG, INFRA_DIR, SECRET_KEYS
from payhook_infra import settings
from payhook_infra.settings import ConfigError


@contextlib.contextmanager
def config(**overrides: str):
    """Run with extra `payhook:` config, then restore the suite's configuration."""
    values = {**CONFIG, **{f"payhook:{k}": v for k, v in overrides.items()}}
    pulumi.runtime.set_all_config(values, SECRET_KEYS)
    try:
        yield
    finally:
        pulumi.runtime.set_all_config(CONFIG, SECRET_KEYS)


def test_project_file_defaults_match_the_program_defaults() -> None:
    declared = yaml.safe_load((INFRA_DIR / "Pulumi.yaml").read_text())["config"]
    loaded = settings.load()
    assert declared["stage"]["default"] == loaded.stage == "prod"
    assert declared["tableName"]["default"] == loaded.table_name == "webhook-processing"
    assert declared["eventBusName"]["default"] == loaded.event_bus_name == "payment-events"
    assert declared["maxReceiveCount"]["default"] == loaded.max_receive_count == 5
    assert declared["tableDeletionProtection"]["default"] is loaded.table_deletion_protection is True
    assert declared["apiKeyRequired"]["default"] is loaded.api_key_required is True
    assert declared["apiKeyPerProvider"]["default"] is loaded.api_key_per_provider is True
    assert declared["apiKeyIdentitySource"]["default"] == loaded.api_key_identity_source == "query"
    assert declared["apiQuotaPerDay"]["default"] == loaded.api_quota_per_day == 10000
    assert declared["apiRateLimit"]["default"] == loaded.api_rate_limit
    assert declared["apiBurstLimit"]["default"] == loaded.api_burst_limit
    assert declared["archiveRetentionDays"]["default"] == loaded.archive_retention_days
    assert declared["manageApiGatewayAccount"]["default"] is loaded.manage_apigateway_account is False
    assert declared["processorMaxConcurrency"]["default"] == loaded.processor_max_concurrency == 5
    assert declared["validatorReservedConcurrency"]["default"] == loaded.validator_reserved_concurrency
    assert declared["protectData"]["default"] is loaded.protect_data is True
    assert declared["runbookBaseUrl"]["default"] == settings.DEFAULT_RUNBOOK_BASE_URL
    assert declared["packageDir"]["default"] == settings.DEFAULT_PACKAGE_DIR


def test_stage_changes_every_name_and_the_ssm_prefix() -> None:
    with config(stage="staging"):
        loaded = settings.load()
    assert loaded.prefix == "payhook-staging"
    assert loaded.function_name("event-processor") == "payhook-staging-event-processor"
    assert loaded.queue_name("stripe") == "payhook-staging-stripe.fifo"
    assert loaded.ssm_prefix == "/payhook/staging"


@pytest.mark.parametrize("stage", ["Prod", "prod_1", "", "a" * 21, "1prod"])
def test_invalid_stage_is_refused_with_the_key_name(stage: str) -> None:
    with config(stage=stage), pytest.raises(ConfigError, match="payhook:stage"):
        settings.load()


@pytest.mark.parametrize("count", ["0", "1001"])
def test_max_receive_count_out_of_sqs_range_is_refused(count: str) -> None:
    with config(maxReceiveCount=count), pytest.raises(ConfigError, match="maxReceiveCount"):
        settings.load()


@pytest.mark.parametrize("environment", ["Live", "production", ""])
def test_paypal_environment_is_live_or_sandbox(environment: str) -> None:
    with config(paypalEnvironment=environment), pytest.raises(ConfigError, match="paypalEnvironment"):
        settings.load()
    with config(paypalEnvironment="sandbox"):
        assert settings.load().paypal_environment == "sandbox"


@pytest.mark.parametrize("days", ["0", "3"])
def test_retention_shorter_than_the_providers_retries_is_refused(days: str) -> None:
    with config(idempotencyRetentionDays=days), pytest.raises(ConfigError, match="idempotencyRetentionDays"):
        settings.load()
    with config(idempotencyRetentionDays="4"):
        assert settings.load().idempotency_retention_days == 4


def test_package_paths_follow_package_dir_and_per_binary_overrides(tmp_path: Path) -> None:
    with config(packageDir=str(tmp_path), packages='{"event-processor": "dist/ep.zip"}'):
        loaded = settings.load()
    assert loaded.package_paths["webhook-validator"] == tmp_path / "webhook-validator" / "bootstrap.zip"
    assert loaded.package_paths["provider-processor"] == tmp_path / "provider-processor" / "bootstrap.zip"
    assert loaded.package_paths["event-processor"] == settings.REPO_ROOT / "dist" / "ep.zip"


def test_unknown_package_override_is_refused() -> None:
    with config(packages='{"webhook-validatr": "x.zip"}'), pytest.raises(ConfigError, match="webhook-validatr"):
        settings.load()


def test_unset_secrets_are_none_so_no_parameter_is_created() -> None:
    values = {k: v for k, v in CONFIG.items() if k not in SECRET_KEYS}
    pulumi.runtime.set_all_config(values, [])
    try:
        loaded = settings.load()
    finally:
        pulumi.runtime.set_all_config(CONFIG, SECRET_KEYS)
    assert loaded.secrets.stripe_signing_secrets is None
    assert loaded.secrets.paypal_webhook_id is None


def test_an_unknown_key_identity_source_is_refused_naming_the_choices() -> None:
    with config(apiKeyIdentitySource="header"), pytest.raises(ConfigError, match="'query'.*'either'"):
        settings.load()
