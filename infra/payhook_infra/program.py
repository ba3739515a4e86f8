"""The whole stack, wired in data-flow order, and its outputs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

import pulumi
import pulumi_aws as aws

from . import api as api_module
from . import definitions, events, functions, monitoring, queues, secrets, settings, storage


@dataclasses.dataclass(frozen=True)
class Stack:
    """Handles on what `build` created, for the outputs and the tests."""

    settings: settings.Settings
    outputs: dict[str, Any]
    #: What `protectData` protects: the status table and the dead-letter queues.
    protected: list[pulumi.CustomResource] = dataclasses.field(default_factory=list)


def _account() -> functions.AccountContext:
    identity = aws.get_caller_identity_output()
    return functions.AccountContext(
        account_id=identity.account_id,
        # arn:<partition>:iam::<account>:...
        partition=identity.arn.apply(lambda arn: arn.split(":")[1]),
    )


def build(repo_root: Optional[Path] = None) -> Stack:
    """Register every resource and export the stack outputs."""
    cfg = settings.load(repo_root or settings.REPO_ROOT)
    root = cfg.repo_root

    # Read and check the JSON-as-code first: a bad file fails before anything is registered.
    rules = definitions.load_rules(root / "rules")
    alarm_kinds = definitions.load_alarm_kinds(root / "alarms", root / "runbooks")
    dashboards = definitions.load_dashboards(root / "dashboards")
    rule_names = [r.name for r in rules]
    # Render every alarm once up front: a description over 1024 characters fails here.
    monitoring.planned_alarms(cfg, alarm_kinds, rule_names)

    account = _account()
    table = storage.create(cfg)
    provider_queues = queues.create(cfg)
    bus = events.create_bus(cfg)
    deployed = functions.create(cfg, account, provider_queues, table, bus)
    authorizer = functions.create_authorizer(cfg)
    webhook_api = api_module.create(cfg, account, deployed["webhook-validator"], authorizer)
    square_url = secrets.square_notification_url(
        cfg,
        webhook_api.registered_url("square") if cfg.api_key_required
        else webhook_api.provider_endpoint("square"),
        webhook_api.api_keys["square"].value if cfg.api_key_required else None,
    )
    parameters = secrets.create(cfg, square_url)
    routed = events.create_routing(cfg, bus, rules, deployed, provider_queues)

    topic = monitoring.create_topic(cfg, account)
    alarms = monitoring.create_alarms(cfg, topic, alarm_kinds, rule_names)
    boards = monitoring.create_dashboards(cfg, dashboards, alarms)
    dashboard_names = sorted(boards)

    outputs: dict[str, Any] = {
        "webhook_endpoint": webhook_api.endpoint,
        "api_key_ids": webhook_api.key_ids(),
        # Secret: each URL holds its provider's key. `pulumi stack output --show-secrets`.
        "webhook_urls": pulumi.Output.secret(
            {
                p: (
                    webhook_api.registered_url(p)
                    if cfg.api_key_required
                    else webhook_api.provider_endpoint(p)
                )
                for p in settings.PROVIDERS
            }
        ),
        "rest_api_id": webhook_api.rest_api.id,
        # With customDomain: the name to point the domain's DNS record (CNAME or alias) at.
        "custom_domain_target": (
            webhook_api.custom_domain.regional_domain_name if webhook_api.custom_domain else None
        ),
        "region": cfg.region,
        "stage": cfg.stage,
        "dashboard_name": dashboard_names[0] if dashboard_names else None,
        "dashboard_names": dashboard_names,
        "dashboard_url": (
            monitoring.console_url(cfg.region, dashboard_names[0]) if dashboard_names else None
        ),
        "alarm_topic_arn": topic.arn,
        "queue_urls": {p: q.queue.url for p, q in provider_queues.by_provider.items()},
        "dlq_urls": {
            **{p: q.dlq.url for p, q in provider_queues.by_provider.items()},
            "events": provider_queues.events_dlq.url,
        },
        "table_name": table.name,
        "event_bus_name": bus.name,
        "function_names": {
            **{name: d.function.name for name, d in deployed.items()},
            authorizer.spec.name: authorizer.function.name,
        },
        "rule_names": [r.definition.name for r in routed],
        "ssm_parameters": sorted(parameters),
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return Stack(cfg, outputs, protected=[table, *provider_queues.dlqs()])
