"""Stack outputs, the Pulumi project file and the pinned requirements."""

from __future__ import annotations

import re

import yaml

from conftest import INFRA_DIR
from payhook_infra.settings import PROVIDERS
from mocks import REST_API_ID, api_key_id, api_key_value


def test_webhook_endpoint_keeps_the_provider_placeholder(deployment) -> None:
    assert deployment.outputs["webhook_endpoint"] == (
        f"https://{REST_API_ID}.execute-api.us-east-1.amazonaws.com/prod/webhooks/{{provider}}"
    )


def test_outputs_for_registering_and_operating_the_stack(deployment) -> None:
    outputs = deployment.outputs
    assert outputs["api_key_ids"] == {p: api_key_id(f"{p}-api-key") for p in PROVIDERS}
    assert outputs["dashboard_name"] == "payhook-prod-payments"
    assert outputs["alarm_topic_arn"] == "arn:aws:sns:us-east-1:123456789012:payhook-prod-alarms"
    assert outputs["queue_urls"] == {
        p: f"https://sqs.us-east-1.amazonaws.com/123456789012/payhook-prod-{p}.fifo"
        for p in ("stripe", "paypal", "square")
    }
    assert set(outputs["dlq_urls"]) == {"stripe", "paypal", "square", "events"}
    assert outputs["table_name"] == "webhook-processing"
    assert outputs["event_bus_name"] == "payment-events"


def test_each_provider_registers_its_full_url_with_its_own_key(deployment) -> None:
    endpoint = f"https://{REST_API_ID}.execute-api.us-east-1.amazonaws.com/prod/webhooks"
    assert deployment.outputs["webhook_urls"] == {
        p: f"{endpoint}/{p}?key={api_key_value(f'{p}-api-key')}" for p in PROVIDERS
    }
    assert "webhook_urls" in deployment.secret_outputs, "the URLs hold the keys: a Pulumi secret"


def test_project_file_names_the_project_and_defaults_to_us_east_1() -> None:
    project = yaml.safe_load((INFRA_DIR / "Pulumi.yaml").read_text())
    assert project["name"] == "payhook"
    assert project["runtime"]["name"] == "python"
    assert project["config"]["aws:region"]["value"] == "us-east-1"


def test_requirements_are_pinned_exactly() -> None:
    lines = [
        line.strip()
        for line in (INFRA_DIR / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    names = {re.split(r"[=<>\[]", line)[0].lower().replace("_", "-") for line in lines}
    assert {"pulumi", "pulumi-aws", "pytest"} <= names
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][A-Za-z0-9.]*", line) for line in lines), lines
