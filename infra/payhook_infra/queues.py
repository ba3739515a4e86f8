"""SQS: one FIFO queue and FIFO DLQ per provider, and the EventBridge target DLQ."""

from __future__ import annotations

import dataclasses
import json

import pulumi
import pulumi_aws as aws

from .settings import (
    DLQ_RETENTION_SECONDS,
    PROVIDERS,
    QUEUE_RETENTION_SECONDS,
    VISIBILITY_TIMEOUT_SECONDS,
    Settings,
)


@dataclasses.dataclass(frozen=True)
class ProviderQueues:
    provider: str
    queue: aws.sqs.Queue
    dlq: aws.sqs.Queue


@dataclasses.dataclass(frozen=True)
class Queues:
    by_provider: dict[str, ProviderQueues]
    #: Standard queue: EventBridge target DLQ and event-processor async failures.
    events_dlq: aws.sqs.Queue

    def dlqs(self) -> list[aws.sqs.Queue]:
        """Every dead-letter queue: each provider's and the events DLQ."""
        return [*(q.dlq for q in self.by_provider.values()), self.events_dlq]


def _provider_queues(settings: Settings, provider: str) -> ProviderQueues:
    dlq = aws.sqs.Queue(
        f"{provider}-dlq",
        name=settings.dlq_name(provider),
        fifo_queue=True,
        content_based_deduplication=True,
        message_retention_seconds=DLQ_RETENTION_SECONDS,
        visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS,
        sqs_managed_sse_enabled=True,
        tags=settings.tags,
        # Dead letters are payments nobody has processed yet (`protectData`).
        opts=pulumi.ResourceOptions(protect=settings.protect_data),
    )
    queue = aws.sqs.Queue(
        f"{provider}-queue",
        name=settings.queue_name(provider),
        fifo_queue=True,
        content_based_deduplication=True,
        visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS,
        message_retention_seconds=QUEUE_RETENTION_SECONDS,
        sqs_managed_sse_enabled=True,
        redrive_policy=dlq.arn.apply(
            lambda arn: json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": settings.max_receive_count}
            )
        ),
        tags=settings.tags,
    )
    # Only this provider's queue may use the DLQ, and `payhook dlq redrive` (or SQS's
    # StartMessageMoveTask) moves messages back to it.
    aws.sqs.RedriveAllowPolicy(
        f"{provider}-dlq-redrive-allow",
        queue_url=dlq.url,
        redrive_allow_policy=queue.arn.apply(
            lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
        ),
    )
    return ProviderQueues(provider, queue, dlq)


def create(settings: Settings) -> Queues:
    events_dlq = aws.sqs.Queue(
        "events-dlq",
        name=settings.events_dlq_name,
        message_retention_seconds=DLQ_RETENTION_SECONDS,
        sqs_managed_sse_enabled=True,
        tags=settings.tags,
        opts=pulumi.ResourceOptions(protect=settings.protect_data),
    )
    return Queues(
        by_provider={p: _provider_queues(settings, p) for p in PROVIDERS},
        events_dlq=events_dlq,
    )


def urls(queues: Queues) -> dict[str, pulumi.Output[str]]:
    return {p: q.queue.url for p, q in queues.by_provider.items()}
