"""Monitoring: the SNS topic, the alarms from `alarms/*.json` per resource, and the
dashboards from `dashboards/*.json` with their placeholders filled."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Sequence

import pulumi
import pulumi_aws as aws

from . import placeholders
from .components import Component
from .definitions import AlarmKind, DashboardDefinition, DefinitionError, render_alarm
from .functions import AccountContext
from .settings import FUNCTIONS, PROVIDERS, Settings, processor_for

#: An alarm status widget shows at most 100 alarms.
MAX_ALARMS_PER_WIDGET = 100


@dataclasses.dataclass(frozen=True)
class AlarmInstance:
    """One alarm kind applied to one resource: its name suffix and placeholder values."""

    key: str
    values: dict[str, str]


def global_values(settings: Settings) -> dict[str, str]:
    """Placeholders every alarm may use."""
    return {
        "region": settings.region,
        "stage": settings.stage,
        "prefix": settings.prefix,
        "api_name": settings.api_name,
        "table_name": settings.table_name,
        "event_bus_name": settings.event_bus_name,
    }


def scope_instances(
    settings: Settings, scope: str, rule_names: Sequence[str]
) -> list[AlarmInstance]:
    """The resources an alarm of `scope` is applied to (see alarms/README.md)."""
    if scope == "queue":
        return [
            AlarmInstance(
                p,
                {
                    "provider": p,
                    "queue_name": settings.queue_name(p),
                    "dlq_name": settings.dlq_name(p),
                    "function_name": settings.function_name(processor_for(p).name),
                    "service": processor_for(p).name,
                },
            )
            for p in PROVIDERS
        ]
    if scope == "dlq":
        provider_dlqs = [
            AlarmInstance(
                p,
                {"dlq": p, "queue_name": settings.dlq_name(p), "source": settings.queue_name(p)},
            )
            for p in PROVIDERS
        ]
        events = AlarmInstance(
            "events",
            {
                "dlq": "events",
                "queue_name": settings.events_dlq_name,
                "source": "EventBridge rule targets and event-processor",
            },
        )
        return [*provider_dlqs, events]
    if scope == "function":
        return [
            AlarmInstance(
                f.name,
                {
                    "function_name": settings.function_name(f.name),
                    "service": f.name,
                    "log_group_name": settings.log_group_name(f.name),
                },
            )
            for f in FUNCTIONS
        ]
    if scope == "rule":
        return [AlarmInstance(r, {"rule_name": r}) for r in rule_names]
    if scope == "provider":
        return [
            AlarmInstance(
                p,
                {
                    "provider": p,
                    "function_name": settings.function_name("webhook-validator"),
                    "service": "webhook-validator",
                },
            )
            for p in PROVIDERS
        ]
    if scope == "api":
        return [AlarmInstance("", {})]
    raise DefinitionError(f"unknown alarm scope {scope!r}")


def alarm_name(settings: Settings, kind: str, key: str) -> str:
    return f"{settings.prefix}-{kind}-{key}" if key else f"{settings.prefix}-{kind}"


def planned_alarms(
    settings: Settings, kinds: Sequence[AlarmKind], rule_names: Sequence[str]
) -> list[tuple[AlarmKind, dict]]:
    """Every alarm the stack creates, as `(kind, MetricAlarm arguments)`, without actions."""
    planned = []
    for kind in kinds:
        for instance in scope_instances(settings, kind.scope, rule_names):
            name = alarm_name(settings, kind.kind, instance.key)
            args = render_alarm(
                kind,
                name=name,
                values={**global_values(settings), **instance.values},
                runbook_url=settings.runbook_url(kind.runbook),
            )
            planned.append((kind, args))
    return planned


def _topic_key_policy(account_id: str, partition: str) -> str:
    """The account administers the key; CloudWatch may use it to publish alarms (the AWS-managed
    `aws/sns` key does not let CloudWatch in, so alarms to a topic under it are never sent)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
            ],
        }
    )


def dashboard_values(settings: Settings, dashboard_name: str) -> dict[str, str]:
    """Every string placeholder a dashboard may use (see dashboards/README.md)."""
    values = {
        **global_values(settings),
        "runbook_base_url": settings.runbook_base_url.rstrip("/"),
        "dashboard_name": dashboard_name,
        "dlq.events": settings.events_dlq_name,
        "log_group.api-access": settings.api_access_log_group_name,
    }
    for p in PROVIDERS:
        values[f"queue.{p}"] = settings.queue_name(p)
        values[f"dlq.{p}"] = settings.dlq_name(p)
    for f in FUNCTIONS:
        values[f"function.{f.name}"] = settings.function_name(f.name)
        values[f"log_group.{f.name}"] = settings.log_group_name(f.name)
    return values


#: The label of the horizontal annotation that draws the daily quota per key; its value in the
#: file is the default quota, replaced by the stack's `apiQuotaPerDay`.
QUOTA_ANNOTATION_LABEL = "daily quota per key"


def _draw_quota(body: Any, quota: int) -> None:
    """Sets every quota annotation of a dashboard body to the configured quota."""
    for widget in body.get("widgets", []):
        annotations = widget.get("properties", {}).get("annotations", {})
        for line in annotations.get("horizontal", []):
            if line.get("label") == QUOTA_ANNOTATION_LABEL:
                line["value"] = quota


def dashboard_body(
    settings: Settings,
    definition: DashboardDefinition,
    alarm_arns: Sequence[str],
) -> str:
    if len(alarm_arns) > MAX_ALARMS_PER_WIDGET:
        raise DefinitionError(
            f"{definition.source_file}: the stack has {len(alarm_arns)} alarms; an alarm "
            f"widget shows at most {MAX_ALARMS_PER_WIDGET}"
        )
    name = dashboard_name(settings, definition)
    filled = placeholders.fill(
        definition.body,
        dashboard_values(settings, name),
        {"alarm_arns": sorted(alarm_arns)},
        source=definition.source_file,
    )
    _draw_quota(filled, settings.api_quota_per_day)
    return json.dumps(filled, separators=(",", ":"))


def dashboard_name(settings: Settings, definition: DashboardDefinition) -> str:
    return f"{settings.prefix}-{definition.stem}"


class Monitoring(Component):
    """The alarm topic (encrypted with a key CloudWatch may use), its e-mail subscription, the
    alarms and the dashboards."""

    TYPE = "payhook:monitoring:Monitoring"

    def __init__(
        self,
        settings: Settings,
        account: AccountContext,
        kinds: Sequence[AlarmKind],
        rule_names: Sequence[str],
        dashboards: Sequence[DashboardDefinition],
    ) -> None:
        super().__init__("monitoring", settings)
        self.topic = self._topic(account)
        self.alarms = self._alarms(kinds, rule_names)
        self.dashboards = self._dashboards(dashboards)
        self.register_outputs(
            {"alarm_topic_arn": self.topic.arn, "dashboard_names": sorted(self.dashboards)}
        )

    def _topic(self, account: AccountContext) -> aws.sns.Topic:
        """The alarm topic, encrypted at rest with a key of its own."""
        settings = self.settings
        key = aws.kms.Key(
            "alarms-topic-key",
            description=f"payhook {settings.stage}: the alarm topic's encryption key",
            enable_key_rotation=True,
            policy=pulumi.Output.all(account.account_id, account.partition).apply(
                lambda a: _topic_key_policy(a[0], a[1])
            ),
            opts=self.child(),
        )
        topic = aws.sns.Topic(
            "alarms-topic",
            name=f"{settings.prefix}-alarms",
            display_name=f"payhook {settings.stage} alarms",
            kms_master_key_id=key.arn,
            opts=self.child(),
        )
        if settings.alarm_email:
            aws.sns.TopicSubscription(
                "alarms-email",
                topic=topic.arn,
                protocol="email",
                endpoint=settings.alarm_email,
                opts=self.child(),
            )
        return topic

    def _alarms(
        self, kinds: Sequence[AlarmKind], rule_names: Sequence[str]
    ) -> list[aws.cloudwatch.MetricAlarm]:
        alarms = []
        for kind, args in planned_alarms(self.settings, kinds, rule_names):
            alarms.append(
                aws.cloudwatch.MetricAlarm(
                    args["name"],
                    **args,
                    actions_enabled=True,
                    alarm_actions=[self.topic.arn],
                    ok_actions=[self.topic.arn],
                    tags={"severity": kind.severity, "runbook": kind.runbook},
                    opts=self.child(),
                )
            )
        return alarms

    def _dashboards(
        self, definitions: Sequence[DashboardDefinition]
    ) -> dict[str, aws.cloudwatch.Dashboard]:
        settings = self.settings
        dashboards = {}
        arns = pulumi.Output.all(*(a.arn for a in self.alarms))
        for definition in definitions:
            name = dashboard_name(settings, definition)
            dashboards[name] = aws.cloudwatch.Dashboard(
                f"dashboard-{definition.stem}",
                dashboard_name=name,
                dashboard_body=arns.apply(
                    lambda resolved, d=definition: dashboard_body(settings, d, resolved)
                ),
                opts=self.child(),
            )
        return dashboards


def console_url(region: str, name: str) -> str:
    return f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name={name}"
