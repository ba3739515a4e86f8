"""EventBridge: the `payment-events` bus, its policy, its archive, and the rules from
`rules/*.json`.

Each target is a function with an input transformer that hands it the matched rule's name
alongside the full event, a retry policy and the target DLQ, all as the rule file says.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Sequence

import pulumi
import pulumi_aws as aws

from . import policies
from .components import Component
from .definitions import RuleDefinition
from .functions import Functions
from .queues import Queues
from .settings import PROVIDERS, Settings

#: The event processor records the matched rule from `rule`.
TARGET_INPUT_TEMPLATE = '{"rule": "<aws.events.rule-name>", "event": <aws.events.event.json>}'


@dataclasses.dataclass(frozen=True)
class DeployedRule:
    definition: RuleDefinition
    rule: aws.cloudwatch.EventRule
    targets: tuple[aws.cloudwatch.EventTarget, ...]


class Events(Component):
    """The bus is created first (the processors publish to it); `route` adds the archive, the
    rules with their targets, and the bus policy once the functions exist."""

    TYPE = "payhook:events:Events"

    def __init__(self, settings: Settings) -> None:
        super().__init__("events", settings)
        self.bus = aws.cloudwatch.EventBus(
            "payment-events",
            name=settings.event_bus_name,
            description="payhook: normalised payment events (PaymentEvent in detail)",
            opts=self.child(),
        )
        self.rules: list[DeployedRule] = []

    def route(
        self, rules: Sequence[RuleDefinition], functions: Functions, queues: Queues
    ) -> list[DeployedRule]:
        """The archive, the rules and their targets, and the bus policy."""
        self._admit_only_processors(functions)
        aws.cloudwatch.EventArchive(
            "payment-events-archive",
            # Archive names are at most 48 characters.
            name=f"{self.settings.prefix}-payment-events"[:48],
            description="Every payment event, for `aws events start-replay`",
            event_source_arn=self.bus.arn,
            retention_days=self.settings.archive_retention_days,
            opts=self.child(),
        )
        self.rules = [self._rule(d, functions, queues) for d in rules]
        if not self.rules:
            pulumi.log.warn("rules/ holds no rule files: nothing routes events to the event processor")
        self.register_outputs(
            {"event_bus_name": self.bus.name, "rule_names": [r.definition.name for r in self.rules]}
        )
        return self.rules

    def _admit_only_processors(self, functions: Functions) -> aws.cloudwatch.EventBusPolicy:
        return aws.cloudwatch.EventBusPolicy(
            "payment-events-policy",
            event_bus_name=self.bus.name,
            policy=pulumi.Output.all(
                self.bus.arn, *(functions.processor(p).role.arn for p in PROVIDERS)
            ).apply(
                lambda a: json.dumps(
                    policies.event_bus_policy(event_bus_arn=a[0], publisher_role_arns=a[1:])
                )
            ),
            opts=self.child(),
        )

    def _rule(
        self, definition: RuleDefinition, functions: Functions, queues: Queues
    ) -> DeployedRule:
        rule = aws.cloudwatch.EventRule(
            f"rule-{definition.name}",
            name=definition.name,
            description=definition.description,
            event_bus_name=self.bus.name,
            event_pattern=json.dumps(definition.event_pattern),
            state=definition.state,
            opts=self.child(),
        )
        targets = []
        for target in definition.targets:
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
                    event_bus_name=self.bus.name,
                    target_id=target.id,
                    arn=functions[target.function].function.arn,
                    input_transformer={"input_template": TARGET_INPUT_TEMPLATE},
                    retry_policy=retry_policy,
                    dead_letter_config=dead_letter_config,
                    opts=self.child(),
                )
            )
        for function_name in sorted({t.function for t in definition.targets}):
            aws.lambda_.Permission(
                f"rule-{definition.name}-invokes-{function_name}",
                action="lambda:InvokeFunction",
                function=functions[function_name].function.name,
                principal="events.amazonaws.com",
                source_arn=rule.arn,
                opts=self.child(),
            )
        return DeployedRule(definition, rule, tuple(targets))
