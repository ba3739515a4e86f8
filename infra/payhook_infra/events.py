"""EventBridge: the `payment-events` bus, its archive, and the rules from `rules/*.json`.

Each target is a function with an input transformer that hands it the matched rule's name
alongside the full event, a retry policy and the target DLQ, all as the rule file says.
"""

from __future__ import annotations

import dataclasses
import json

import pulumi
import pulumi_aws as aws

from . import policies
from .definitions import RuleDefinition
from .functions import DeployedFunction
from .queues import Queues
from .settings import Settings

#: The event processor records the matched rule from `rule`.
TARGET_INPUT_TEMPLATE = '{"rule": "<aws.events.rule-name>", "event": <aws.events.event.json>}'


@dataclasses.dataclass(frozen=True)
class DeployedRule:
    definition: RuleDefinition
    rule: aws.cloudwatch.EventRule
    targets: tuple[aws.cloudwatch.EventTarget, ...]


def create_bus(settings: Settings) -> aws.cloudwatch.EventBus:
    return aws.cloudwatch.EventBus(
        "payment-events",
        name=settings.event_bus_name,
        description="payhook: normalised payment events (PaymentEvent in detail)",
        tags=settings.tags,
    )


def create_routing(
    settings: Settings,
    bus: aws.cloudwatch.EventBus,
    rules: list[RuleDefinition],
    functions: dict[str, DeployedFunction],
    queues: Queues,
) -> list[DeployedRule]:
    aws.cloudwatch.EventArchive(
        "payment-events-archive",
        # Archive names are at most 48 characters.
        name=f"{settings.prefix}-payment-events"[:48],
        description="Every payment event, for `aws events start-replay`",
        event_source_arn=bus.arn,
        retention_days=settings.archive_retention_days,
    )

    deployed: list[DeployedRule] = []
    for definition in rules:
        rule = aws.cloudwatch.EventRule(
            f"rule-{definition.name}",
            name=definition.name,
            description=definition.description,
            event_bus_name=bus.name,
            event_pattern=json.dumps(definition.event_pattern),
            state=definition.state,
            tags=settings.tags,
        )
        targets = []
        for target in definition.targets:
            function = functions[target.function]
            retry_policy = None
            if target.maximum_retry_attempts is not None:
                retry_policy = {
                    "maximum_retry_attempts": target.maximum_retry_attempts,
                    "maximum_event_age_in_seconds": target.maximum_event_age_seconds,
                }
            dead_letter_config = None
            if target.dead_letter_queue is not None:
                dead_letter_config = {"arn": queues.events_dlq.arn}
            targets.append(
                aws.cloudwatch.EventTarget(
                    f"rule-{definition.name}-{target.id}",
                    rule=rule.name,
                    event_bus_name=bus.name,
                    target_id=target.id,
                    arn=function.function.arn,
                    input_transformer={"input_template": TARGET_INPUT_TEMPLATE},
                    retry_policy=retry_policy,
                    dead_letter_config=dead_letter_config,
                )
            )
        for function_name in sorted({t.function for t in definition.targets}):
            aws.lambda_.Permission(
                f"rule-{definition.name}-invokes-{function_name}",
                action="lambda:InvokeFunction",
                function=functions[function_name].function.name,
                principal="events.amazonaws.com",
                source_arn=rule.arn,
            )
        deployed.append(DeployedRule(definition, rule, tuple(targets)))

    if not deployed:
        pulumi.log.warn("rules/ holds no rule files: nothing routes events to the event processor")
        return deployed
    aws.sqs.QueuePolicy(
        "events-dlq-policy",
        queue_url=queues.events_dlq.url,
        policy=pulumi.Output.all(queues.events_dlq.arn, *(d.rule.arn for d in deployed)).apply(
            lambda arns: json.dumps(policies.events_dlq_queue_policy(arns[0], arns[1:]))
        ),
    )
    return deployed
