"""Hardening: concurrency, protection, encryption, the custom domain and the settings' guards."""

from __future__ import annotations

import json

import pytest

from conftest import run_program
from payhook_infra import settings
from payhook_infra.settings import ConfigError
from test_settings import config


def test_each_queue_is_drained_by_at_most_five_concurrent_processors(deployment) -> None:
    mappings = deployment.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert len(mappings) == 3
    for mapping in mappings:
        assert mapping.inputs["scalingConfig"] == {"maximumConcurrency": 5}


def test_the_validator_has_concurrency_of_its_own_and_no_other_function_reserves_any(deployment) -> None:
    for function in deployment.of_type("aws:lambda/function:Function"):
        expected = 20 if function.name == "webhook-validator" else -1
        assert function.inputs["reservedConcurrentExecutions"] == expected, function.name


def test_the_status_table_and_every_dlq_are_protected(deployment) -> None:
    names = sorted(r._name for r in deployment.stack.protected)
    assert names == sorted(
        ["webhook-processing", "quarantine", "stripe-dlq", "paypal-dlq", "square-dlq", "events-dlq"]
    )
    assert all(r._protect for r in deployment.stack.protected)


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(deployment) -> None:
    key = deployment.one("aws:kms/key:Key", "alarms-topic-key")
    topic = deployment.one("aws:sns/topic:Topic", "alarms-topic")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    assert statements["CloudWatchAlarmsPublish"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statements["AccountAdministers"]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}


def test_a_custom_domain_carries_the_urls_providers_register() -> None:
    custom = run_program(
        customDomain="hooks.example.com",
        customDomainCertificateArn="arn:aws:acm:us-east-1:123456789012:certificate/abc",
    )
    domain = custom.one("aws:apigateway/domainName:DomainName", "webhooks-domain")
    assert domain.inputs["domainName"] == "hooks.example.com"
    assert domain.inputs["endpointConfiguration"] == {"types": "REGIONAL"}
    mapping = custom.one("aws:apigateway/basePathMapping:BasePathMapping", "webhooks-domain-mapping")
    assert mapping.inputs["stageName"] == "prod"
    assert custom.outputs["webhook_endpoint"] == "https://hooks.example.com/webhooks/{provider}"
    assert custom.outputs["webhook_urls"]["stripe"].startswith("https://hooks.example.com/webhooks/stripe?key=")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"customDomain": "hooks.example.com"}, "customDomainCertificateArn"),
        ({"validatorReservedConcurrency": "0"}, "stop the validator"),
        ({"processorMaxConcurrency": "1"}, "2 to 1000"),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_key(overrides, message) -> None:
    with config(**overrides), pytest.raises(ConfigError, match=message):
        settings.load()


def test_the_placeholder_runbook_url_is_warned_about(monkeypatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(settings.pulumi.log, "warn", lambda message, *a, **k: warnings.append(message))
    with config(runbookBaseUrl=settings.DEFAULT_RUNBOOK_BASE_URL):
        settings.load()
    assert any("runbookBaseUrl" in w and "dead" in w for w in warnings)
    warnings.clear()
    settings.load()
    assert not warnings


@pytest.fixture(scope="module")
def configured():
    """The program with every tunable setting away from its default."""
    return run_program(
        stage="staging",
        tableName="payhook-staging-status",
        eventBusName="payhook-staging-events",
        maxReceiveCount="3",
        tableDeletionProtection="false",
        protectData="false",
        archiveRetentionDays="0",
        paypalEnvironment="sandbox",
        stripeRequireLivemode="true",
        idempotencyRetentionDays="7",
        apiQuotaPerDay="500",
        apiRateLimit="7",
        apiBurstLimit="9",
        processorMaxConcurrency="11",
        validatorReservedConcurrency="-1",
    )


def _function(deployment, logical: str) -> dict:
    return deployment.one("aws:lambda/function:Function", logical).inputs


def test_each_setting_reaches_the_resources_it_configures(configured) -> None:
    table = configured.one("aws:dynamodb/table:Table", "webhook-processing").inputs
    assert table["name"] == "payhook-staging-status"
    assert table["deletionProtectionEnabled"] is False
    bus = configured.one("aws:cloudwatch/eventBus:EventBus", "payment-events").inputs
    assert bus["name"] == "payhook-staging-events"
    archive = configured.one("aws:cloudwatch/eventArchive:EventArchive", "payment-events-archive")
    assert archive.inputs["retentionDays"] == 0
    queue = configured.by_input("aws:sqs/queue:Queue", "name", "payhook-staging-stripe.fifo")
    assert json.loads(queue.inputs["redrivePolicy"])["maxReceiveCount"] == 3

    validator = _function(configured, "webhook-validator")
    env = validator["environment"]["variables"]
    assert validator["reservedConcurrentExecutions"] == -1
    assert env["STATUS_TABLE"] == "payhook-staging-status"
    assert env["PAYHOOK_STAGE"] == "staging"
    assert env["PAYPAL_ENVIRONMENT"] == "sandbox"
    assert env["STRIPE_REQUIRE_LIVEMODE"] == "true"
    assert env["IDEMPOTENCY_RETENTION_SECONDS"] == str(7 * 86_400)
    processor = _function(configured, "paypal-processor")["environment"]["variables"]
    assert processor["EVENT_BUS_NAME"] == "payhook-staging-events"
    assert processor["MAX_RECEIVE_COUNT"] == "3"
    for mapping in configured.of_type("aws:lambda/eventSourceMapping:EventSourceMapping"):
        assert mapping.inputs["scalingConfig"] == {"maximumConcurrency": 11}

    plan = configured.one("aws:apigateway/usagePlan:UsagePlan", "webhooks-usage-plan").inputs
    assert plan["quotaSettings"] == {"limit": 500, "period": "DAY"}
    assert plan["throttleSettings"] == {"rateLimit": 7, "burstLimit": 9}
    method = configured.one("aws:apigateway/methodSettings:MethodSettings", "webhooks-stage-settings")
    assert method.inputs["settings"]["throttlingRateLimit"] == 7
    assert method.inputs["settings"]["throttlingBurstLimit"] == 9


def test_protect_data_false_lets_destroy_remove_the_table_and_the_dlqs(configured) -> None:
    assert configured.stack.protected
    assert not any(r._protect for r in configured.stack.protected)
    assert not any(r.opts.protect for r in configured.registrations)
