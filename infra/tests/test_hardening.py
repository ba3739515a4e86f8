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
        ["webhook-processing", "stripe-dlq", "paypal-dlq", "square-dlq", "events-dlq"]
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
