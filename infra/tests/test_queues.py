"""SQS: FIFO queue and FIFO DLQ per provider, redrive, and the processors' event sources."""

from __future__ import annotations

import json

import pytest

from payhook_infra.settings import LAMBDA_TIMEOUT_SECONDS

PROVIDERS = ["stripe", "paypal", "square"]
QUEUE = "aws:sqs/queue:Queue"
FOURTEEN_DAYS = 14 * 24 * 3600


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_queue_is_fifo_with_content_based_deduplication(deployment, provider) -> None:
    queue = deployment.by_input(QUEUE, "name", f"payhook-prod-{provider}.fifo")
    assert queue.inputs["fifoQueue"] is True
    assert queue.inputs["contentBasedDeduplication"] is True
    assert queue.inputs["visibilityTimeoutSeconds"] >= 6 * LAMBDA_TIMEOUT_SECONDS
    assert queue.inputs["visibilityTimeoutSeconds"] == 1800


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_dlq_is_fifo_and_keeps_messages_fourteen_days(deployment, provider) -> None:
    dlq = deployment.by_input(QUEUE, "name", f"payhook-prod-{provider}-dlq.fifo")
    assert dlq.inputs["fifoQueue"] is True
    assert dlq.inputs["messageRetentionSeconds"] == FOURTEEN_DAYS == 1209600


@pytest.mark.parametrize("provider", PROVIDERS)
def test_queue_redrives_to_its_own_dlq_after_five_receives(deployment, provider) -> None:
    queue = deployment.by_input(QUEUE, "name", f"payhook-prod-{provider}.fifo")
    dlq = deployment.by_input(QUEUE, "name", f"payhook-prod-{provider}-dlq.fifo")
    assert json.loads(queue.inputs["redrivePolicy"]) == {
        "deadLetterTargetArn": dlq.outputs["arn"],
        "maxReceiveCount": 5,
    }
    allow = deployment.by_input(
        "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy", "queueUrl", dlq.outputs["url"]
    )
    assert json.loads(allow.inputs["redriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [queue.outputs["arn"]],
    }


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_queue_feeds_only_its_own_processor_with_partial_batch_responses(deployment, provider) -> None:
    queue = deployment.by_input(QUEUE, "name", f"payhook-prod-{provider}.fifo")
    mapping = deployment.by_input(
        "aws:lambda/eventSourceMapping:EventSourceMapping", "eventSourceArn", queue.outputs["arn"]
    )
    processor = deployment.one("aws:lambda/function:Function", f"{provider}-processor")
    assert mapping.inputs["functionName"] == processor.outputs["arn"]
    assert mapping.inputs["batchSize"] == 10
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]


def test_three_event_source_mappings_and_seven_queues(deployment) -> None:
    assert len(deployment.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")) == 3
    assert len(deployment.of_type(QUEUE)) == 7  # 3 queues, 3 FIFO DLQs, the events DLQ


def test_events_dlq_is_a_standard_queue_only_this_stacks_rules_can_write_to(deployment) -> None:
    dlq = deployment.by_input(QUEUE, "name", "payhook-prod-events-dlq")
    assert not dlq.inputs.get("fifoQueue")
    assert dlq.inputs["messageRetentionSeconds"] == FOURTEEN_DAYS
    policy = deployment.by_input("aws:sqs/queuePolicy:QueuePolicy", "queueUrl", dlq.outputs["url"])
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    statement = statements["EventBridgeTargetDeadLetters"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == dlq.outputs["arn"]
    rule_arns = sorted(
        r.outputs["arn"]
        for r in deployment.of_type("aws:cloudwatch/eventRule:EventRule")
        if r.inputs.get("eventBusName") == "payment-events"
    )
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arns}}
