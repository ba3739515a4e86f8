"""Monitoring: SNS topic, every alarm from alarms/ per resource wired to it, the dashboard."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from conftest import CONFIG, REPO_ROOT
from payhook_infra import definitions

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:payhook-prod-alarms"
FUNCTIONS = ["webhook-validator", "stripe-processor", "paypal-processor", "square-processor", "event-processor"]
PROVIDERS = ["stripe", "paypal", "square"]
RULES = [r.name for r in definitions.load_rules(REPO_ROOT / "rules")]


def _alarms(deployment) -> dict[str, dict]:
    return {a.inputs["name"]: a.inputs for a in deployment.of_type(ALARM)}


def _kind(deployment, kind: str) -> dict[str, dict]:
    return {
        name: inputs
        for name, inputs in _alarms(deployment).items()
        if inputs["tags"]["runbook"] == f"{kind}.md"
    }


def _query(alarm: dict, query_id: str) -> dict:
    (query,) = [q for q in alarm["metricQueries"] if q["id"] == query_id]
    return query


def test_one_topic_with_the_configured_email_subscription(deployment) -> None:
    (topic,) = deployment.of_type("aws:sns/topic:Topic")
    assert topic.outputs["arn"] == TOPIC_ARN
    (subscription,) = deployment.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.inputs == {
        "topic": TOPIC_ARN,
        "protocol": "email",
        "endpoint": CONFIG["payhook:alarmEmail"],
    }


def test_every_alarm_notifies_the_topic_on_alarm_and_on_ok(deployment) -> None:
    alarms = _alarms(deployment)
    assert len(alarms) == len(deployment.of_type(ALARM)), "alarm names are unique"
    for name, alarm in alarms.items():
        assert alarm["actionsEnabled"] is True, name
        assert alarm["alarmActions"] == [TOPIC_ARN], name
        assert alarm["okActions"] == [TOPIC_ARN], name


def test_every_alarm_description_links_its_runbook_within_1024_characters(deployment) -> None:
    base = CONFIG["payhook:runbookBaseUrl"]
    for name, alarm in _alarms(deployment).items():
        description = alarm["alarmDescription"]
        assert len(description) <= 1024, name
        runbook = alarm["tags"]["runbook"]
        assert description.endswith(f" Runbook: {base}/runbooks/{runbook}"), name
        assert (REPO_ROOT / "runbooks" / runbook).is_file(), name
        assert "${" not in description, name


def test_alarm_counts_per_resource(deployment) -> None:
    counts = Counter(a["tags"]["runbook"].removesuffix(".md") for a in _alarms(deployment).values())
    assert counts == {
        "queue-depth": 3,  # one per provider queue
        "queue-age": 3,
        "dlq-not-empty": 4,  # three provider DLQs and the events DLQ
        "lambda-error-rate": 6,  # one per function
        "lambda-throttles": 6,
        "emf-errors": 6,
        "signature-failures": 3,  # one per provider
        "unrated-payments": 3,
        "webhooks-quarantined": 3,
        "stuck-webhooks": 3,
        "api-5xx-rate": 1,
        "api-4xx-rate": 1,
        "api-quota-exceeded": 1,
        "eventbridge-failed-invocations": len(RULES),  # one per rule
    }


@pytest.mark.parametrize("provider", PROVIDERS)
def test_queue_depth_alarm_fires_above_1000_visible_messages(deployment, provider) -> None:
    alarm = _alarms(deployment)[f"payhook-prod-queue-depth-{provider}"]
    assert alarm["namespace"] == "AWS/SQS"
    assert alarm["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["dimensions"] == {"QueueName": f"payhook-prod-{provider}.fifo"}
    assert alarm["threshold"] == 1000
    assert alarm["comparisonOperator"] == "GreaterThanThreshold"
    assert alarm["statistic"] == "Maximum"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_queue_age_alarm_watches_the_oldest_message(deployment, provider) -> None:
    alarm = _alarms(deployment)[f"payhook-prod-queue-age-{provider}"]
    assert alarm["metricName"] == "ApproximateAgeOfOldestMessage"
    assert alarm["dimensions"] == {"QueueName": f"payhook-prod-{provider}.fifo"}


@pytest.mark.parametrize("dlq", [*PROVIDERS, "events"])
def test_dlq_alarm_fires_on_one_message(deployment, dlq) -> None:
    alarm = _alarms(deployment)[f"payhook-prod-dlq-not-empty-{dlq}"]
    queue = "payhook-prod-events-dlq" if dlq == "events" else f"payhook-prod-{dlq}-dlq.fifo"
    assert alarm["dimensions"] == {"QueueName": queue}
    assert alarm["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["threshold"] == 1
    assert alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_lambda_error_rate_alarm_is_above_one_percent_without_dividing_by_zero(deployment, logical) -> None:
    alarm = _alarms(deployment)[f"payhook-prod-lambda-error-rate-{logical}"]
    assert alarm["threshold"] == 1
    assert alarm["comparisonOperator"] == "GreaterThanThreshold"
    for query_id, metric in (("errors", "Errors"), ("invocations", "Invocations")):
        query = _query(alarm, query_id)
        assert query["metric"]["metricName"] == metric
        assert query["metric"]["dimensions"] == {"FunctionName": f"payhook-prod-{logical}"}
        assert query["returnData"] is False
    (returned,) = [q for q in alarm["metricQueries"] if q["returnData"]]
    assert returned["expression"] == (
        "IF(FILL(invocations, 0) > 0, 100 * FILL(errors, 0) / FILL(invocations, 0), 0)"
    )


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_throttle_and_emf_alarms_per_function(deployment, logical) -> None:
    alarms = _alarms(deployment)
    throttles = alarms[f"payhook-prod-lambda-throttles-{logical}"]
    assert throttles["metricName"] == "Throttles"
    assert throttles["dimensions"] == {"FunctionName": f"payhook-prod-{logical}"}
    emf = alarms[f"payhook-prod-emf-errors-{logical}"]
    for query_id, metric in (("parsing", "EMFParsingErrors"), ("validation", "EMFValidationErrors")):
        query = _query(emf, query_id)
        assert query["metric"]["namespace"] == "AWS/Logs"
        assert query["metric"]["metricName"] == metric
        assert query["metric"]["dimensions"] == {"LogGroupName": f"/aws/lambda/payhook-prod-{logical}"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_signature_failure_alarm_per_provider_uses_the_validators_metric(deployment, provider) -> None:
    alarm = _alarms(deployment)[f"payhook-prod-signature-failures-{provider}"]
    assert alarm["namespace"] == "Payhook"
    assert alarm["metricName"] == "SignatureFailures"
    assert alarm["dimensions"] == {"service": "webhook-validator", "provider": provider}


def test_api_5xx_rate_alarm(deployment) -> None:
    alarm = _alarms(deployment)["payhook-prod-api-5xx-rate"]
    for query_id in ("server_errors", "requests"):
        assert _query(alarm, query_id)["metric"]["dimensions"] == {
            "ApiName": "payhook-prod-webhooks",
            "Stage": "prod",
        }
    assert _query(alarm, "server_errors")["metric"]["metricName"] == "5XXError"
    assert _query(alarm, "server_error_rate")["expression"].startswith("IF(FILL(requests, 0) >= ")


@pytest.mark.parametrize("rule", RULES)
def test_eventbridge_failed_invocations_alarm_per_rule(deployment, rule) -> None:
    alarm = _alarms(deployment)[f"payhook-prod-eventbridge-failed-invocations-{rule}"]
    query = _query(alarm, "failed")
    assert query["metric"]["namespace"] == "AWS/Events"
    assert query["metric"]["metricName"] == "FailedInvocations"
    assert query["metric"]["dimensions"] == {"EventBusName": "payment-events", "RuleName": rule}


# -- dashboard -------------------------------------------------------------------------------


def _dashboard(deployment) -> tuple[str, dict]:
    (dashboard,) = deployment.of_type("aws:cloudwatch/dashboard:Dashboard")
    return dashboard.inputs["dashboardName"], json.loads(dashboard.inputs["dashboardBody"])


def test_dashboard_is_created_from_the_file_with_every_placeholder_filled(deployment) -> None:
    name, body = _dashboard(deployment)
    assert name == "payhook-prod-payments"
    text = json.dumps(body)
    assert "${" not in text
    source = json.loads((REPO_ROOT / "dashboards" / "payments.json").read_text())
    assert len(body["widgets"]) == len(source["widgets"])
    for widget in body["widgets"]:
        if widget["type"] in ("metric", "log"):
            assert widget["properties"]["region"] == "us-east-1"


def test_dashboard_alarm_widget_lists_every_alarm(deployment) -> None:
    _, body = _dashboard(deployment)
    (widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    arns = sorted(a.outputs["arn"] for a in deployment.of_type(ALARM))
    assert widget["properties"]["alarms"] == arns
    assert len(arns) <= 100


def test_dashboard_names_the_deployed_resources(deployment) -> None:
    _, body = _dashboard(deployment)
    dimension_values = {
        value
        for widget in body["widgets"]
        for entry in widget["properties"].get("metrics", [])
        for value in entry
        if isinstance(value, str)
    }
    for provider in PROVIDERS:
        assert f"payhook-prod-{provider}.fifo" in dimension_values
        assert f"payhook-prod-{provider}-dlq.fifo" in dimension_values
    assert "payhook-prod-events-dlq" in dimension_values
    for logical in FUNCTIONS:
        assert f"payhook-prod-{logical}" in dimension_values
    assert {"payhook-prod-webhooks", "webhook-processing"} <= dimension_values
    logs = [w for w in body["widgets"] if w["type"] == "log"]
    queries = "\n".join(w["properties"]["query"] for w in logs)
    for logical in FUNCTIONS:
        assert f"SOURCE '/aws/lambda/payhook-prod-{logical}'" in queries
