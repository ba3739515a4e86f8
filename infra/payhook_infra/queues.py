"""SQS: one FIFO queue and FIFO DLQ per provider, the EventBridge target DLQ, and the queue
policies that admit only the pipeline's own roles."""

from __future__ import annotations

import dataclasses
import json
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_aws as aws

from . import policies
from .components import Component
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


class Queues(Component):
    """Each provider's queue and DLQ, and the events DLQ (EventBridge target DLQ and the event
    processor's asynchronous failures). The DLQs are protected (`protectData`): dead letters are
    payments nobody has processed yet."""

    TYPE = "payhook:queues:Queues"

    def __init__(self, settings: Settings) -> None:
        super().__init__("queues", settings)
        self.events_dlq = aws.sqs.Queue(
            "events-dlq",
            name=settings.events_dlq_name,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=self.child(protect=settings.protect_data),
        )
        self.by_provider = {p: self._provider_queues(p) for p in PROVIDERS}
        self.register_outputs(
            {
                "queue_urls": {p: q.queue.url for p, q in self.by_provider.items()},
                "events_dlq_url": self.events_dlq.url,
            }
        )

    def dlqs(self) -> list[aws.sqs.Queue]:
        """Every dead-letter queue: each provider's and the events DLQ."""
        return [*(q.dlq for q in self.by_provider.values()), self.events_dlq]

    def _provider_queues(self, provider: str) -> ProviderQueues:
        settings = self.settings
        dlq = aws.sqs.Queue(
            f"{provider}-dlq",
            name=settings.dlq_name(provider),
            fifo_queue=True,
            content_based_deduplication=True,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=self.child(protect=settings.protect_data),
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
            opts=self.child(),
        )
        # Only this provider's queue may use the DLQ, and `payhook dlq redrive` (or SQS's
        # StartMessageMoveTask) moves messages back to it.
        aws.sqs.RedriveAllowPolicy(
            f"{provider}-dlq-redrive-allow",
            queue_url=dlq.url,
            redrive_allow_policy=queue.arn.apply(
                lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
            ),
            opts=self.child(),
        )
        return ProviderQueues(provider, queue, dlq)

    def admit_only_pipeline_roles(
        self,
        *,
        validator_role: aws.iam.Role,
        processor_roles: Mapping[str, aws.iam.Role],
        event_processor_role: aws.iam.Role,
        rule_arns: Sequence[pulumi.Output[str]],
        sweeper_role: Optional[aws.iam.Role] = None,
    ) -> list[aws.sqs.QueuePolicy]:
        """The queue policies (see `policies.provider_queue_policy` and its neighbours): no
        other principal of the account can put a "verified" webhook on a queue, take one off,
        or slip one into a DLQ to be redriven."""
        redrive = list(self.settings.redrive_principal_arns)
        created = []
        for provider, queues in self.by_provider.items():
            processor = processor_roles[provider]
            created.append(
                aws.sqs.QueuePolicy(
                    f"{provider}-queue-policy",
                    queue_url=queues.queue.url,
                    policy=pulumi.Output.all(
                        queues.queue.arn,
                        validator_role.arn,
                        processor.arn,
                        sweeper_role.arn if sweeper_role else None,
                    ).apply(
                        lambda a: json.dumps(
                            policies.provider_queue_policy(
                                queue_arn=a[0],
                                validator_role_arn=a[1],
                                processor_role_arn=a[2],
                                redrive_arns=redrive,
                                sweeper_role_arn=a[3],
                            )
                        )
                    ),
                    opts=self.child(),
                )
            )
            created.append(
                aws.sqs.QueuePolicy(
                    f"{provider}-dlq-policy",
                    queue_url=queues.dlq.url,
                    policy=pulumi.Output.all(queues.dlq.arn, processor.arn).apply(
                        lambda a: json.dumps(
                            policies.provider_dlq_policy(
                                dlq_arn=a[0], processor_role_arn=a[1], redrive_arns=redrive
                            )
                        )
                    ),
                    opts=self.child(),
                )
            )
        created.append(
            aws.sqs.QueuePolicy(
                "events-dlq-policy",
                queue_url=self.events_dlq.url,
                policy=pulumi.Output.all(
                    self.events_dlq.arn, event_processor_role.arn, *rule_arns
                ).apply(
                    lambda a: json.dumps(
                        policies.events_dlq_queue_policy(
                            a[0],
                            a[2:],
                            event_processor_role_arn=a[1],
                            redrive_arns=redrive,
                        )
                    )
                ),
                opts=self.child(),
            )
        )
        return created
