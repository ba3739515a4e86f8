"""DynamoDB status table and the SSM SecureString parameters."""

from __future__ import annotations

from mocks import api_key_value

from rust_source import ssm_parameter_root

SECRET_SIG = "4dabf18193072939515e22adb298388d"


def test_status_table(deployment) -> None:
    (table,) = deployment.of_type("aws:dynamodb/table:Table")
    assert table.inputs["name"] == "webhook-processing"
    assert table.inputs["hashKey"] == "webhook_id"
    assert table.inputs["attributes"] == [{"name": "webhook_id", "type": "S"}]
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
